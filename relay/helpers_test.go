package relay

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/internal/testnet"
	"github.com/porthole/porthole/internal/testwait"
	"github.com/porthole/porthole/relay/relayproto"
	"github.com/porthole/porthole/sessioncert"
)

// TestMain fails the run if any goroutine of the relay or of x/crypto/ssh
// outlives the tests: every test closes its relay and its clients.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := testwait.Leftover(5*time.Second, "golang.org/x/crypto/ssh.", "porthole/relay.(*", "porthole/relay.echo"); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines left after the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

func newSigner(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testEnv is a relay on loopback with an in-memory store of devices and
// sessions, a host CA and a user CA.
type testEnv struct {
	t      testing.TB
	relay  *Relay
	addr   string
	hostCA ssh.Signer
	userCA ssh.Signer
	skew   atomic.Int64 // added to the relay's clock
	logs   *testnet.Buffer
	// closedByTest: the test closed the relay itself.
	closedByTest bool

	mu           sync.Mutex
	deviceKeys   map[string]ed25519.PublicKey // by "fleet/device"
	sessions     map[string]Session
	refusals     []Refusal
	activity     []string
	sessionGate  chan struct{} // if not nil, session lookups wait for it
	sessionCalls int
	lookupErr    error // if not nil, what every lookup fails with
}

func newEnv(t testing.TB, tweak func(*Config)) *testEnv {
	t.Helper()
	e := &testEnv{
		t:          t,
		hostCA:     newSigner(t),
		userCA:     newSigner(t),
		logs:       &testnet.Buffer{},
		deviceKeys: make(map[string]ed25519.PublicKey),
		sessions:   make(map[string]Session),
	}
	hostKey := newSigner(t)
	cert := &ssh.Certificate{
		Key: hostKey.PublicKey(), CertType: ssh.HostCert, KeyId: "relay",
		ValidPrincipals: []string{"127.0.0.1"}, ValidBefore: ssh.CertTimeInfinity,
	}
	if err := cert.SignCert(rand.Reader, e.hostCA); err != nil {
		t.Fatal(err)
	}
	certSigner, err := ssh.NewCertSigner(cert, hostKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		HostKey:   certSigner,
		UserCA:    e.userCA.PublicKey(),
		DeviceKey: e.deviceKey,
		Session:   e.session,
		Activity: func(id string) {
			e.mu.Lock()
			e.activity = append(e.activity, id)
			e.mu.Unlock()
		},
		Refused: func(f Refusal) {
			e.mu.Lock()
			e.refusals = append(e.refusals, f)
			e.mu.Unlock()
		},
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    e.now,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	e.relay, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = l.Addr().String()
	served := make(chan error, 1)
	go func() { served <- e.relay.Serve(l) }()
	t.Cleanup(func() {
		if err := e.relay.Close(); err != nil && !(e.closedByTest && errors.Is(err, ErrClosed)) {
			t.Errorf("Close = %v", err)
		}
		if err := <-served; !errors.Is(err, ErrClosed) {
			t.Errorf("Serve = %v; want ErrClosed", err)
		}
		if t.Failed() {
			t.Logf("relay log:\n%s", e.logs)
		}
	})
	return e
}

func (e *testEnv) now() time.Time { return time.Now().Add(time.Duration(e.skew.Load())) }

func (e *testEnv) deviceKey(ctx context.Context, fleet, device string) (ed25519.PublicKey, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lookupErr != nil {
		return nil, e.lookupErr
	}
	key, ok := e.deviceKeys[fleet+"/"+device]
	if !ok {
		return nil, ErrUnknownDevice
	}
	return key, nil
}

func (e *testEnv) session(ctx context.Context, id string) (Session, error) {
	e.mu.Lock()
	gate := e.sessionGate
	e.sessionCalls++
	e.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return Session{}, ctx.Err()
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lookupErr != nil {
		return Session{}, e.lookupErr
	}
	s, ok := e.sessions[id]
	if !ok {
		return Session{}, ErrUnknownSession
	}
	return s, nil
}

// enroll adds a device and returns its key.
func (e *testEnv) enroll(fleet, device string) ssh.Signer {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.deviceKeys[fleet+"/"+device] = pub
	e.mu.Unlock()
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *testEnv) deleteDevice(fleet, device string) {
	e.mu.Lock()
	delete(e.deviceKeys, fleet+"/"+device)
	e.mu.Unlock()
}

// open records an open session on a device.
func (e *testEnv) open(id, fleet, device string) {
	e.setSession(Session{ID: id, Fleet: fleet, Device: device, Open: true})
}

func (e *testEnv) setSession(s Session) {
	e.mu.Lock()
	e.sessions[s.ID] = s
	e.mu.Unlock()
}

func (e *testEnv) closeSession(id string) {
	e.mu.Lock()
	s := e.sessions[id]
	s.Open = false
	e.sessions[id] = s
	e.mu.Unlock()
	e.relay.CloseSession(id)
}

// refusal waits for a refusal of what and returns it.
func (e *testEnv) refusal(t testing.TB, what string) Refusal {
	t.Helper()
	var found Refusal
	testwait.For(t, 5*time.Second, "a refusal of "+what, func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, f := range e.refusals {
			if f.What == what {
				found = f
				return true
			}
		}
		return false
	})
	return found
}

func (e *testEnv) refusalCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.refusals)
}

