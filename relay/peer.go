package relay

import (
	"context"
	"log/slog"
	"time"

	"golang.org/x/crypto/ssh"
)

// keepAliveRequest is the global request OpenSSH sends to check on a peer;
// every SSH implementation answers it, if only with failure.
const keepAliveRequest = "keepalive@openssh.com"

// peer is a connection that has logged in.
type peer struct {
	sc     *ssh.ServerConn
	remote string
	log    *slog.Logger
	// ctx ends when the connection ends, with the reason as its cause.
	ctx    context.Context
	cancel context.CancelCauseFunc
}

func newPeer(parent context.Context, sc *ssh.ServerConn, remote string, log *slog.Logger) peer {
	ctx, cancel := context.WithCancelCause(parent)
	return peer{sc: sc, remote: remote, log: log, ctx: ctx, cancel: cancel}
}

// close ends the connection for cause; the first cause given sticks.
func (p *peer) close(cause error) {
	p.cancel(cause)
	_ = p.sc.Close()
}

// keepAlive closes p once it leaves keepAliveMisses checks in a row
// unanswered. It returns when p ends.
func (r *Relay) keepAlive(p *peer) {
	t := time.NewTicker(r.cfg.KeepAliveInterval)
	defer t.Stop()
	answered := make(chan error, 1) // one check at a time is under way
	pending, missed := false, 0
	for {
		select {
		case <-p.ctx.Done():
			return
		case err := <-answered:
			pending = false
			if err != nil {
				return // the connection is gone
			}
			missed = 0
		case <-t.C:
			if pending {
				if missed++; missed >= keepAliveMisses {
					p.log.Info("closing a connection that stopped answering", "unanswered", missed)
					p.close(errKeepAlive)
					return
				}
				continue
			}
			pending = true
			r.wg.Go(func() {
				// Any answer will do: a refusal proves the peer is there.
				_, _, err := p.sc.SendRequest(keepAliveRequest, true, nil)
				answered <- err
			})
		}
	}
}

// runPeer checks on p with keep-alives and hands its new channels to
// onChannel and its global requests to onRequest, one at a time each, until
// its connection ends.
func (r *Relay) runPeer(p *peer, chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request,
	onChannel func(ssh.NewChannel), onRequest func(*ssh.Request)) {
	r.wg.Go(func() { r.keepAlive(p) })
	done := make(chan struct{})
	r.wg.Go(func() {
		defer close(done)
		for req := range reqs {
			onRequest(req)
		}
	})
	for nc := range chans {
		onChannel(nc)
	}
	<-done
	// Both streams close when the connection ends; make sure it has, and
	// stop the keep-alive.
	p.close(errConnEnded)
}
