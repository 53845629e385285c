package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/sessioncert"
)

// errNotRegistered rejects an engineer's channel when no device serves its
// session in time. The CLI shows it as it is.
var errNotRegistered = errors.New("the device has not connected to the relay for this session")

// engineerConn is an engineer's logged-in connection, good for one session.
type engineerConn struct {
	peer
	claims sessioncert.Claims
	// origHost and origPort are the engineer's address as the relay sees
	// it, told to the device as the originator of each channel.
	origHost string
	origPort uint32
	sess     *session // set once, by addEngineer
	gone     bool     // guarded by Relay.mu: removed from the relay
}

// refusal describes a refusal of something e asked.
func (e *engineerConn) refusal(what, why string) Refusal {
	return Refusal{Remote: e.remote, Role: RoleEngineer, User: e.sc.User(), Fleet: e.claims.Fleet, Device: e.claims.Device,
		Session: e.claims.Session, Engineer: e.claims.User, What: what, Why: why}
}

// directRequest is the payload of a "direct-tcpip" channel (RFC 4254 §7.2).
type directRequest struct {
	Host     string
	Port     uint32
	OrigHost string
	OrigPort uint32
}

// forwardedChannel is the payload of a "forwarded-tcpip" channel (RFC 4254
// §7.2): the session id, port 0, and the engineer's address.
type forwardedChannel struct {
	Addr     string
	Port     uint32
	OrigHost string
	OrigPort uint32
}

func (r *Relay) serveEngineer(p peer, id *identity, chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request, start time.Time) {
	e := &engineerConn{peer: p, claims: id.claims}
	e.log = e.log.With("session", id.claims.Session, "engineer", id.claims.User)
	if host, port, err := net.SplitHostPort(e.remote); err == nil {
		p, _ := strconv.ParseUint(port, 10, 16)
		e.origHost, e.origPort = host, uint32(p)
	}
	if err := r.addEngineer(e, id.session, start); err != nil {
		r.refuse(e.log, e.refusal("login", err.Error()))
		e.close(err)
		r.wg.Go(func() { ssh.DiscardRequests(reqs) })
		for nc := range chans {
			_ = nc.Reject(ssh.Prohibited, err.Error())
		}
		return
	}
	// A certificate is good until it expires, and not a moment longer.
	expiry := time.AfterFunc(id.claims.ValidBefore.Sub(r.cfg.Now()), func() { e.close(errCertExpired) })
	defer expiry.Stop()

	e.log.Info("engineer connected")
	r.runPeer(&e.peer, chans, reqs,
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

// addEngineer counts in an engineer who has just logged in to session sess,
// unless the session was cut while they did.
func (r *Relay) addEngineer(e *engineerConn, sess Session, start time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return ErrClosed
	case time.Since(start) > r.cutTTL:
		return errors.New("logging in took too long")
	case r.cutSessions.cutSince(sess.ID, start):
		return errSessionClosed
	}
	s := r.sessionLocked(sess.ID, sess.Ends)
	s.engineers[e] = struct{}{}
	e.sess = s
	r.engineers++
	return nil
}

// removeEngineer counts e out and closes it. It may be called more than once.
func (r *Relay) removeEngineer(e *engineerConn) {
	r.mu.Lock()
	if !e.gone {
		e.gone = true
		delete(e.sess.engineers, e)
		r.engineers--
		r.dropIfUnusedLocked(e.sess)
	}
	r.mu.Unlock()
	e.close(errConnEnded)
}

// direct serves an engineer's "direct-tcpip" channel: to its session, it is
// joined to a "forwarded-tcpip" channel on the device's connection.
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
	r.touch(e.sess)

	wait := time.NewTimer(r.cfg.RegistrationWait)
	defer wait.Stop()
	for {
		dev, err := r.waitDevice(e, wait.C)
		if err != nil {
			if e.ctx.Err() == nil {
				_ = nc.Reject(ssh.ConnectionFailed, err.Error())
			}
			e.log.Info("channel not joined", "reason", err)
			return
		}
		payload := ssh.Marshal(forwardedChannel{Addr: e.claims.Session, Port: 0, OrigHost: e.origHost, OrigPort: e.origPort})
		dch, dreqs, err := dev.sc.OpenChannel("forwarded-tcpip", payload)
		if err != nil {
			var refused *ssh.OpenChannelError
			if errors.As(err, &refused) {
				_ = nc.Reject(ssh.ConnectionFailed, "the device refused the channel: "+refused.Message)
				e.log.Info("the device refused a channel", "reason", refused.Message)
				return
			}
			// The device's connection failed under us. Once the relay has
			// removed it, take the device's next registration if it comes
			// in time (it may have reconnected already).
			select {
			case <-dev.removed:
				continue
			case <-wait.C:
				_ = nc.Reject(ssh.ConnectionFailed, errNotRegistered.Error())
			case <-e.ctx.Done():
			}
			return
		}
		ech, ereqs, err := nc.Accept()
		if err != nil {
			_ = dch.Close()
			r.wg.Go(func() { ssh.DiscardRequests(dreqs) })
			return
		}
		r.splice(e, dev, ech, ereqs, dch, dreqs)
		return
	}
}

// waitDevice returns the connection serving e's session, waiting for one
// until expired fires.
func (r *Relay) waitDevice(e *engineerConn, expired <-chan time.Time) (*deviceConn, error) {
	s := e.sess
	for {
		r.mu.Lock()
		dev, ready := s.device, s.ready
		r.mu.Unlock()
		if dev != nil {
			return dev, nil
		}
		select {
		case <-ready:
		case <-expired:
			return nil, errNotRegistered
		case <-s.ctx.Done():
			return nil, context.Cause(s.ctx)
		case <-e.ctx.Done():
			return nil, context.Cause(e.ctx)
		}
	}
}
