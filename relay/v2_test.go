package relay

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/internal/testtls"
	"github.com/porthole/porthole/internal/testwait"
	"github.com/porthole/porthole/relay/relayproto"
	"github.com/porthole/porthole/tlsmux"
)

// v2Env is the relay of a testEnv also serving its second protocol behind a
// real tlsmux on loopback.
type v2Env struct {
	*testEnv
	addr   string
	tls    *tls.Config              // the clients'
	handle func(io.ReadWriteCloser) // the devices' streams; nil: echo
	// beforeReply, if set, reads each stream of the devices after its
	// header and before the device's reply.
	beforeReply func(*yamux.Stream)
}

func newV2Env(t testing.TB, tweak func(*Config)) *v2Env {
	t.Helper()
	e := newEnv(t, tweak)
	cert, client := testtls.Pair(t, "relay.test")
	mux, err := tlsmux.New(tlsmux.Config{TLS: &tls.Config{Certificates: []tls.Certificate{cert}},
		WrapConn: func(c net.Conn) net.Conn { return relayproto.NewHeldConn(c) }})
	if err != nil {
		t.Fatal(err)
	}
	rl := mux.Route(relayproto.ALPN)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 2)
	go func() { served <- mux.Serve(l) }()
	go func() { served <- e.relay.ServeTLS(rl) }()
	t.Cleanup(func() {
		mux.Close()
		e.closedByTest = true
		e.relay.Close()
		for range 2 {
			<-served
		}
	})
	return &v2Env{testEnv: e, addr: l.Addr().String(), tls: client}
}

// v2Device is a device of the second protocol: its streams from the relay
// are echoed.
type v2Device struct {
	mux     *yamux.Session
	headers chan relayproto.StreamHeader
	handle  func(io.ReadWriteCloser) // nil: echo
	before  func(*yamux.Stream)      // see v2Env.beforeReply
}