func (e *testEnv) activityCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.activity)
}

// dial logs in to the relay as user with key, checking the relay's host
// certificate against the host CA. A login error carries the banner the
// relay sent.
func (e *testEnv) dial(user string, key ssh.Signer) (ssh.Conn, <-chan ssh.NewChannel, <-chan *ssh.Request, error) {
	checker := &ssh.CertChecker{
		IsHostAuthority: func(auth ssh.PublicKey, _ string) bool {
			return bytes.Equal(auth.Marshal(), e.hostCA.PublicKey().Marshal())
		},
	}
	var banner strings.Builder
	cfg := &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: checker.CheckHostKey,
		BannerCallback:  func(m string) error { banner.WriteString(m); return nil },
		Timeout:         5 * time.Second,
	}
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		return nil, nil, nil, err
	}
	conn, chans, reqs, err := ssh.NewClientConn(nc, e.addr, cfg)
	if err != nil {
		nc.Close()
		return nil, nil, nil, fmt.Errorf("%w (banner %q)", err, banner.String())
	}
	return conn, chans, reqs, nil
}

// testDevice is a device client: it registers sessions and serves the
// forwarded-tcpip channels the relay opens with handle (echo by default).
type testDevice struct {
	conn ssh.Conn
	done chan struct{} // closed when the connection has ended

	mu      sync.Mutex
	offered []forwardedChannel // payloads of forwarded-tcpip channels
	other   []string           // types of other channels offered
}

// echo copies a channel back to itself, half-close included.
func echo(ch ssh.Channel) {
	_, _ = io.Copy(ch, ch)
	_ = ch.CloseWrite()
	_ = ch.Close()
}

func (e *testEnv) dialDevice(t testing.TB, fleet, device string, key ssh.Signer, handle func(ssh.Channel)) (*testDevice, error) {
	t.Helper()
	conn, chans, reqs, err := e.dial(fleet+"/"+device, key)
	if err != nil {
		return nil, err
	}
	if handle == nil {
		handle = echo
	}
	d := &testDevice{conn: conn, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Go(func() { ssh.DiscardRequests(reqs) })
	wg.Go(func() {
		for nc := range chans {
			if nc.ChannelType() != "forwarded-tcpip" {
				d.mu.Lock()
				d.other = append(d.other, nc.ChannelType())
				d.mu.Unlock()
				_ = nc.Reject(ssh.UnknownChannelType, "no")
				continue
			}
			var m forwardedChannel
			if err := ssh.Unmarshal(nc.ExtraData(), &m); err != nil {
				_ = nc.Reject(ssh.ConnectionFailed, "malformed")
				continue
			}
			d.mu.Lock()
			d.offered = append(d.offered, m)
			d.mu.Unlock()
			ch, creqs, err := nc.Accept()
			if err != nil {
				continue
			}
			wg.Go(func() { ssh.DiscardRequests(creqs) })
			wg.Go(func() { handle(ch) })
		}
	})
	go func() {
		_ = conn.Wait()
		wg.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		d.conn.Close()
		<-d.done
	})
	return d, nil
}

