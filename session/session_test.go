package session

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/sessioncert"
	"github.com/porthole/porthole/store"
	"github.com/porthole/porthole/store/storetest"
)

// fixture is a Manager on a real SQLite store with one device, and the
// device's side of the control channel: the commands published to it,
// checked as the agent checks them.
type fixture struct {
	m       *Manager
	st      store.Store
	dev     *store.Device
	other   *store.Device // another device of the same fleet
	user    *store.User
	userCA  ssh.Signer
	control ed25519.PublicKey

	mu        sync.Mutex
	published []string // topics
	cmds      chan *control.Command
	verifier  *control.Verifier
	closedIDs chan string
	failSend  error
}

type memNonces struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (n *memNonces) Remember(nonce string, _, _ time.Time) (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.seen[nonce] {
		return false, nil
	}
	n.seen[nonce] = true
	return true, nil
}

func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newFixture(t *testing.T, edit func(*Config)) *fixture {
	t.Helper()
	ctx := t.Context()
	st := storetest.OpenSQLite(t)
	f := &store.Fleet{Name: "acme"}
	if err := st.CreateFleet(ctx, f); err != nil {
		t.Fatal(err)
	}
	u := &store.User{Email: "ann@example.com", PasswordHash: "x", TOTPSecret: "x"}
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	tok := &store.EnrollmentToken{FleetID: f.ID, Hash: "h", UsesLeft: 2, MaxUses: 2, ExpiresAt: time.Now().Add(time.Hour)}
	if err := st.CreateEnrollmentToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	enroll := func(name string) *store.Device {
		d := &store.Device{Name: name, PublicKey: "ssh-ed25519 AAAA" + name}
		if err := st.EnrollDevice(ctx, "h", time.Now(), d, func(*store.Fleet) (string, error) { return "cert", nil }); err != nil {
			t.Fatal(err)
		}
		d.FleetName = "acme"
		return d
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	fx := &fixture{st: st, dev: enroll("dev1"), other: enroll("dev2"), user: u, userCA: newSigner(t), control: pub,
		cmds: make(chan *control.Command, 16), closedIDs: make(chan string, 16)}
	v, err := control.NewVerifier(pub, "acme", "dev1", &memNonces{seen: map[string]bool{}})
	if err != nil {
		t.Fatal(err)
	}
	fx.verifier = v
	cfg := Config{
		Store: st, ControlKey: priv, UserCA: fx.userCA, RelayAddr: "relay.example.com:443",
		Publish:       fx.publish,
		Closed:        func(id string) { fx.closedIDs <- id },
		SweepInterval: 10 * time.Millisecond,
	}
	if edit != nil {
		edit(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	fx.m = m
	return fx
}

// publish is the device: it verifies what reaches its topic.
func (fx *fixture) publish(topic string, payload []byte) error {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	if fx.failSend != nil {
		return fx.failSend
	}
	fx.published = append(fx.published, topic)
	cmd, err := fx.verifier.Verify(payload, time.Now())
	if err != nil {
		return err
	}
	fx.cmds <- cmd
	return nil
}

func (fx *fixture) open(t *testing.T, edit func(*Request)) *Opened {
	t.Helper()
	req := Request{Device: fx.dev, User: fx.user, PublicKey: newSigner(t).PublicKey(), Ports: []int{22}, Reason: "ticket 7"}
	if edit != nil {
		edit(&req)
	}
	o, err := fx.m.Open(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func (fx *fixture) cmd(t *testing.T) *control.Command {
	t.Helper()
	select {
	case c := <-fx.cmds:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no command reached the device")
		return nil
	}
}

// waitClosed waits for the session to close and returns it.
func (fx *fixture) waitClosed(t *testing.T, id string) *store.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	ses, err := fx.m.Wait(ctx, id, store.SessionClosed)
	if err != nil {
		t.Fatal(err)
	}
	if ses.State != store.SessionClosed {
		t.Fatalf("session still %s after 5 s", ses.State)
	}
	return ses
}

func TestOpenSendsSignedCommandAndCertificate(t *testing.T) {
	fx := newFixture(t, nil)
	o := fx.open(t, nil)
	if o.Session.State != store.SessionConnecting {
		t.Errorf("state %s; want connecting", o.Session.State)
	}
	cmd := fx.cmd(t)
	if cmd.Type != control.TypeOpen || cmd.Session != o.Session.ID || cmd.Relay != "relay.example.com:443" ||
		cmd.IdleTimeoutS != 900 || cmd.MaxDurationS != 7200 || len(cmd.Ports) != 1 {
		t.Errorf("open command %+v", cmd)
	}
	claims, err := sessioncert.Verify(fx.userCA.PublicKey(), o.Certificate, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if claims.Session != o.Session.ID || claims.Device != "dev1" || claims.Fleet != "acme" || claims.DeviceID != fx.dev.ID {
		t.Errorf("certificate claims %+v", claims)
	}
	// Valid until the session's latest end, and not much longer.
	end := o.Session.CreatedAt.Add(2 * time.Hour)
	if claims.ValidBefore.Before(end) || claims.ValidBefore.After(end.Add(sessioncert.Margin+time.Second)) {
		t.Errorf("certificate valid before %v; the session ends by %v", claims.ValidBefore, end)
	}
}

func TestLimitsOnlyShorten(t *testing.T) {
	fx := newFixture(t, nil)
	o := fx.open(t, func(r *Request) { r.IdleTimeout, r.MaxDuration = time.Minute, 100*time.Hour })
	if o.Session.IdleTimeout != time.Minute || o.Session.MaxDuration != 2*time.Hour {
		t.Errorf("limits %v, %v; want 1m (asked) and 2h (the server's most)", o.Session.IdleTimeout, o.Session.MaxDuration)
	}
}

func TestTunnelUpAndDown(t *testing.T) {
	fx := newFixture(t, nil)
	o := fx.open(t, nil)
	id := o.Session.ID
	done := make(chan *store.Session)
	go func() {
		ses, _ := fx.m.Wait(context.Background(), id, store.SessionActive)
		done <- ses
	}()
	// Another device cannot speak for this session.
	fx.m.HandleState("acme", "dev2", control.State{Kind: control.StateTunnelUp, Session: id})
	fx.m.HandleState("acme", "dev2", control.State{Kind: control.StateTunnelDown, Session: id, Reason: "x"})
	if ses, _ := fx.m.Get(t.Context(), id); ses.State != store.SessionConnecting {
		t.Fatalf("another device moved the session to %s", ses.State)
	}
	fx.m.HandleState("acme", "dev1", control.State{Kind: control.StateTunnelUp, Session: id})
	select {
	case ses := <-done:
		if ses.State != store.SessionActive {
			t.Fatalf("Wait returned %s", ses.State)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return when the tunnel came up")
	}
	fx.m.HandleState("acme", "dev1", control.State{Kind: control.StateTunnelDown, Session: id, Reason: "revoked"})
	ses := fx.waitClosed(t, id)
	if ses.CloseReason != "revoked" {
		t.Errorf("close reason %q; want the device's, revoked", ses.CloseReason)
	}
	if got := <-fx.closedIDs; got != id {
		t.Errorf("Closed told of %s", got)
	}
}

func TestEngineerClose(t *testing.T) {
	fx := newFixture(t, nil)
	o := fx.open(t, nil)
	fx.cmd(t) // open
	ses, err := fx.m.CloseSession(t.Context(), o.Session.ID, control.CloseEngineer)
	if err != nil || ses.State != store.SessionClosed || ses.CloseReason != string(control.CloseEngineer) {
		t.Fatalf("CloseSession = %+v, %v", ses, err)
	}
	if c := fx.cmd(t); c.Type != control.TypeClose || c.Session != o.Session.ID {
		t.Errorf("close command %+v", c)
	}
	// A second close changes nothing and sends nothing.
	ses, err = fx.m.CloseSession(t.Context(), o.Session.ID, "other")
	if err != nil || ses.CloseReason != string(control.CloseEngineer) {
		t.Errorf("second close: %+v, %v", ses, err)
	}
	select {
	case c := <-fx.cmds:
		t.Errorf("a second close sent %+v", c)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestTimeouts(t *testing.T) {
	t.Run("device unreachable", func(t *testing.T) {
		t.Parallel()
		fx := newFixture(t, func(c *Config) { c.ConnectTimeout = 100 * time.Millisecond })
		o := fx.open(t, nil)
		if ses := fx.waitClosed(t, o.Session.ID); ses.CloseReason != string(control.CloseDeviceUnreachable) {
			t.Errorf("reason %q; want %s", ses.CloseReason, control.CloseDeviceUnreachable)
		}
	})
	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		fx := newFixture(t, func(c *Config) { c.IdleTimeout = 300 * time.Millisecond })
		o := fx.open(t, nil)
		fx.m.HandleState("acme", "dev1", control.State{Kind: control.StateTunnelUp, Session: o.Session.ID})
		// Activity keeps it open past the idle timeout.
		start := time.Now()
		for time.Since(start) < 600*time.Millisecond {
			fx.m.Activity(o.Session.ID)
			time.Sleep(20 * time.Millisecond)
		}
		if ses, _ := fx.m.Get(t.Context(), o.Session.ID); ses.State != store.SessionActive {
			t.Fatalf("an active engineer's session is %s (%s)", ses.State, ses.CloseReason)
		}
		if ses := fx.waitClosed(t, o.Session.ID); ses.CloseReason != string(control.CloseIdleTimeout) {
			t.Errorf("reason %q; want %s", ses.CloseReason, control.CloseIdleTimeout)
		}
		if since := time.Since(start); since < 800*time.Millisecond {
			t.Errorf("closed for idleness %v after the start, less than the idle timeout after the last activity", since)
		}
	})
	t.Run("max duration", func(t *testing.T) {
		t.Parallel()
		fx := newFixture(t, func(c *Config) { c.MaxDuration = 300 * time.Millisecond })
		o := fx.open(t, nil)
		fx.m.HandleState("acme", "dev1", control.State{Kind: control.StateTunnelUp, Session: o.Session.ID})
		for range 10 {
			fx.m.Activity(o.Session.ID)
			time.Sleep(10 * time.Millisecond)
		}
		ses := fx.waitClosed(t, o.Session.ID)
		if ses.CloseReason != string(control.CloseMaxDuration) {
			t.Errorf("reason %q; want %s", ses.CloseReason, control.CloseMaxDuration)
		}
		fx.cmd(t) // open
		if c := fx.cmd(t); c.Type != control.TypeClose {
			t.Errorf("after the limit the device got %+v; want close", c)
		}
	})
}

// TestRelayLost: a session placed on a relay that is no longer heard from
// is closed as relay_lost, and its device told; one on a relay heard from
// stays open; the open command names the placed relay's addresses.
func TestRelayLost(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	heard := map[string]bool{"rly_a": true, "rly_b": true}
	relays := []*store.Relay{
		{ID: "rly_a", Addr: "a.example.com:443", SSHAddr: "a.example.com:2222"},
		{ID: "rly_b", Addr: "b.example.com:443", SSHAddr: "b.example.com:2222"},
	}
	next := 0
	fx := newFixture(t, func(c *Config) {
		c.Place = func(context.Context, *store.Device) (*store.Relay, error) {
			mu.Lock()
			defer mu.Unlock()
			r := relays[next%2]
			next++
			return r, nil
		}
		c.RelaysHeard = func(context.Context) (map[string]bool, error) {
			mu.Lock()
			defer mu.Unlock()
			return maps.Clone(heard), nil
		}
	})
	onA, onB := fx.open(t, nil), fx.open(t, nil)
	for _, want := range []*store.Relay{relays[0], relays[1]} {
		if c := fx.cmd(t); c.Relay2 != want.Addr || c.Relay != want.SSHAddr {
			t.Errorf("the open command names relay %q (SSH %q); want %q (%q)", c.Relay2, c.Relay, want.Addr, want.SSHAddr)
		}
	}
	for _, o := range []*Opened{onA, onB} {
		fx.m.HandleState("acme", "dev1", control.State{Kind: control.StateTunnelUp, Session: o.Session.ID})
	}
	mu.Lock()
	delete(heard, "rly_a") // relay a died
	mu.Unlock()
	if ses := fx.waitClosed(t, onA.Session.ID); ses.CloseReason != string(control.CloseRelayLost) {
		t.Errorf("the session on the dead relay closed as %q; want %s", ses.CloseReason, control.CloseRelayLost)
	}
	if c := fx.cmd(t); c.Type != control.TypeClose || c.Session != onA.Session.ID {
		t.Errorf("the device got %+v; want the close of the lost session", c)
	}
	time.Sleep(50 * time.Millisecond) // several sweeps
	if ses, _ := fx.m.Get(t.Context(), onB.Session.ID); ses.State != store.SessionActive {
		t.Errorf("the session on the live relay is %s (%s)", ses.State, ses.CloseReason)
	}
}

// TestRelay2LeftOutAtTheDefault: a session placed on the relay the device
// dials anyway goes without relay2 in its command, which agents older
// than the field refuse (they decode commands strictly).
func TestRelay2LeftOutAtTheDefault(t *testing.T) {
	t.Parallel()
	var payloads []string
	var mu sync.Mutex
	fx := newFixture(t, func(c *Config) {
		c.DefaultRelay2 = "porthole.example.com:443"
		c.Place = func(context.Context, *store.Device) (*store.Relay, error) {
			return &store.Relay{ID: "rly_1", Addr: "porthole.example.com:443", SSHAddr: "porthole.example.com:2222"}, nil
		}
		publish := c.Publish
		c.Publish = func(topic string, payload []byte) error {
			mu.Lock()
			payloads = append(payloads, string(payload))
			mu.Unlock()
			return publish(topic, payload)
		}
	})
	fx.open(t, nil)
	if c := fx.cmd(t); c.Relay2 != "" || c.Relay != "porthole.example.com:2222" {
		t.Errorf("command relay %q, relay2 %q; want the SSH relay and no relay2", c.Relay, c.Relay2)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range payloads {
		env, _ := base64.StdEncoding.DecodeString(envelopePayload(t, p))
		if strings.Contains(string(env), "relay2") {
			t.Errorf("the signed command holds relay2: %s", env)
		}
	}
}

// envelopePayload is the base64 payload of a signed envelope.
func envelopePayload(t *testing.T, envelope string) string {
	t.Helper()
	var e struct {
		Payload string `json:"payload"`
	}
	if err := json.Unmarshal([]byte(envelope), &e); err != nil {
		t.Fatal(err)
	}
	return e.Payload
}

func TestControlUnavailable(t *testing.T) {
	fx := newFixture(t, nil)
	fx.failSend = errors.New("broker down")
	_, err := fx.m.Open(t.Context(), Request{Device: fx.dev, User: fx.user, PublicKey: newSigner(t).PublicKey()})
	if !errors.Is(err, ErrControlUnavailable) || !strings.Contains(err.Error(), "asking dev1 to connect") {
		t.Fatalf("Open with the broker down: %v", err)
	}
	ss, _ := fx.st.ListSessions(t.Context(), store.SessionFilter{})
	if len(ss) != 1 || ss[0].State != store.SessionClosed || ss[0].CloseReason != string(control.CloseControlUnavailable) {
		t.Errorf("sessions after a failed open: %+v", ss)
	}
}

func TestWaitEndsWithContext(t *testing.T) {
	fx := newFixture(t, nil)
	o := fx.open(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	ses, err := fx.m.Wait(ctx, o.Session.ID, store.SessionActive)
	if err != nil || ses.State != store.SessionConnecting {
		t.Errorf("Wait = %v, %v; want the connecting session", ses, err)
	}
	if _, err := fx.m.Wait(t.Context(), "ses_missing", store.SessionActive); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Wait on a missing session: %v", err)
	}

	// A context over before Wait starts: the session as it is, closed or
	// not, not the context's error.
	over, cancel := context.WithTimeout(t.Context(), time.Nanosecond)
	defer cancel()
	<-over.Done()
	if ses, err := fx.m.Wait(over, o.Session.ID, store.SessionActive); err != nil || ses.State != store.SessionConnecting {
		t.Errorf("Wait with a context over: %v, %v; want the connecting session", ses, err)
	}
	if _, err := fx.m.CloseSession(t.Context(), o.Session.ID, control.CloseEngineer); err != nil {
		t.Fatal(err)
	}
	if ses, err := fx.m.Wait(over, o.Session.ID, store.SessionActive); err != nil || ses.State != store.SessionClosed {
		t.Errorf("Wait on a closed session with a context over: %v, %v; want the closed session", ses, err)
	}
}

// TestWaitingConsent: a device whose owner must approve reports
// waiting_consent; the session then waits past ConnectTimeout, up to
// ConsentTimeout, and goes active on tunnel_up or closes on the device's
// reason. Another device cannot put it there.
func TestWaitingConsent(t *testing.T) {
	t.Run("approved", func(t *testing.T) {
		t.Parallel()
		fx := newFixture(t, func(c *Config) { c.ConnectTimeout = 100 * time.Millisecond })
		id := fx.open(t, nil).Session.ID
		fx.m.HandleState("acme", "dev2", control.State{Kind: control.StateWaitingConsent, Session: id})
		if ses, _ := fx.m.Get(t.Context(), id); ses.State != store.SessionConnecting {
			t.Fatalf("another device moved the session to %s", ses.State)
		}
		fx.m.HandleState("acme", "dev1", control.State{Kind: control.StateWaitingConsent, Session: id})
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		ses, err := fx.m.Wait(ctx, id, store.SessionWaitingConsent)
		if err != nil || ses.State != store.SessionWaitingConsent {
			t.Fatalf("Wait(waiting_consent) = %+v, %v", ses, err)
		}
		time.Sleep(300 * time.Millisecond) // well past ConnectTimeout, with sweeps every 10 ms
		if ses, _ := fx.m.Get(t.Context(), id); ses.State != store.SessionWaitingConsent {
			t.Fatalf("a session waiting for its owner is %s (%s) after the connect timeout", ses.State, ses.CloseReason)
		}
		fx.m.HandleState("acme", "dev1", control.State{Kind: control.StateTunnelUp, Session: id})
		if ses, _ := fx.m.Get(t.Context(), id); ses.State != store.SessionActive {
			t.Fatalf("approved session is %s; want active", ses.State)
		}
	})
	t.Run("denied", func(t *testing.T) {
		t.Parallel()
		fx := newFixture(t, nil)
		id := fx.open(t, nil).Session.ID
		fx.m.HandleState("acme", "dev1", control.State{Kind: control.StateWaitingConsent, Session: id})
		fx.m.HandleState("acme", "dev1", control.State{Kind: control.StateTunnelDown, Session: id, Reason: "denied"})
		if ses := fx.waitClosed(t, id); ses.CloseReason != "denied" {
			t.Errorf("reason %q; want denied", ses.CloseReason)
		}
	})
	t.Run("the device goes silent", func(t *testing.T) {
		t.Parallel()
		fx := newFixture(t, func(c *Config) { c.ConsentTimeout = 200 * time.Millisecond })
		id := fx.open(t, nil).Session.ID
		fx.m.HandleState("acme", "dev1", control.State{Kind: control.StateWaitingConsent, Session: id})
		if ses := fx.waitClosed(t, id); ses.CloseReason != string(control.CloseConsentTimeout) {
			t.Errorf("reason %q; want %s", ses.CloseReason, control.CloseConsentTimeout)
		}
	})
}

// TestConnectingBeforeTheCommand: when the open command goes out, the
// store already says connecting, so a device quick to act on it finds its
// session open at the relay, however slow the store's writes (issue 11:
// under fifty sessions at once the device registered while the session was
// still requested, and the relay refused it as closed).
func TestConnectingBeforeTheCommand(t *testing.T) {
	var seen []store.SessionState
	var fx *fixture
	fx = newFixture(t, func(cfg *Config) {
		publish := cfg.Publish
		cfg.Publish = func(topic string, payload []byte) error {
			var cmd struct {
				Payload []byte `json:"payload"`
			}
			var open struct {
				Session string `json:"session"`
			}
			if err := json.Unmarshal(payload, &cmd); err != nil || json.Unmarshal(cmd.Payload, &open) != nil {
				t.Errorf("published %q, not a command", payload)
			}
			ses, err := fx.st.GetSession(context.Background(), open.Session)
			if err != nil {
				t.Errorf("reading session %q as its command goes out: %v", open.Session, err)
			} else {
				seen = append(seen, ses.State)
			}
			return publish(topic, payload)
		}
	})
	fx.open(t, nil)
	fx.cmd(t)
	if len(seen) != 1 || seen[0] != store.SessionConnecting {
		t.Errorf("the session was %v as its open command went out; want connecting", seen)
	}
}