func (e *v2Env) dialDevice(t testing.TB, fleet, device string, key ssh.Signer) (*v2Device, error) {
	t.Helper()
	tc, err := relayproto.Dial(context.Background(), e.addr, e.tls, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := relayproto.SendHello(tc, key, relayproto.Hello{Role: relayproto.RoleDevice, Fleet: fleet, Device: device}); err != nil {
		t.Fatal(err)
	}
	if err := relayproto.ReadReply(tc); err != nil {
		tc.Close()
		return nil, err
	}
	mux, err := relayproto.Mux(tc, false, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	d := &v2Device{mux: mux, headers: make(chan relayproto.StreamHeader, 16), handle: e.handle, before: e.beforeReply}
	t.Cleanup(func() { mux.Close() })
	go func() {
		for {
			st, err := mux.AcceptStream()
			if err != nil {
				return
			}
			go func() {
				defer st.Close()
				var h relayproto.StreamHeader
				if relayproto.ReadFrame(st, &h) != nil {
					return
				}
				select {
				case d.headers <- h:
				default: // a benchmark opens more than anyone reads
				}
				if d.before != nil {
					d.before(st)
				}
				if relayproto.WriteFrame(st, relayproto.Reply{OK: true}) != nil {
					return
				}
				if d.handle != nil {
					d.handle(st)
					return
				}
				_, _ = io.Copy(st, st)
			}()
		}
	}()
	return d, nil
}

func (d *v2Device) register(id string) (*yamux.Stream, error) {
	st, err := d.mux.OpenStream()
	if err != nil {
		return nil, err
	}
	if err := relayproto.WriteFrame(st, relayproto.Register{Session: id}); err != nil {
		return nil, err
	}
	if err := relayproto.ReadReply(st); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

func (e *v2Env) mustDevice(t testing.TB, fleet, device string, key ssh.Signer) *v2Device {
	t.Helper()
	d, err := e.dialDevice(t, fleet, device, key)
	if err != nil {
		t.Fatalf("device login: %v", err)
	}
	return d
}

// engineer dials as the holder of key's certificate; its reply is not
// waited for.
func (e *v2Env) engineer(t testing.TB, key ssh.Signer) *relayproto.Conn {
	t.Helper()
	cs := key.(ssh.AlgorithmSigner)
	cert := cs.PublicKey().(*ssh.Certificate)
	c, err := relayproto.DialEngineer(context.Background(), e.addr, e.tls, nil, key, cert)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestV2Splice(t *testing.T) {
	t.Parallel()
	e := newV2Env(t, nil)
	e.open("ses_1", "acme", "dev1")
	dev := e.mustDevice(t, "acme", "dev1", e.enroll("acme", "dev1"))
	if _, err := dev.register("ses_1"); err != nil {
		t.Fatal(err)
	}
	c := e.engineer(t, e.certFor(t, newSigner(t), claimsFor("ses_1", "acme", "dev1")))
	roundTrip(t, c, "hello, device")
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	go io.WriteString(c, big)
	got := make([]byte, len(big))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != big {
		t.Fatalf("1 MiB echo: %v", err)
	}
	h := <-dev.headers
	if h.Session != "ses_1" || !strings.HasPrefix(h.From, "127.0.0.1:") {
		t.Errorf("stream header = %+v; want ses_1 from 127.0.0.1", h)
	}
	if st := e.relay.Stats(); st != (Stats{Devices: 1, Engineers: 1, Registrations: 1, Splices: 1}) {
		t.Errorf("Stats = %+v", st)
	}
	// A half-close passes through.
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
		t.Errorf("after CloseWrite read %q, %v; want EOF", rest, err)
	}
	testwait.For(t, 5*time.Second, "the splice to end", func() bool { return e.relay.Stats().Splices == 0 })
	if n := e.refusalCount(); n != 0 {
		t.Errorf("%d refusals; want none", n)
	}
}

// TestV2EarlyEngineer: the engineer dials before the device has registered
// (it is being woken); the relay holds the stream and joins it when the
// device comes, with several sessions on one device connection.
func TestV2EarlyEngineer(t *testing.T) {
	t.Parallel()
	e := newV2Env(t, nil)
	e.open("ses_1", "acme", "dev1")
	e.open("ses_2", "acme", "dev1")
	c1 := e.engineer(t, e.certFor(t, newSigner(t), claimsFor("ses_1", "acme", "dev1")))
	c2 := e.engineer(t, e.certFor(t, newSigner(t), claimsFor("ses_2", "acme", "dev1")))
	// Sent before the device is even there.
	if _, err := io.WriteString(c1, "early"); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 5*time.Second, "both engineers", func() bool { return e.relay.Stats().Engineers == 2 })
	dev := e.mustDevice(t, "acme", "dev1", e.enroll("acme", "dev1"))
	for _, id := range []string{"ses_1", "ses_2"} {
		if _, err := dev.register(id); err != nil {
			t.Fatal(err)
		}
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(c1, got); err != nil || string(got) != "early" {
		t.Fatalf("read %q, %v; want the early bytes echoed", got, err)
	}
	roundTrip(t, c2, "second session, same device connection")
	if st := e.relay.Stats(); st.Devices != 1 || st.Splices != 2 {
		t.Errorf("Stats = %+v; want one device connection carrying two splices", st)
	}
}

// TestV2AheadWithHeader: what the engineer sent before the device came (an
// SSH client's version line) reaches the device with the stream's header,
// before the device has answered, so that its SSH server can answer at
// once; the device's own bytes reach the engineer only after its yes.
func TestV2AheadWithHeader(t *testing.T) {
	t.Parallel()
	e := newV2Env(t, nil)
	e.open("ses_1", "acme", "dev1")
	ahead := make(chan string, 1)
	e.beforeReply = func(st *yamux.Stream) {
		_ = st.SetReadDeadline(time.Now().Add(2 * time.Second))
		defer st.SetReadDeadline(time.Time{})
		b := make([]byte, 64)
		n, _ := st.Read(b)
		ahead <- string(b[:n])
	}
	e.handle = func(st io.ReadWriteCloser) { _, _ = io.WriteString(st, "SSH-2.0-device\r\n") }
	c := e.engineer(t, e.certFor(t, newSigner(t), claimsFor("ses_1", "acme", "dev1")))
	if _, err := io.WriteString(c, "SSH-2.0-engineer\r\n"); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 5*time.Second, "the engineer", func() bool { return e.relay.Stats().Engineers == 1 })
	time.Sleep(50 * time.Millisecond) // the version line has reached the relay
	dev := e.mustDevice(t, "acme", "dev1", e.enroll("acme", "dev1"))
	if _, err := dev.register("ses_1"); err != nil {
		t.Fatal(err)
	}
	if got := <-ahead; got != "SSH-2.0-engineer\r\n" {
		t.Errorf("the device read %q before answering; want the engineer's version line", got)
	}
	got := make([]byte, len("SSH-2.0-device\r\n"))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "SSH-2.0-device\r\n" {
		t.Errorf("the engineer read %q, %v; want the device's version line after the relay's yes", got, err)
	}
}

// TestV2Mixed: an engineer of either protocol reaches a device of the
// other, so old agents and old clients keep working during an upgrade.
func TestV2Mixed(t *testing.T) {
	t.Parallel()
	e := newV2Env(t, nil)
	e.open("ses_old", "acme", "old")
	e.open("ses_new", "acme", "new")
	oldDev := e.testEnv.mustDevice(t, "acme", "old", e.enroll("acme", "old"))
	oldDev.mustRegister(t, "ses_old")
	c := e.engineer(t, e.certFor(t, newSigner(t), claimsFor("ses_old", "acme", "old")))
	roundTrip(t, c, "v2 engineer to SSH device")

	newDev := e.mustDevice(t, "acme", "new", e.enroll("acme", "new"))
	if _, err := newDev.register("ses_new"); err != nil {
		t.Fatal(err)
	}
	eng := e.testEnv.mustEngineer(t, "ses_new", "acme", "new")
	ch, err := openDirect(eng, "ses_new")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, ch, "SSH engineer to v2 device")
}

// TestV2Refusals tries what an attacker would on the second protocol: a
// stranger's key, a hello replayed on another connection, another
// device's session, a bare key, a closed session's certificate, garbage.
func TestV2Refusals(t *testing.T) {
	t.Parallel()
	e := newV2Env(t, func(c *Config) { c.EarlyWait = 300 * time.Millisecond; c.ID = "rly_here" })
	devKey := e.enroll("acme", "dev1")
	e.enroll("acme", "dev2")
	e.open("ses_1", "acme", "dev1")
	e.setSession(Session{ID: "ses_away", Fleet: "acme", Device: "dev1", Open: true, Relay: "rly_other"})
	e.setSession(Session{ID: "ses_here", Fleet: "acme", Device: "dev1", Open: true, Relay: "rly_here"})
	e.open("ses_2", "acme", "dev2")
	e.open("ses_old", "acme", "dev1")
	e.closeSession("ses_old")

	t.Run("device with a stranger's key", func(t *testing.T) {
		_, err := e.dialDevice(t, "acme", "dev1", newSigner(t))
		wantRefused(t, err, "refused this device's login")
	})
	t.Run("unknown device", func(t *testing.T) {
		_, err := e.dialDevice(t, "acme", "nobody", devKey)
		wantRefused(t, err, "refused this device's login")
	})
	t.Run("hello replayed on another connection", func(t *testing.T) {
		// An observer inside one TLS connection (a compromised middle) takes
		// the device's signed hello to a connection of its own.
		tc1, err := relayproto.Dial(context.Background(), e.addr, e.tls, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tc1.Close()
		b1, _ := relayproto.Binding(tc1.ConnectionState())
		env, _ := relayproto.Sign(devKey, b1, relayproto.Hello{Role: relayproto.RoleDevice, Fleet: "acme", Device: "dev1"})
		tc2, err := relayproto.Dial(context.Background(), e.addr, e.tls, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tc2.Close()
		if err := relayproto.WriteFrame(tc2, env); err != nil {
			t.Fatal(err)
		}
		wantRefused(t, relayproto.ReadReply(tc2), "refused this device's login")
		if f := e.refusal(t, "login"); !strings.Contains(f.Why, "not signed by the device's enrolled key") {
			t.Errorf("refusal = %+v", f)
		}
	})
	t.Run("device registers another device's session", func(t *testing.T) {
		dev := e.mustDevice(t, "acme", "dev1", devKey)
		_, err := dev.register("ses_2")
		wantRefused(t, err, "is not on device acme/dev1")
		_, err = dev.register("ses_old")
		wantRefused(t, err, "is closed")
		_, err = dev.register("no such")
		wantRefused(t, err, "not a session id")
	})
	t.Run("session placed on another relay node", func(t *testing.T) {
		// A device or an engineer that dials another node than the one
		// the session was placed on (a load balancer's address, say) is
		// told so, rather than waiting there for the other.
		dev := e.mustDevice(t, "acme", "dev1", devKey)
		_, err := dev.register("ses_away")
		wantRefused(t, err, "was placed on another relay node (rly_other)")
		c := e.engineer(t, e.certFor(t, newSigner(t), claimsFor("ses_away", "acme", "dev1")))
		wantRefused(t, c.Wait(), "was placed on another relay node (rly_other)")
		if _, err := dev.register("ses_here"); err != nil {
			t.Errorf("registering a session placed on this relay: %v", err)
		}
	})
	t.Run("engineer with a bare key", func(t *testing.T) {
		tc, err := relayproto.Dial(context.Background(), e.addr, e.tls, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Close()
		key := newSigner(t)
		if err := relayproto.SendHello(tc, key, relayproto.Hello{Role: relayproto.RoleEngineer, Cert: key.PublicKey().Marshal()}); err != nil {
			t.Fatal(err)
		}
		wantRefused(t, relayproto.ReadReply(tc), "not a bare key")
	})
	t.Run("engineer signs with another key than the certificate's", func(t *testing.T) {
		cert := e.certFor(t, newSigner(t), claimsFor("ses_1", "acme", "dev1")).PublicKey().(*ssh.Certificate)
		tc, err := relayproto.Dial(context.Background(), e.addr, e.tls, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Close()
		if err := relayproto.SendHello(tc, newSigner(t), relayproto.Hello{Role: relayproto.RoleEngineer, Cert: cert.Marshal()}); err != nil {
			t.Fatal(err)
		}
		wantRefused(t, relayproto.ReadReply(tc), "not signed by the certificate's key")
	})
	t.Run("engineer with a closed session's certificate", func(t *testing.T) {
		c := e.engineer(t, e.certFor(t, newSigner(t), claimsFor("ses_old", "acme", "dev1")))
		wantRefused(t, c.Wait(), "session ses_old is closed")
	})
	t.Run("engineer's certificate names another device", func(t *testing.T) {
		c := e.engineer(t, e.certFor(t, newSigner(t), claimsFor("ses_2", "acme", "dev1")))
		wantRefused(t, c.Wait(), "is not on device acme/dev1")
	})
	t.Run("certificate from another CA", func(t *testing.T) {
		c := e.engineer(t, certBy(t, newSigner(t), newSigner(t), claimsFor("ses_1", "acme", "dev1")))
		wantRefused(t, c.Wait(), "session certificate refused")
	})
	t.Run("device never comes", func(t *testing.T) {
		c := e.engineer(t, e.certFor(t, newSigner(t), claimsFor("ses_2", "acme", "dev2")))
		err := c.Wait()
		wantRefused(t, err, "has not connected")
		if re := (*relayproto.ReplyError)(nil); errors.As(err, &re) && re.Code != relayproto.CodeNoDevice {
			t.Errorf("code = %q; want %q", re.Code, relayproto.CodeNoDevice)
		}
	})
	t.Run("garbage and oversized frames", func(t *testing.T) {
		for _, junk := range [][]byte{{0xff, 0xff}, []byte("\x00\x05hello"), []byte("SSH-2.0-OpenSSH_9.2\r\n")} {
			tc, err := relayproto.Dial(context.Background(), e.addr, e.tls, nil)
			if err != nil {
				t.Fatal(err)
			}
			tc.Write(junk)
			tc.SetReadDeadline(time.Now().Add(5 * time.Second))
			var rep relayproto.Reply
			err = relayproto.ReadFrame(tc, &rep)
			if err == nil && rep.OK {
				t.Errorf("junk %q was accepted", junk)
			}
			tc.Close()
		}
	})
	t.Run("a client without the ALPN is not the relay's", func(t *testing.T) {
		tc, err := tls.Dial("tcp", e.addr, e.tls)
		if err != nil {
			return // refused in the handshake: fine too
		}
		defer tc.Close()
		tc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := tc.Read(make([]byte, 1)); err == nil || n > 0 {
			t.Fatal("the mux kept a client asking for no protocol, with no route for it")
		}
	})
}

// TestV2CloseSession: closing a session cuts its streams and its engineer
// at once, and frees the device's registration, while the device's other
// session on the same connection runs on.
func TestV2CloseSession(t *testing.T) {
	t.Parallel()
	e := newV2Env(t, nil)
	e.open("ses_1", "acme", "dev1")
	e.open("ses_2", "acme", "dev1")
	dev := e.mustDevice(t, "acme", "dev1", e.enroll("acme", "dev1"))
	reg1, err := dev.register("ses_1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dev.register("ses_2"); err != nil {
		t.Fatal(err)
	}
	c1 := e.engineer(t, e.certFor(t, newSigner(t), claimsFor("ses_1", "acme", "dev1")))
	c2 := e.engineer(t, e.certFor(t, newSigner(t), claimsFor("ses_2", "acme", "dev1")))
	roundTrip(t, c1, "one")
	roundTrip(t, c2, "two")

	e.closeSession("ses_1")
	e.relay.CloseSession("ses_1")
	c1.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c1); err != nil {
		t.Errorf("the cut engineer's read ended with %v; want its end", err)
	}
	// The device learns its registration ended: the stream closes.
	reg1.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(reg1); err != nil {
		t.Errorf("the registration stream ended with %v; want EOF", err)
	}
	roundTrip(t, c2, "still here")
	if e.relay.Registered("ses_1") || !e.relay.Registered("ses_2") {
		t.Error("ses_1 should be unregistered and ses_2 still registered")
	}
	// A credential of the closed session cannot come back.
	again := e.engineer(t, e.certFor(t, newSigner(t), claimsFor("ses_1", "acme", "dev1")))
	if err := again.Wait(); err == nil {
		t.Error("a closed session's certificate reached the device again")
	}
}

// TestV2Linger: a device connection of the second protocol outlives a cut
// session (the device may be registering its next one on it), but one
// that serves no session for a whole interval is closed; and a silent
// device (it stops answering the multiplexer's pings) is dropped with its
// registrations reported as left.
func TestV2Linger(t *testing.T) {
	t.Parallel()
	left := make(chan []string, 1)
	e := newV2Env(t, func(c *Config) {
		c.KeepAliveInterval = 200 * time.Millisecond
		c.DeviceLeft = func(ids []string) { left <- ids }
	})
	e.open("ses_1", "acme", "dev1")
	dev := e.mustDevice(t, "acme", "dev1", e.enroll("acme", "dev1"))
	if _, err := dev.register("ses_1"); err != nil {
		t.Fatal(err)
	}
	e.closeSession("ses_1")
	e.relay.CloseSession("ses_1")
	if dev.mux.IsClosed() {
		t.Fatal("the shared connection was closed with its last session")
	}
	// The relay closes the multiplexer first and forgets the device as its
	// handler returns, a moment later: wait for both.
	testwait.For(t, 5*time.Second, "the idle connection to be closed and forgotten", func() bool {
		return dev.mux.IsClosed() && e.relay.Stats().Devices == 0
	})
	select {
	case ids := <-left:
		t.Errorf("DeviceLeft(%v) for a connection whose sessions were closed", ids)
	default:
	}
}

// TestV2SilentDevice: a device whose network vanishes (its bytes stop
// flowing, nothing is closed) is found by the multiplexer's pings within
// a few intervals, and its sessions are reported as left.
func TestV2SilentDevice(t *testing.T) {
	t.Parallel()
	left := make(chan []string, 1)
	e := newV2Env(t, func(c *Config) {
		c.KeepAliveInterval = 200 * time.Millisecond
		c.DeviceLeft = func(ids []string) { left <- ids }
	})
	// A path that can be cut without a word: a TCP proxy that stops
	// forwarding.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cut := make(chan struct{})
	relayAddr := e.addr
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r, err := net.Dial("tcp", relayAddr)
		if err != nil {
			return
		}
		defer r.Close()
		pipe := func(dst, src net.Conn) {
			buf := make([]byte, 32<<10)
			for {
				n, err := src.Read(buf)
				select {
				case <-cut:
					<-t.Context().Done() // silent: hold everything
					return
				default:
				}
				if n > 0 {
					dst.Write(buf[:n])
				}
				if err != nil {
					return
				}
			}
		}
		go pipe(r, c)
		pipe(c, r)
	}()
	e.addr = l.Addr().String()
	e.open("ses_1", "acme", "dev1")
	dev := e.mustDevice(t, "acme", "dev1", e.enroll("acme", "dev1"))
	e.addr = relayAddr
	if _, err := dev.register("ses_1"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	close(cut)
	select {
	case ids := <-left:
		if len(ids) != 1 || ids[0] != "ses_1" {
			t.Errorf("DeviceLeft(%v); want [ses_1]", ids)
		}
		t.Logf("found silent after %v", time.Since(start).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatal("the silent device was not found within 5 s")
	}
}

// TestV2MarkerNeverSeen: a marker typed through an end-to-end SSH session
// over the second protocol crosses the relay, yet never appears in any
// byte the relay handled: what the device received from it and sent to it
// is the inner SSH's ciphertext only. The same holds for a browser's
// engineer (the web console's terminal: a WebSocket, its hello signed over
// the relay's challenge).
func TestV2MarkerNeverSeen(t *testing.T) {
	t.Parallel()
	t.Run("cli", func(t *testing.T) {
		t.Parallel()
		e := newV2Env(t, nil)
		markerNeverSeen(t, e, func(key ssh.Signer) net.Conn { return e.engineer(t, key) })
	})
	t.Run("browser", func(t *testing.T) {
		t.Parallel()
		e := newWSEnv(t, nil)
		markerNeverSeen(t, e.v2Env, func(key ssh.Signer) net.Conn {
			nc, _, err := relayproto.DialWebSocket(context.Background(), e.wsAddr, relayproto.WebSocketPath, relayproto.BrowserSubprotocol, e.wsTLS, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { nc.Close() })
			if err := relayproto.SendChallengeHello(nc, key, engineerHelloOf(key)); err != nil {
				t.Fatal(err)
			}
			return relayproto.NewEngineerConn(nc)
		})
	})
}

func markerNeverSeen(t *testing.T, e *v2Env, engineer func(ssh.Signer) net.Conn) {
	e.open("ses_1", "acme", "dev1")
	deviceHostKey := newSigner(t)
	serve := innerServer(e.userCA.PublicKey(), deviceHostKey)
	var seen tapped
	e.handle = func(st io.ReadWriteCloser) { serve(streamChannel{&tap{st, &seen}}) }
	dev := e.mustDevice(t, "acme", "dev1", e.enroll("acme", "dev1"))
	if _, err := dev.register("ses_1"); err != nil {
		t.Fatal(err)
	}
	engKey := e.certFor(t, newSigner(t), claimsFor("ses_1", "acme", "dev1"))
	c := engineer(engKey)
	icc, chans, reqs, err := ssh.NewClientConn(c, "ses_1", &ssh.ClientConfig{
		User: "ann", Auth: []ssh.AuthMethod{ssh.PublicKeys(engKey)},
		HostKeyCallback: ssh.FixedHostKey(deviceHostKey.PublicKey()),
	})
	if err != nil {
		t.Fatal(err)
	}
	inner := ssh.NewClient(icc, chans, reqs)
	defer inner.Close()
	const marker = "MARKER-7f3c9e1a-never-in-the-clear"
	s, err := inner.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Output("echo " + marker)
	if err != nil || !strings.Contains(string(out), marker) {
		t.Fatalf("inner exec = %q, %v; want the marker back", out, err)
	}
	if n, found := seen.contains(marker); n == 0 || found {
		t.Fatalf("the relay handled %d bytes; marker among them: %v", n, found)
	}
	// The tap does see what travels in the clear: the SSH version lines.
	if _, found := seen.contains("SSH-2.0-"); !found {
		t.Error("the tap saw no SSH version line: it is not looking at the relay's bytes")
	}
}

// tapped keeps every byte a device stream carried, both ways.
type tapped struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (t *tapped) add(p []byte) {
	t.mu.Lock()
	t.buf.Write(p)
	t.mu.Unlock()
}

func (t *tapped) contains(s string) (int, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.Len(), bytes.Contains(t.buf.Bytes(), []byte(s))
}

type tap struct {
	io.ReadWriteCloser
	t *tapped
}

func (p *tap) Read(b []byte) (int, error) {
	n, err := p.ReadWriteCloser.Read(b)
	p.t.add(b[:n])
	return n, err
}

func (p *tap) Write(b []byte) (int, error) {
	p.t.add(b)
	return p.ReadWriteCloser.Write(b)
}

// streamChannel is a device's stream as the ssh.Channel innerServer serves.
type streamChannel struct{ io.ReadWriteCloser }

func (streamChannel) CloseWrite() error                              { return nil }
func (streamChannel) SendRequest(string, bool, []byte) (bool, error) { return false, nil }
func (streamChannel) Stderr() io.ReadWriter                          { return nil }