// mustDevice logs a device in, failing the test if it cannot.
func (e *testEnv) mustDevice(t testing.TB, fleet, device string, key ssh.Signer) *testDevice {
	t.Helper()
	d, err := e.dialDevice(t, fleet, device, key, nil)
	if err != nil {
		t.Fatalf("device %s/%s login: %v", fleet, device, err)
	}
	return d
}

// register sends tcpip-forward for a session and reports the answer.
func (d *testDevice) register(id string, port uint32) (bool, []byte, error) {
	return d.conn.SendRequest("tcpip-forward", true, ssh.Marshal(forwardRequest{Addr: id, Port: port}))
}

func (d *testDevice) mustRegister(t testing.TB, id string) {
	t.Helper()
	ok, reply, err := d.register(id, 0)
	if err != nil || !ok {
		t.Fatalf("registering %s = %v, %v; want success", id, ok, err)
	}
	var port forwardReply
	if err := ssh.Unmarshal(reply, &port); err != nil || port.Port != 0 {
		t.Fatalf("reply to tcpip-forward = %x (%v); want port 0 as a uint32", reply, err)
	}
}

func (d *testDevice) offers() []forwardedChannel {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]forwardedChannel(nil), d.offered...)
}

// certFor signs a session certificate for key, valid for an hour.
func (e *testEnv) certFor(t testing.TB, key ssh.Signer, c sessioncert.Claims) ssh.Signer {
	t.Helper()
	return certBy(t, e.userCA, key, c)
}

func certBy(t testing.TB, ca, key ssh.Signer, c sessioncert.Claims) ssh.Signer {
	t.Helper()
	cert, err := sessioncert.Sign(ca, key.PublicKey(), c)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewCertSigner(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claims for session id on fleet/device, valid from now for an hour.
func claimsFor(id, fleet, device string) sessioncert.Claims {
	now := time.Now()
	return sessioncert.Claims{Session: id, Fleet: fleet, Device: device, DeviceID: "id-" + device,
		User: "ann@example.com", ValidAfter: now.Add(-sessioncert.Margin), ValidBefore: now.Add(time.Hour)}
}

// dialEngineer logs an engineer in with a certificate for session id.
func (e *testEnv) dialEngineer(t testing.TB, key ssh.Signer) (*ssh.Client, error) {
	t.Helper()
	conn, chans, reqs, err := e.dial("engineer", key)
	if err != nil {
		return nil, err
	}
	c := ssh.NewClient(conn, chans, reqs)
	t.Cleanup(func() { c.Close() })
	return c, nil
}

func (e *testEnv) mustEngineer(t testing.TB, id, fleet, device string) *ssh.Client {
	t.Helper()
	c, err := e.dialEngineer(t, e.certFor(t, newSigner(t), claimsFor(id, fleet, device)))
	if err != nil {
		t.Fatalf("engineer login for %s: %v", id, err)
	}
	return c
}

// openDirect opens a direct-tcpip channel to host and returns it with its
// request stream drained.
func openDirect(c ssh.Conn, host string) (ssh.Channel, error) {
	ch, reqs, err := c.OpenChannel("direct-tcpip", ssh.Marshal(directRequest{Host: host, Port: 22, OrigHost: "127.0.0.1", OrigPort: 1}))
	if err != nil {
		return nil, err
	}
	go ssh.DiscardRequests(reqs)
	return ch, nil
}

// roundTrip writes msg on ch and reads as many bytes back.
func roundTrip(t testing.TB, ch io.ReadWriter, msg string) {
	t.Helper()
	if _, err := io.WriteString(ch, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(ch, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(got) != msg {
		t.Fatalf("read %q; want %q", got, msg)
	}
}

// wantRefused fails t unless err is the relay's refusal saying want.
func wantRefused(t *testing.T, err error, want string) {
	t.Helper()
	var re *relayproto.ReplyError
	if !errors.As(err, &re) || !strings.Contains(re.Error(), want) {
		t.Fatalf("err = %v; want a refusal saying %q", err, want)
	}
}
