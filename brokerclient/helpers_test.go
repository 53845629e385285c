package brokerclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/porthole/porthole/internal/testmosquitto"
	"github.com/porthole/porthole/internal/testwait"
)

// waitTimeout bounds every wait in these tests; they normally take
// milliseconds.
const waitTimeout = 10 * time.Second

// message is one received MQTT message.
type message struct{ topic, payload string }

func (m message) String() string { return m.topic + " " + m.payload }

// recorder keeps the messages a handler receives.
type recorder struct {
	mu   sync.Mutex
	msgs []message // guarded by mu
}

func (r *recorder) handle(topic string, payload []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, message{topic, string(payload)})
}

func (r *recorder) get() []message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

// has reports whether m has been received.
func (r *recorder) has(m message) bool { return slices.Contains(r.get(), m) }

// waitMessage waits until m has been received.
func (r *recorder) waitMessage(t testing.TB, m message) {
	t.Helper()
	testwait.For(t, waitTimeout, "message "+m.String(), func() bool { return r.has(m) })
}

// only fails the test unless every message received is one of want.
func (r *recorder) only(t testing.TB, who string, want ...message) {
	t.Helper()
	for _, m := range r.get() {
		if !slices.Contains(want, m) {
			t.Errorf("%s received %s; want only %v", who, m, want)
		}
	}
}

// watch subscribes c to filter and records what arrives.
func watch(t testing.TB, c *Client, filter string) *recorder {
	t.Helper()
	r := &recorder{}
	if err := c.Subscribe(filter, r.handle); err != nil {
		t.Fatalf("Subscribe %s: %v", filter, err)
	}
	return r
}

// testLogger logs to the test, dropping lines that come after it ended
// (the MQTT library reports a lost connection on a goroutine of its own).
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

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

// connectOnce runs Connect until its first attempt has failed, for a broker
// that will not be reached however long Connect waits.
func connectOnce(c *Client) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			c.mu.Lock()
			failed := c.lastErr != nil
			c.mu.Unlock()
			if failed {
				cancel()
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return c.Connect(ctx)
}

// newServer makes a Client logged in as portholed on m's server listener,
// retrying fast after a loss, and closes it when the test ends; edit
// adjusts its Config. It is not connected yet.
func newServer(t testing.TB, m *testmosquitto.Broker, edit func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		URL:      m.URL(testmosquitto.ServerListener),
		Username: "portholed",
		Password: password("portholed"),
		Logger:   testLogger(t),
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	c.retry.base, c.retry.max = 10*time.Millisecond, 100*time.Millisecond
	t.Cleanup(func() {
		if err := c.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// connectServer is newServer, connected.
func connectServer(t testing.TB, m *testmosquitto.Broker, edit func(*Config)) *Client {
	t.Helper()
	c := newServer(t, m, edit)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return c
}

// testDevice is a device's MQTT connection, made with plain paho as the
// agent would, recording what it receives.
type testDevice struct {
	recorder
	user string
	tcp  *net.TCPConn
	cli  *paho.Client
}

// dialDevice logs in to addr as user, with user's password and client id
// user and an optional last will, and disconnects when the test ends.
func dialDevice(t testing.TB, addr, user string, will *paho.WillMessage) *testDevice {
	t.Helper()
	d, err := tryDevice(addr, user, password(user), user, will)
	if err != nil {
		t.Fatalf("device %s: %v", user, err)
	}
	t.Cleanup(d.close)
	return d
}

// tryDevice is dialDevice that returns its error.
func tryDevice(addr, user, pass, clientID string, will *paho.WillMessage) (*testDevice, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return loginDevice(conn, user, pass, clientID, will)
}

// loginDevice speaks MQTT 5 over conn, logging in as user with pass (none
// if empty) and clientID; it closes conn if the login fails.
func loginDevice(conn net.Conn, user, pass, clientID string, will *paho.WillMessage) (*testDevice, error) {
	d := &testDevice{user: user}
	d.tcp, _ = conn.(*net.TCPConn)
	d.cli = paho.NewClient(paho.ClientConfig{
		Conn: packets.NewThreadSafeConn(conn),
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			d.handle(pr.Packet.Topic, pr.Packet.Payload)
			return true, nil
		}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ack, err := d.cli.Connect(ctx, &paho.Connect{
		ClientID: clientID, KeepAlive: 30, CleanStart: true,
		Username: user, UsernameFlag: pass != "", Password: []byte(pass), PasswordFlag: pass != "",
		WillMessage: will, WillProperties: willProperties(will),
	})
	if err != nil {
		conn.Close()
		if ack != nil {
			return nil, fmt.Errorf("CONNACK %s: %w", reasonName(ack.ReasonCode), err)
		}
		return nil, err
	}
	return d, nil
}

func willProperties(will *paho.WillMessage) *paho.WillProperties {
	if will == nil {
		return nil
	}
	return &paho.WillProperties{}
}

func (d *testDevice) close() {
	_ = d.cli.Disconnect(&paho.Disconnect{})
}

// subscribe subscribes to each filter in its own SUBSCRIBE and returns the
// broker's reason codes.
func (d *testDevice) subscribe(t testing.TB, filters ...string) []byte {
	t.Helper()
	var codes []byte
	for _, f := range filters {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		ack, err := d.cli.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: f, QoS: 1}}})
		cancel()
		if ack == nil {
			t.Fatalf("%s subscribing to %s: %v", d.user, f, err)
		}
		codes = append(codes, ack.Reasons...)
	}
	return codes
}

