package relay

import (
	"context"
	"io"
	"log/slog"
	"time"

	"golang.org/x/crypto/ssh"
)

// keepAliveRequest is the global request OpenSSH sends to check on a peer;
// every SSH implementation answers it, if only with failure.
const keepAliveRequest = "keepalive@openssh.com"

// peer is a connection that has logged in, by either protocol.
type peer struct {
	conn   io.Closer // the SSH connection, or the yamux session or TLS connection
	user   string    // the SSH user name, or what the hello claimed
	remote string
	log    *slog.Logger
	// ctx ends when the connection ends, with the reason as its cause.
	ctx    context.Context
	cancel context.CancelCauseFunc
}

func newPeer(parent context.Context, conn io.Closer, user, remote string, log *slog.Logger) peer {
	ctx, cancel := context.WithCancelCause(parent)
	return peer{conn: conn, user: user, remote: remote, log: log, ctx: ctx, cancel: cancel}
}

// close ends the connection for cause; the first cause given sticks.
func (p *peer) close(cause error) {
	p.cancel(cause)
	_ = p.conn.Close()
}

// keepAlive closes p, whose SSH connection is sc, once it leaves
// keepAliveMisses checks in a row unanswered. It returns when p ends.
func (r *Relay) keepAlive(p *peer, sc ssh.Conn) {
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
				_, _, err := sc.SendRequest(keepAliveRequest, true, nil)
				answered <- err
			})
		}
	}
}

// runPeer checks on p with keep-alives and hands its new channels to
// onChannel and its global requests to onRequest, one at a time each, until
// its connection ends.
func (r *Relay) runPeer(p *peer, sc ssh.Conn, chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request,
	onChannel func(ssh.NewChannel), onRequest func(*ssh.Request)) {
	r.wg.Go(func() { r.keepAlive(p, sc) })
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
