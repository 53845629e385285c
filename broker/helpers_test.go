package broker

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/internal/testwait"
)

// waitTimeout bounds every poll in these tests; they normally finish in
// milliseconds.
const waitTimeout = 5 * time.Second

// registry is a fake device store: enrolled keys by "<fleet>/<device>".
type registry struct {
	mu   sync.Mutex
	keys map[string]ed25519.PublicKey // guarded by mu
	err  error                        // guarded by mu; returned by every lookup when set
}

func (r *registry) DeviceKey(ctx context.Context, fleet, device string) (ed25519.PublicKey, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return nil, r.err
	}
	key, ok := r.keys[fleet+"/"+device]
	if !ok {
		return nil, ErrUnknownDevice
	}
	return key, nil
}

func (r *registry) remove(fleet, device string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.keys, fleet+"/"+device)
}

func (r *registry) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
}

// presenceLog records presence calls as "+fleet/device" and "-fleet/device".
type presenceLog struct {
	mu     sync.Mutex
	events []string // guarded by mu
}

func (p *presenceLog) DeviceConnected(fleet, device string, _ time.Time) {
	p.add("+" + fleet + "/" + device)
}

func (p *presenceLog) DeviceDisconnected(fleet, device string, _ time.Time) {
	p.add("-" + fleet + "/" + device)
}

func (p *presenceLog) add(e string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, e)
}

func (p *presenceLog) get() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events)
}

// waitEvents waits until exactly want has been recorded.
func (p *presenceLog) waitEvents(t testing.TB, want ...string) {
	t.Helper()
	testwait.For(t, waitTimeout, "presence events "+strings.Join(want, " "), func() bool { return slices.Equal(p.get(), want) })
}

// testBroker is a Broker serving on 127.0.0.1 with a fake registry.
type testBroker struct {
	*Broker
	addr     string
	reg      *registry
	presence *presenceLog
	served   chan struct{} // closed when Serve has returned
	serveErr error         // what Serve returned, once served is closed
}

// startBroker runs a broker on a fresh loopback port; edit adjusts its
// Config. It is closed when the test ends.
func startBroker(t testing.TB, edit func(*Config)) *testBroker {
	t.Helper()
	tb := &testBroker{
		reg:      &registry{keys: map[string]ed25519.PublicKey{}},
		presence: &presenceLog{},
		served:   make(chan struct{}),
	}
	w := &testWriter{t: t}
	t.Cleanup(w.stop) // runs after the broker's Close below
	cfg := Config{
		Logger:    slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})),
		DeviceKey: tb.reg.DeviceKey,
		Presence:  tb.presence,
	}
	if edit != nil {
		edit(&cfg)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	tb.Broker = b
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tb.addr = ln.Addr().String()
	go func() {
		tb.serveErr = b.Serve(ln)
		close(tb.served)
	}()
	t.Cleanup(func() {
		if err := b.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Close: %v", err)
		}
		if err := tb.serveResult(t); !errors.Is(err, ErrClosed) {
			t.Errorf("Serve = %v; want ErrClosed", err)
		}
	})
	return tb
}

// serveResult waits for Serve to return and returns its error.
func (tb *testBroker) serveResult(t testing.TB) error {
	t.Helper()
	select {
	case <-tb.served:
		return tb.serveErr
	case <-time.After(waitTimeout):
		t.Fatal("Serve did not return")
		return nil
	}
}

// testWriter sends log lines to the test log, so they show only on failure
// (or with -v), and drops those that come after the test (mochi's
// housekeeping goroutine says goodbye after Close returns).
type testWriter struct {
	t       testing.TB
	mu      sync.Mutex
	stopped bool // guarded by mu
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
}

// device is an enrolled device with its private key.
type device struct {
	fleet, name string
	priv        ed25519.PrivateKey
}

func (d device) username() string { return d.fleet + "/" + d.name }

func (d device) password() string { return control.DevicePassword(d.priv, d.fleet, d.name, time.Now()) }

func (d device) cmdTopic() string { return control.TopicPrefix + d.fleet + "/" + d.name + "/cmd" }

func (d device) stateTopic() string { return control.TopicPrefix + d.fleet + "/" + d.name + "/state" }

// enroll makes a device key and registers it.
func (tb *testBroker) enroll(t testing.TB, fleet, name string) device {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tb.reg.mu.Lock()
	defer tb.reg.mu.Unlock()
	tb.reg.keys[fleet+"/"+name] = pub
	return device{fleet: fleet, name: name, priv: priv}
}

// client is a paho MQTT 5 client with the messages it received.
type client struct {
	*paho.Client
	conn     net.Conn
	received chan *paho.Publish
}

// connect logs in over TCP with cp; see connectOver.
func (tb *testBroker) connect(t testing.TB, cp *paho.Connect) (*client, *paho.Connack, error) {
	t.Helper()
	conn, err := net.Dial("tcp", tb.addr)
	if err != nil {
		t.Fatal(err)
	}
	return connectOver(t, conn, cp, nil)
}

