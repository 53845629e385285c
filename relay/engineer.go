package relay

import (
	"context"
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/porthole/porthole/sessioncert"
)

// errNotRegistered rejects an engineer's channel when no device serves its
// session in time. The CLI shows it as it is.
var errNotRegistered = errors.New("the device has not connected to the relay for this session")

// engineerConn is an engineer's logged-in connection, good for one session,
// by either protocol.
type engineerConn struct {
	peer
	claims sessioncert.Claims
	// origHost and origPort are the engineer's address as the relay sees
	// it, told to the device as the originator of each channel.
	origHost string
	origPort uint32
	sess     *session // set once, by addEngineer
	gone     bool     // guarded by Relay.mu: removed from the relay
	// ahead, if set, reads what the engineer has sent and the relay has
	// not read yet, without waiting for more (the second protocol's
	// version line): reach sends it to the device with the stream's
	// opening, so that the device need not wait for it until it has
	// answered and the relay has joined the two.
	ahead func() []byte
}

func newEngineerConn(p peer, claims sessioncert.Claims) *engineerConn {
	e := &engineerConn{peer: p, claims: claims}
	e.log = e.log.With("session", claims.Session, "engineer", claims.User)
	if host, port, err := net.SplitHostPort(e.remote); err == nil {
		p, _ := strconv.ParseUint(port, 10, 16)
		e.origHost, e.origPort = host, uint32(p)
	}
	return e
}

// refusal describes a refusal of something e asked.
func (e *engineerConn) refusal(what, why string) Refusal {
	return Refusal{Remote: e.remote, Role: RoleEngineer, User: e.user, Fleet: e.claims.Fleet, Device: e.claims.Device,
		Session: e.claims.Session, Engineer: e.claims.User, What: what, Why: why}
}

// addEngineer counts in an engineer who has just logged in to session sess,
// unless the session was cut while they did. It also closes e when its
// certificate expires; the returned stop cancels that.
func (r *Relay) addEngineer(e *engineerConn, sess Session, start time.Time) (stop func() bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return nil, ErrClosed
	case time.Since(start) > r.cutTTL:
		return nil, errors.New("logging in took too long")
	case r.cutSessions.cutSince(sess.ID, start):
		return nil, errSessionClosed
	}
	s := r.sessionLocked(sess.ID, sess.Ends)
	s.engineers[e] = struct{}{}
	e.sess = s
	r.engineers++
	// A certificate is good until it expires, and not a moment longer.
	expiry := time.AfterFunc(e.claims.ValidBefore.Sub(r.cfg.Now()), func() { e.close(errCertExpired) })
	return expiry.Stop, nil
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

// reach opens a stream to the device that serves e's session, for e,
// waiting for the device to register it until expired fires. Its error is
// errNotRegistered, a *deviceRefusedError, or why the session or e ended.
func (r *Relay) reach(e *engineerConn, expired <-chan time.Time) (*deviceConn, halfConn, error) {
	r.touch(e.sess)
	var early []byte // read once, sent again if a device's connection fails
	for read := false; ; read = true {
		dev, err := r.waitDevice(e, expired)
		if err != nil {
			return nil, nil, err
		}
		if e.ahead != nil && !read {
			early = e.ahead()
		}
		st, err := dev.open(e.claims.Session, e.origHost, e.origPort, early)
		if err == nil {
			return dev, st, nil
		}
		if _, ok := errors.AsType[*deviceRefusedError](err); ok {
			e.log.Info("the device refused a channel", "reason", err)
			return nil, nil, err
		}
		// The device's connection failed under us. Once the relay has
		// removed it, take the device's next registration if it comes in
		// time (it may have reconnected already).
		select {
		case <-dev.removed:
		case <-expired:
			return nil, nil, errNotRegistered
		case <-e.ctx.Done():
			return nil, nil, context.Cause(e.ctx)
		}
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
