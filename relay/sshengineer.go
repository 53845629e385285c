package relay

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/crypto/ssh"
)

// directRequest is the payload of a "direct-tcpip" channel (RFC 4254 §7.2).
type directRequest struct {
	Host     string
	Port     uint32
	OrigHost string
	OrigPort uint32
}

// serveEngineer serves an engineer logged in over SSH (the first protocol).
func (r *Relay) serveEngineer(p peer, sc *ssh.ServerConn, id *identity, chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request, start time.Time) {
	e := newEngineerConn(p, id.claims)
	stopExpiry, err := r.addEngineer(e, id.session, start)
	if err != nil {
		r.refuse(e.log, e.refusal("login", err.Error()))
		e.close(err)
		r.wg.Go(func() { ssh.DiscardRequests(reqs) })
		for nc := range chans {
			_ = nc.Reject(ssh.Prohibited, err.Error())
		}
		return
	}
	defer stopExpiry()

	e.log.Info("engineer connected")
	r.runPeer(&e.peer, sc, chans, reqs,
		func(nc ssh.NewChannel) {
			if nc.ChannelType() == "direct-tcpip" {
				r.wg.Go(func() { r.direct(e, nc) })
				return
			}
			why := fmt.Sprintf("the relay only joins a direct-tcpip channel to session %s", e.claims.Session)
			r.refuse(e.log, e.refusal("channel "+nc.ChannelType(), why))
			_ = nc.Reject(ssh.Prohibited, why)
		},
		func(req *ssh.Request) {
			switch req.Type {
			case keepAliveRequest, "no-more-sessions@openssh.com":
				// OpenSSH's own housekeeping
			case "tcpip-forward":
				r.refuse(e.log, e.refusal(req.Type, "an engineer may not listen at the relay"))
			default:
				r.refuse(e.log, e.refusal("global request "+req.Type, "the relay answers no global requests"))
			}
			_ = req.Reply(false, nil)
		})
	r.removeEngineer(e)
	e.log.Info("engineer disconnected", "reason", context.Cause(e.ctx))
}

// direct serves an engineer's "direct-tcpip" channel: to its session, it is
// joined to a stream to the device.
func (r *Relay) direct(e *engineerConn, nc ssh.NewChannel) {
	var m directRequest
	if err := ssh.Unmarshal(nc.ExtraData(), &m); err != nil {
		r.refuse(e.log, e.refusal("channel direct-tcpip", "malformed request"))
		_ = nc.Reject(ssh.ConnectionFailed, "malformed direct-tcpip request")
		return
	}
	if m.Host != e.claims.Session {
		why := fmt.Sprintf("this certificate reaches session %s only, not %q", e.claims.Session, m.Host)
		r.refuse(e.log, e.refusal("channel direct-tcpip", why))
		_ = nc.Reject(ssh.Prohibited, why)
		return
	}
	wait := time.NewTimer(r.cfg.RegistrationWait)
	defer wait.Stop()
	dev, dst, err := r.reach(e, wait.C)
	if err != nil {
		if e.ctx.Err() == nil {
			_ = nc.Reject(ssh.ConnectionFailed, err.Error())
		}
		e.log.Info("channel not joined", "reason", err)
		return
	}
	ech, ereqs, err := nc.Accept()
	if err != nil {
		_ = dst.Close()
		return
	}
	r.splice(e, dev, &sshChannel{Channel: ech, gone: r.drain(ereqs)}, dst)
}
