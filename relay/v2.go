package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/yamux"
	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/connlimit"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/relay/relayproto"
)

// The relay's second protocol (package relayproto documents its flow):
// TLS 1.3, a signed hello bound to the TLS connection, then a yamux session
// for a device or one spliced stream for an engineer. The relay reads
// nothing of the inner SSH; the same sessions, registrations and refusals
// serve both protocols, so an engineer of either reaches a device of
// either.

// ServeTLS accepts connections on l, each a *tls.Conn whose handshake is
// done and whose ALPN protocol is relayproto.ALPN (see package tlsmux),
// until Close; then it returns ErrClosed. It closes l when it returns.
func (r *Relay) ServeTLS(l net.Listener) error {
	return r.serve(l, func(nc net.Conn, tk *connlimit.Ticket) {
		var cs tls.ConnectionState // not TLS 1.3: refused by serveV2
		if tc, ok := nc.(*tls.Conn); ok {
			cs = tc.ConnectionState()
		}
		r.serveV2(nc, tlsBinding(cs), tk)
	})
}

// ServeConn serves one connection of the second protocol that arrived
// another way, such as a WebSocket on the API's port; cs is the TLS
// connection it came over. It returns when the connection has ended, and
// closes it.
func (r *Relay) ServeConn(nc net.Conn, cs tls.ConnectionState) {
	r.serveOther(nc, tlsBinding(cs))
}

// ServeBrowserConn serves one connection of the second protocol from a
// client that cannot read its TLS connection's keying material (a browser,
// over a WebSocket of relayproto.BrowserSubprotocol): the relay sends a
// fresh challenge first and the hello must be signed over it. Only
// engineers may come this way. It returns when the connection has ended,
// and closes it.
func (r *Relay) ServeBrowserConn(nc net.Conn) {
	r.serveOther(nc, challengeBinding)
}

// A binder gives the binding a connection's hello must be signed over
// (relayproto.Binding, or relayproto.ChallengeBinding after sending the
// challenge), or why the connection cannot say hello, in words for the
// client.
type binder struct {
	bind func(nc net.Conn) ([]byte, error)
	// engineersOnly: a device may not say hello this way.
	engineersOnly bool
}

// tlsBinding binds a hello to the TLS connection cs.
func tlsBinding(cs tls.ConnectionState) binder {
	return binder{bind: func(net.Conn) ([]byte, error) {
		binding, err := relayproto.Binding(cs)
		if err != nil {
			return nil, errors.New("the relay speaks TLS 1.3 only")
		}
		return binding, nil
	}}
}

// challengeBinding binds a hello to a fresh challenge sent on nc.
var challengeBinding = binder{engineersOnly: true, bind: func(nc net.Conn) ([]byte, error) {
	ch, err := relayproto.NewChallenge()
	if err == nil {
		err = relayproto.WriteFrame(nc, ch)
	}
	if err != nil {
		return nil, fmt.Errorf("the relay could not send its challenge: %w", err)
	}
	return relayproto.ChallengeBinding(ch)
}}

// serveOther serves a connection that arrived another way than the
// relay's own listener.
func (r *Relay) serveOther(nc net.Conn, b binder) {
	tk := r.admit(nc)
	if tk == nil {
		_ = nc.Close()
		return
	}
	if !r.track(nc) {
		tk.Release()
		_ = nc.Close()
		return
	}
	r.serveV2(nc, b, tk)
}