// publish sends at QoS 1 and returns the broker's PUBACK reason code.
func (d *testDevice) publish(t testing.TB, topic, payload string, retain bool) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	resp, err := d.cli.Publish(ctx, &paho.Publish{Topic: topic, Payload: []byte(payload), QoS: 1, Retain: retain})
	if resp == nil {
		t.Fatalf("%s publishing to %s: %v", d.user, topic, err)
	}
	return resp.ReasonCode
}

// drain makes sure every message the broker sent the device so far has
// been recorded, for a device that may legitimately receive nothing to use
// as a barrier: the broker answers a SUBSCRIBE after every packet it queued
// for the device before, and Disconnect returns once the messages read
// before that answer have been handled.
func (d *testDevice) drain(t testing.TB) {
	t.Helper()
	d.subscribe(t, "porthole/v1/drain")
	d.close()
}

// send publishes at QoS 1 and fails the test if the broker refuses.
func (d *testDevice) send(t testing.TB, topic, payload string, retain bool) {
	t.Helper()
	if code := d.publish(t, topic, payload, retain); code >= 0x80 {
		t.Fatalf("%s publishing to %s: %s", d.user, topic, reasonName(code))
	}
}

// sendUntilSeen publishes payload on topic until r has received it, for a
// subscription that a (re)connection renews in the background.
func (d *testDevice) sendUntilSeen(t testing.TB, r *recorder, topic, payload string) {
	t.Helper()
	testwait.For(t, waitTimeout, topic+" "+payload+" to arrive", func() bool {
		d.send(t, topic, payload, false)
		return r.has(message{topic, payload})
	})
}

// vanish half-closes the device's TCP connection without a DISCONNECT, as a
// device that loses power does, and waits until the broker has hung up too:
// by then the broker has handled the loss, including the last will.
func (d *testDevice) vanish(t testing.TB) {
	t.Helper()
	if err := d.tcp.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.cli.Done():
	case <-time.After(waitTimeout):
		t.Fatalf("the broker did not hang up on %s", d.user)
	}
}

// topics of the test fleets, which the tests build with control's helpers
// to check that the ACL matches them.
func mustTopic(t testing.TB, f func(fleet, device string) (string, error), fleet, device string) string {
	t.Helper()
	topic, err := f(fleet, device)
	if err != nil {
		t.Fatal(err)
	}
	return topic
}
