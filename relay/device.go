package relay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/porthole/porthole/relay/relayproto"
)

// deviceConn is a device's logged-in connection, by either protocol.
type deviceConn struct {
	peer
	fleet, device string
	// open opens a stream to the device for an engineer of session (from
	// the address origHost:origPort). A device that refuses it answers a
	// *deviceRefusedError; any other error means the connection failed.
	// open opens a stream to the device for an engineer of session, and
	// sends early on it (what the engineer sent ahead) before the
	// device's answer.
	open func(session, origHost string, origPort uint32, early []byte) (halfConn, error)
	// shared: the connection may carry several sessions over time (the
	// second protocol), so it is not closed with its last registration.
	shared  bool
	regs    map[string]struct{} // guarded by Relay.mu: the sessions it serves
	gone    bool                // guarded by Relay.mu: removed from the relay
	removed chan struct{}       // closed when gone is set
}

// deviceRefusedError is a device's refusal of a stream, in its words.
type deviceRefusedError struct{ msg string }

func (e *deviceRefusedError) Error() string { return "the device refused the channel: " + e.msg }

func newDeviceConn(p peer, fleet, device string) *deviceConn {
	dev := &deviceConn{peer: p, fleet: fleet, device: device, regs: make(map[string]struct{}), removed: make(chan struct{})}
	dev.log = dev.log.With("device", dev.name())
	return dev
}

func (d *deviceConn) name() string { return d.fleet + "/" + d.device }

// refusal describes a refusal of something d asked.
func (d *deviceConn) refusal(what, why string) Refusal {
	return Refusal{Remote: d.remote, Role: RoleDevice, User: d.user, Fleet: d.fleet, Device: d.device, What: what, Why: why}
}

// Why a device is refused what it asks at the relay.
const (
	whyDeviceChannel = "a device may not open channels at the relay"
	whyDeviceRequest = "a device may only register its own sessions (tcpip-forward)"
)

// addDevice counts in a device that has just logged in, unless it was
// deleted while it did so.
func (r *Relay) addDevice(dev *deviceConn, start time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return ErrClosed
	case time.Since(start) > r.cutTTL, r.cutDevices.cutSince(dev.name(), start):
		return errDeviceDeleted
	}
	set := r.devices[dev.name()]
	if set == nil {
		set = make(map[*deviceConn]struct{})
		r.devices[dev.name()] = set
	}
	set[dev] = struct{}{}
	return nil
}

// removeDevice frees the sessions dev registered and closes it. It may be
// called more than once.
func (r *Relay) removeDevice(dev *deviceConn, cause error) {
	var left []string
	r.mu.Lock()
	if !dev.gone {
		dev.gone = true
		close(dev.removed)
		set := r.devices[dev.name()]
		delete(set, dev)
		if len(set) == 0 {
			delete(r.devices, dev.name())
		}
		for id := range dev.regs {
			r.unregisterLocked(dev, id)
			left = append(left, id)
		}
	}
	r.mu.Unlock()
	dev.close(cause)
	if len(left) > 0 && r.cfg.DeviceLeft != nil {
		go r.cfg.DeviceLeft(left)
	}
}

// Registered reports whether a device connection serves session id now.
func (r *Relay) Registered(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sessions[id]
	return s != nil && s.device != nil
}

// unregisterLocked frees session id if dev serves it.
func (r *Relay) unregisterLocked(dev *deviceConn, id string) bool {
	if _, ok := dev.regs[id]; !ok {
		return false
	}
	delete(dev.regs, id)
	if s := r.sessions[id]; s != nil && s.device == dev {
		s.device = nil
		s.ready = make(chan struct{})
		r.dropIfUnusedLocked(s)
	}
	return true
}

// unregister frees session id if dev serves it.
func (r *Relay) unregister(dev *deviceConn, id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unregisterLocked(dev, id)
}

// errRegisterGone: the device's connection or the relay went away while a
// registration was looked up; there is nobody to tell.
var errRegisterGone = errors.New("the connection ended")

// registerRefusal is a registration refused: why in words, and the
// relayproto code that says whether trying again may help.
type registerRefusal struct{ why, code string }

func (e *registerRefusal) Error() string { return e.why }

// register makes dev the connection that serves session id, if that
// session is open and on this device, and returns the relay's state of
// it. A registration by another connection is replaced. A refusal's error,
// a *registerRefusal, says why in words for the device's log; it has been
// logged and reported already, but errRegisterGone, which needs no word.
func (r *Relay) register(dev *deviceConn, what, id string) (*session, error) {
	refuse := func(why, code string) error {
		f := dev.refusal(what, why)
		f.Session = id
		r.refuse(dev.log, f)
		return &registerRefusal{why: why, code: code}
	}
	if id == "" {
		return nil, refuse("no session named", relayproto.CodeRefused)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(dev.ctx, r.cfg.HandshakeTimeout)
	sess, err := r.cfg.Session(ctx, id)
	cancel()
	if why, code := r.checkSession(sess, err, id, dev.fleet, dev.device, r.cfg.Now(), dev.log); why != "" {
		return nil, refuse(why, code)
	}

	r.mu.Lock()
	switch {
	case r.closed || dev.gone:
		r.mu.Unlock()
		return nil, errRegisterGone
	case time.Since(start) > r.cutTTL:
		r.mu.Unlock()
		return nil, refuse(fmt.Sprintf("looking up session %s took too long", id), relayproto.CodeUnavailable)
	case r.cutSessions.cutSince(id, start):
		r.mu.Unlock()
		return nil, refuse(fmt.Sprintf("session %s is closed", id), relayproto.CodeClosed)
	}
	s := r.sessionLocked(id, sess.Ends)
	old := s.device
	if old != dev {
		if old != nil {
			delete(old.regs, id)
		} else {
			close(s.ready)
		}
		s.device = dev
		dev.regs[id] = struct{}{}
	}
	r.mu.Unlock()

	if old != nil && old != dev {
		dev.log.Info("session registered again; it replaces the device's older connection", "session", id, "older", old.remote)
	} else {
		dev.log.Info("session registered", "session", id)
	}
	if r.cfg.DeviceRegistered != nil {
		go r.cfg.DeviceRegistered(dev.fleet, dev.device, id)
	}
	return s, nil
}

// lingerCheck closes a shared device connection that has served no
// session for a whole interval: a device keeps it only while it has
// sessions (it closes it after its last one), so one left idle is a
// device that stopped caring, or is misbehaving.
func (r *Relay) lingerCheck(dev *deviceConn, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	idle := 0
	for {
		select {
		case <-dev.ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		n := len(dev.regs)
		r.mu.Unlock()
		if n > 0 {
			idle = 0
			continue
		}
		if idle++; idle >= 2 {
			dev.log.Info("closing a device connection that serves no session")
			dev.close(errNoSessions)
			return
		}
	}
}