// serveV2 runs one connection of the second protocol: the hello, then the
// device's or the engineer's part. The caller holds its handshake ticket
// tk and has tracked nc; serveV2 gives both back, and closes nc.
func (r *Relay) serveV2(nc net.Conn, b binder, tk *connlimit.Ticket) {
	defer r.wg.Done()
	defer func() {
		r.mu.Lock()
		delete(r.conns, nc)
		r.mu.Unlock()
		_ = nc.Close()
	}()
	release := tk.Release
	defer release()

	start := time.Now()
	remote := nc.RemoteAddr().String()
	log := r.log.With("remote", remote, "protocol", 2)
	helloBy, doneBy := r.deadlines(start)
	_ = nc.SetDeadline(helloBy)
	if err := r.turn(tk, helloBy); err != nil {
		log.Debug("no handshake slot for the connection's source in time", "err", err)
		return
	}
	ctx, cancel := context.WithDeadline(r.ctx, doneBy)
	defer cancel()

	answer := func(rep relayproto.Reply) { _ = relayproto.WriteFrame(nc, rep) }
	binding, err := b.bind(nc)
	if err != nil {
		answer(relayproto.Reply{Error: err.Error(), Code: relayproto.CodeRefused})
		return
	}
	var env relayproto.Envelope
	if err := relayproto.ReadFrame(nc, &env); err != nil {
		// Not logged as a refusal: nobody claimed to be anyone yet.
		log.Debug("no hello", "err", err)
		if !errors.Is(err, io.EOF) {
			answer(relayproto.Reply{Error: "the relay expected a hello: " + err.Error(), Code: relayproto.CodeRefused})
		}
		return
	}
	_ = nc.SetDeadline(doneBy) // it said who it is: now the lookups
	h, err := env.Open()
	if err != nil {
		r.refuse(log, Refusal{Remote: remote, What: "login", Why: err.Error()})
		answer(relayproto.Reply{Error: err.Error(), Code: relayproto.CodeRefused})
		return
	}
	if b.engineersOnly && h.Role != relayproto.RoleEngineer {
		why := fmt.Sprintf("a %q may not say hello over a challenge; only engineers may", h.Role)
		r.refuse(log, Refusal{Remote: remote, What: "login", Why: why})
		answer(relayproto.Reply{Error: why, Code: relayproto.CodeRefused})
		return
	}
	switch h.Role {
	case relayproto.RoleDevice:
		user := h.Fleet + "/" + h.Device
		f := Refusal{Remote: remote, Role: RoleDevice, User: user, Fleet: h.Fleet, Device: h.Device, What: "login"}
		if _, _, ok := control.ParseDeviceUsername(user); !ok {
			f.Why = "not a device name"
		} else if key, why, code := r.deviceKey(ctx, h.Fleet, h.Device, log); why != "" {
			f.Why, f.code = why, code
		} else if err := env.Verify(key, binding); err != nil {
			f.Why = "the hello is not signed by the device's enrolled key"
		}
		if f.Why != "" {
			r.refuse(log, f)
			// The same words whatever the cause: a stranger must not learn
			// which device names exist. But a store that did not answer is
			// no answer about the device.
			rep := relayproto.Reply{Error: "the relay refused this device's login", Code: relayproto.CodeRefused}
			if f.replyCode() == relayproto.CodeUnavailable {
				rep = relayproto.Reply{Error: "the relay could not check this device's login just now; try again", Code: relayproto.CodeUnavailable}
			}
			answer(rep)
			return
		}
		release()
		r.serveDeviceV2(nc, newPeer(r.ctx, nil, user, remote, log.With("user", user)), h, start)
	case relayproto.RoleEngineer:
		id, f := r.engineerHello(ctx, env, h, binding, log)
		if f.Why != "" {
			f.Remote, f.Role, f.What = remote, RoleEngineer, "login"
			r.refuse(log, f)
			answer(relayproto.Reply{Error: "porthole relay: " + f.Why, Code: f.replyCode()})
			return
		}
		release()
		r.serveEngineerV2(nc, newPeer(r.ctx, nc, id.claims.Session, remote, log.With("user", id.claims.Session)), id, start)
	default:
		why := fmt.Sprintf("unknown role %q", h.Role)
		r.refuse(log, Refusal{Remote: remote, What: "login", Why: why})
		answer(relayproto.Reply{Error: why, Code: relayproto.CodeRefused})
	}
}

// engineerHello checks an engineer's hello: a session certificate whose key
// signed it for this connection, for an open session.
func (r *Relay) engineerHello(ctx context.Context, env relayproto.Envelope, h relayproto.Hello, binding []byte, log *slog.Logger) (*identity, Refusal) {
	key, err := ssh.ParsePublicKey(h.Cert)
	if err != nil {
		return nil, Refusal{Why: "the hello holds no readable session certificate"}
	}
	cert, ok := key.(*ssh.Certificate)
	if !ok {
		return nil, Refusal{Why: "an engineer logs in with a session certificate, not a bare key"}
	}
	if err := env.Verify(cert.Key, binding); err != nil {
		return nil, Refusal{Why: "the hello is not signed by the certificate's key"}
	}
	return r.authEngineer(ctx, cert, log)
}

