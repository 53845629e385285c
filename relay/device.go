package relay

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/crypto/ssh"
)

// deviceConn is a device's logged-in connection.
type deviceConn struct {
	peer
	fleet, device string
	regs          map[string]struct{} // guarded by Relay.mu: the sessions it serves
	gone          bool                // guarded by Relay.mu: removed from the relay
	removed       chan struct{}       // closed when gone is set
}

func (d *deviceConn) name() string { return d.fleet + "/" + d.device }

// refusal describes a refusal of something d asked.
func (d *deviceConn) refusal(what, why string) Refusal {
	return Refusal{Remote: d.remote, Role: RoleDevice, User: d.sc.User(), Fleet: d.fleet, Device: d.device, What: what, Why: why}
}

// forwardRequest is the payload of "tcpip-forward" and "cancel-tcpip-forward"
// (RFC 4254 §7.1): the session id and port 0.
type forwardRequest struct {
	Addr string
	Port uint32
}

// forwardReply answers a "tcpip-forward" for port 0 with the port "bound".
type forwardReply struct {
	Port uint32
}

// Why a device is refused what it asks at the relay.
const (
	whyDeviceChannel = "a device may not open channels at the relay"
	whyDeviceRequest = "a device may only register its own sessions (tcpip-forward)"
)

func (r *Relay) serveDevice(p peer, id *identity, chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request, start time.Time) {
	dev := &deviceConn{peer: p, fleet: id.fleet, device: id.device, regs: make(map[string]struct{}), removed: make(chan struct{})}
	dev.log = dev.log.With("device", dev.name())
	if err := r.addDevice(dev, start); err != nil {
		r.refuse(dev.log, dev.refusal("login", err.Error()))
		dev.close(err)
		// Let the handshake's goroutines finish with the connection.
		r.wg.Go(func() { ssh.DiscardRequests(reqs) })
		for nc := range chans {
			_ = nc.Reject(ssh.Prohibited, err.Error())
		}
		return
	}
	dev.log.Info("device connected")
	r.runPeer(&dev.peer, chans, reqs,
		func(nc ssh.NewChannel) {
			r.refuse(dev.log, dev.refusal("channel "+nc.ChannelType(), whyDeviceChannel))
			_ = nc.Reject(ssh.Prohibited, whyDeviceChannel)
		},
		func(req *ssh.Request) { r.deviceRequest(dev, req) })
	r.removeDevice(dev, errConnEnded)
	dev.log.Info("device disconnected", "reason", context.Cause(dev.ctx))
}

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

func (r *Relay) deviceRequest(dev *deviceConn, req *ssh.Request) {
	switch req.Type {
	case "tcpip-forward":
		r.register(dev, req)
	case "cancel-tcpip-forward":
		var m forwardRequest
		if err := ssh.Unmarshal(req.Payload, &m); err != nil {
			r.refuse(dev.log, dev.refusal(req.Type, "malformed request"))
			_ = req.Reply(false, nil)
			return
		}
		r.mu.Lock()
		ok := r.unregisterLocked(dev, m.Addr)
		r.mu.Unlock()
		_ = req.Reply(ok, nil)
		if ok {
			dev.log.Info("session unregistered", "session", m.Addr)
		}
	case keepAliveRequest:
		_ = req.Reply(false, nil)
	default:
		r.refuse(dev.log, dev.refusal("global request "+req.Type, whyDeviceRequest))
		_ = req.Reply(false, nil)
	}
}

// register makes dev the connection that serves the session a
// "tcpip-forward" request names, if that session is open and on this
// device. A registration by another connection is replaced.
func (r *Relay) register(dev *deviceConn, req *ssh.Request) {
	var m forwardRequest
	if err := ssh.Unmarshal(req.Payload, &m); err != nil {
		r.refuse(dev.log, dev.refusal(req.Type, "malformed request"))
		_ = req.Reply(false, nil)
		return
	}
	refuse := func(why string) {
		f := dev.refusal(req.Type, why)
		f.Session = m.Addr
		r.refuse(dev.log, f)
		_ = req.Reply(false, nil)
	}
	switch {
	case m.Addr == "":
		refuse("no session named: the bind address is the session id")
		return
	case m.Port != 0:
		refuse(fmt.Sprintf("port %d asked: a device registers a session with port 0, and the relay binds no ports", m.Port))
		return
	}

	start := time.Now()
	ctx, cancel := context.WithTimeout(dev.ctx, r.cfg.HandshakeTimeout)
	sess, err := r.cfg.Session(ctx, m.Addr)
	cancel()
	if why := r.checkSession(sess, err, m.Addr, dev.fleet, dev.device, r.cfg.Now(), dev.log); why != "" {
		refuse(why)
		return
	}

	r.mu.Lock()
	switch {
	case r.closed || dev.gone:
		r.mu.Unlock()
		_ = req.Reply(false, nil)
		return
	case time.Since(start) > r.cutTTL:
		r.mu.Unlock()
		refuse(fmt.Sprintf("looking up session %s took too long", m.Addr))
		return
	case r.cutSessions.cutSince(m.Addr, start):
		r.mu.Unlock()
		refuse(fmt.Sprintf("session %s is closed", m.Addr))
		return
	}
	s := r.sessionLocked(m.Addr, sess.Ends)
	old := s.device
	if old != dev {
		if old != nil {
			delete(old.regs, m.Addr)
		} else {
			close(s.ready)
		}
		s.device = dev
		dev.regs[m.Addr] = struct{}{}
	}
	r.mu.Unlock()

	_ = req.Reply(true, ssh.Marshal(forwardReply{Port: 0}))
	if old != nil && old != dev {
		dev.log.Info("session registered again; it replaces the device's older connection", "session", m.Addr, "older", old.remote)
	} else {
		dev.log.Info("session registered", "session", m.Addr)
	}
}