// connectOver logs in on conn with cp (as a clean session, sending a
// password only if cp.Password is not nil) and returns the client, or the
// CONNACK and error of a refusal. With a gate, the client takes each
// message (and so acknowledges it) only once it gets a token from gate.
func connectOver(t testing.TB, conn net.Conn, cp *paho.Connect, gate <-chan struct{}) (*client, *paho.Connack, error) {
	t.Helper()
	c := &client{conn: conn, received: make(chan *paho.Publish, 64)}
	c.Client = paho.NewClient(paho.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			if gate != nil {
				<-gate
			}
			c.received <- pr.Packet
			return true, nil
		}},
	})
	cp.UsernameFlag, cp.PasswordFlag = cp.Username != "", cp.Password != nil
	cp.CleanStart = true
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ca, err := c.Connect(ctx, cp)
	if err != nil {
		return nil, ca, err
	}
	t.Cleanup(func() {
		_ = c.Disconnect(&paho.Disconnect{})
		<-c.Done()
	})
	return c, ca, nil
}

// login is the CONNECT of a well-behaved device: its username as client id
// and a fresh password.
func (d device) login() *paho.Connect {
	return &paho.Connect{ClientID: d.username(), Username: d.username(), Password: []byte(d.password())}
}

// connectDevice logs d in and fails the test if it is refused.
func (tb *testBroker) connectDevice(t testing.TB, d device) *client {
	t.Helper()
	c, _, err := tb.connect(t, d.login())
	if err != nil {
		t.Fatalf("device %s: Connect: %v", d.username(), err)
	}
	return c
}

// connCount is the number of connections the broker still tracks; a
// connection leaves only after its presence call has returned.
func (tb *testBroker) connCount() int {
	tb.mu.Lock()
	ls := tb.listeners
	tb.mu.Unlock()
	n := 0
	for _, l := range ls {
		l.mu.Lock()
		n += len(l.conns)
		l.mu.Unlock()
	}
	return n
}

func (tb *testBroker) waitConns(t testing.TB, n int) {
	t.Helper()
	testwait.For(t, waitTimeout, "broker connections to settle", func() bool { return tb.connCount() == n })
}

func (c *client) subscribe(t testing.TB, filter string) (reason byte, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	sa, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}})
	if sa == nil {
		if err == nil {
			err = errors.New("no SUBACK")
		}
		t.Fatalf("Subscribe(%q): %v", filter, err)
	}
	return sa.Reasons[0], err
}

func (c *client) publish(t testing.TB, topic string, payload string, qos byte) (*paho.PublishResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	return c.Publish(ctx, &paho.Publish{Topic: topic, Payload: []byte(payload), QoS: qos, Retain: true})
}

// waitGone waits until the broker has dropped the client's connection;
// stillUp is the failure message.
func (c *client) waitGone(t testing.TB, stillUp string) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(waitTimeout):
		t.Fatal(stillUp)
	}
}

// expectMessage waits for the next message the client receives.
func (c *client) expectMessage(t testing.TB) *paho.Publish {
	t.Helper()
	select {
	case p := <-c.received:
		return p
	case <-time.After(waitTimeout):
		t.Fatal("timed out waiting for a message")
		return nil
	}
}

// rawConnectV311 encodes an MQTT 3.1.1 CONNECT (clean session), which paho
// cannot send.
func rawConnectV311(clientID, username, password string, keepAlive uint16) []byte {
	var body bytes.Buffer
	str := func(s string) {
		body.WriteByte(byte(len(s) >> 8))
		body.WriteByte(byte(len(s)))
		body.WriteString(s)
	}
	str("MQTT")
	body.WriteByte(4)                  // protocol level 3.1.1
	body.WriteByte(0x80 | 0x40 | 0x02) // username, password, clean session
	body.WriteByte(byte(keepAlive >> 8))
	body.WriteByte(byte(keepAlive))
	str(clientID)
	str(username)
	str(password)

	pkt := []byte{0x10}
	for n := body.Len(); ; {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		pkt = append(pkt, b)
		if n == 0 {
			break
		}
	}
	return append(pkt, body.Bytes()...)
}

// dialV311 connects over MQTT 3.1.1 and returns the connection and the
// CONNACK return code.
func (tb *testBroker) dialV311(t testing.TB, clientID, username, password string, keepAlive uint16) (net.Conn, byte) {
	t.Helper()
	conn, err := net.Dial("tcp", tb.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Write(rawConnectV311(clientID, username, password, keepAlive)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(waitTimeout))
	ack := make([]byte, 4)
	if _, err := io.ReadFull(conn, ack); err != nil {
		t.Fatalf("reading CONNACK: %v", err)
	}
	if ack[0] != 0x20 || ack[1] != 2 {
		t.Fatalf("CONNACK = % x; want 20 02 ..", ack)
	}
	_ = conn.SetReadDeadline(time.Time{})
	return conn, ack[3]
}

// waitClosed waits until the peer closes conn.
func waitClosed(t testing.TB, conn net.Conn) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := io.Copy(io.Discard, conn); err != nil {
		t.Fatalf("waiting for the broker to close the connection: %v", err)
	}
}