// serveDeviceV2 runs a device's connection once its hello was accepted: a
// yamux session whose streams the device opens to register sessions, and
// the relay opens to bring engineers.
func (r *Relay) serveDeviceV2(nc net.Conn, p peer, h relayproto.Hello, start time.Time) {
	if err := relayproto.WriteFrame(nc, relayproto.Reply{OK: true}); err != nil {
		return
	}
	_ = nc.SetDeadline(time.Time{})
	mux, err := relayproto.Mux(nc, true, r.cfg.KeepAliveInterval)
	if err != nil {
		r.log.Error("starting a device's stream multiplexer", "err", err)
		return
	}
	p.conn = mux
	dev := newDeviceConn(p, h.Fleet, h.Device)
	dev.shared = true
	dev.open = func(session, origHost string, origPort uint32, early []byte) (halfConn, error) {
		return r.openDeviceStream(mux, session, net.JoinHostPort(origHost, fmt.Sprint(origPort)), early)
	}
	if err := r.addDevice(dev, start); err != nil {
		r.refuse(dev.log, dev.refusal("login", err.Error()))
		dev.close(err)
		return
	}
	dev.log.Info("device connected")
	stop := context.AfterFunc(dev.ctx, func() { _ = mux.Close() })
	defer stop()
	r.wg.Go(func() { r.lingerCheck(dev, r.cfg.KeepAliveInterval) })
	for {
		st, err := mux.AcceptStream()
		if err != nil {
			break
		}
		r.wg.Go(func() { r.registerV2(dev, st) })
	}
	r.removeDevice(dev, errConnEnded)
	dev.log.Info("device disconnected", "reason", context.Cause(dev.ctx))
}

// registerV2 serves a stream a device opened: a registration of one
// session, which lasts as long as the stream and the session do.
func (r *Relay) registerV2(dev *deviceConn, st *yamux.Stream) {
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(r.cfg.HandshakeTimeout))
	var m relayproto.Register
	if err := relayproto.ReadFrame(st, &m); err != nil {
		r.refuse(dev.log, dev.refusal("register", "malformed registration: "+err.Error()))
		return
	}
	if !control.ValidToken(m.Session) {
		f := dev.refusal("register", "not a session id")
		r.refuse(dev.log, f)
		_ = relayproto.WriteFrame(st, relayproto.Reply{Error: "not a session id", Code: relayproto.CodeRefused})
		return
	}
	s, err := r.register(dev, "register", m.Session)
	if err != nil {
		if rf, ok := errors.AsType[*registerRefusal](err); ok {
			_ = relayproto.WriteFrame(st, relayproto.Reply{Error: rf.why, Code: rf.code})
		}
		return
	}
	if err := relayproto.WriteFrame(st, relayproto.Reply{OK: true}); err != nil {
		r.unregister(dev, m.Session)
		return
	}
	_ = st.SetDeadline(time.Time{})
	// The registration lasts until the device closes the stream or the
	// session is cut; what the device sends on it is not read.
	ended := make(chan error, 1)
	r.wg.Go(func() {
		_, err := io.Copy(io.Discard, st)
		ended <- err
	})
	select {
	case err := <-ended:
		// The device closed the stream; or its connection died, which
		// removeDevice reports with the sessions it leaves (DeviceLeft).
		// (yamux ends a dead connection's streams with EOF too: ask it.)
		if err == nil && !st.Session().IsClosed() && r.unregister(dev, m.Session) {
			dev.log.Info("session unregistered", "session", m.Session)
		}
	case <-s.ctx.Done():
	case <-dev.ctx.Done():
	}
}

// openDeviceStream opens a stream to a device for an engineer of session,
// sends early after its header, and waits for the device to take it. The
// device reads early only once it has said yes (its SSH server does); one
// that says no drops it with the stream.
func (r *Relay) openDeviceStream(mux *yamux.Session, session, from string, early []byte) (halfConn, error) {
	st, err := mux.OpenStream()
	if err != nil {
		return nil, err
	}
	_ = st.SetDeadline(time.Now().Add(r.cfg.HandshakeTimeout))
	var rep relayproto.Reply
	err = relayproto.WriteFrame(st, relayproto.StreamHeader{Session: session, From: from})
	if err == nil && len(early) > 0 {
		_, err = st.Write(early)
	}
	if err == nil {
		err = relayproto.ReadFrame(st, &rep)
	}
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	if !rep.OK {
		_ = st.Close()
		return nil, &deviceRefusedError{rep.Error}
	}
	_ = st.SetDeadline(time.Time{})
	return yamuxStream{st}, nil
}

// yamuxStream is a yamux stream as a halfConn: yamux's Close sends FIN,
// which is a half-close; the stream is freed once both ends have sent one
// (or after the StreamCloseTimeout).
type yamuxStream struct{ *yamux.Stream }

func (s yamuxStream) CloseWrite() error { return s.Stream.Close() }

// serveEngineerV2 runs an engineer's connection once its hello was
// accepted: it waits for the device, then splices.
func (r *Relay) serveEngineerV2(nc net.Conn, p peer, id *identity, start time.Time) {
	e := newEngineerConn(p, id.claims)
	if tc, ok := nc.(*tls.Conn); ok {
		e.ahead = func() []byte { return readAhead(tc) }
	}
	stopExpiry, err := r.addEngineer(e, id.session, start)
	if err != nil {
		r.refuse(e.log, e.refusal("login", err.Error()))
		_ = relayproto.WriteFrame(nc, relayproto.Reply{Error: "porthole relay: " + err.Error(), Code: relayproto.CodeClosed})
		e.close(err)
		return
	}
	defer stopExpiry()
	defer r.removeEngineer(e)
	_ = nc.SetDeadline(time.Time{})
	e.log.Info("engineer connected")

	wait := time.NewTimer(r.cfg.EarlyWait)
	defer wait.Stop()
	dev, dst, err := r.reach(e, wait.C)
	if err != nil {
		if e.ctx.Err() == nil {
			code := relayproto.CodeUnavailable
			switch {
			case errors.Is(err, errNotRegistered):
				code = relayproto.CodeNoDevice
			case errors.Is(err, errSessionClosed), errors.Is(err, errSessionEnded):
				code = relayproto.CodeClosed
			}
			_ = relayproto.WriteFrame(nc, relayproto.Reply{Error: err.Error(), Code: code})
		}
		e.log.Info("stream not joined", "reason", err)
		return
	}
	if err := relayproto.WriteFrame(nc, relayproto.Reply{OK: true}); err != nil {
		_ = dst.Close()
		return
	}
	eng, ok := nc.(halfConn)
	if !ok {
		eng = noHalfClose{nc}
	}
	if held := relayproto.HeldUnder(nc); held != nil {
		// What goes to the engineer leaves in one system call per copy,
		// not one per 16 KiB record.
		eng = heldTLS{nc.(*tls.Conn), held}
	}
	r.splice(e, dev, eng, dst)
	e.log.Info("engineer disconnected", "reason", context.Cause(e.ctx))
}

// maxAhead bounds what readAhead takes: an SSH client's version line
// and key exchange are a fraction of it.
const maxAhead = 16 << 10

// aheadWait is how long readAhead waits for each read: what has reached
// the relay's socket is read at once.
const aheadWait = time.Millisecond

// readAhead reads what an engineer has sent over tc and has arrived, up to
// maxAhead, without waiting for more. Only a TLS connection is read so: a
// read that times out leaves it as it was (a WebSocket's would close it).
func readAhead(tc *tls.Conn) []byte {
	var got []byte
	buf := make([]byte, maxAhead)
	for len(got) < maxAhead {
		_ = tc.SetReadDeadline(time.Now().Add(aheadWait))
		n, err := tc.Read(buf[:maxAhead-len(got)])
		got = append(got, buf[:n]...)
		if err != nil {
			// A timeout: nothing more has come. Any other error stays
			// with the connection, for the splice to find.
			break
		}
	}
	_ = tc.SetReadDeadline(time.Time{})
	return got
}

// noHalfClose is a connection that cannot half-close (a WebSocket): the
// end of one direction waits for the other.
type noHalfClose struct{ net.Conn }

func (noHalfClose) CloseWrite() error { return nil }

// heldTLS is an engineer's TLS connection whose writes gather their records
// into one system call.
type heldTLS struct {
	*tls.Conn
	held *relayproto.HeldConn
}

func (h heldTLS) Write(p []byte) (int, error) {
	return h.held.Gather(p, h.Conn.Write)
}
