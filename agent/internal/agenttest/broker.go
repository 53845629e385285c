package agenttest

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole/broker"
	"github.com/porthole/porthole/ca"
	"github.com/porthole/porthole/control"
)

// Broker is the server's real embedded MQTT broker serving TLS on
// 127.0.0.1 with the server's certificate, and recording every state
// message devices publish. It can be stopped and started again on the same
// port. It is closed when the test ends.
type Broker struct {
	Addr string // 127.0.0.1:port, the same across restarts
	keys *ca.Keys
	now  func() time.Time

	mu      sync.Mutex
	devices map[string]ed25519.PublicKey // guarded by mu; "<fleet>/<device>" -> key
	b       *broker.Broker               // guarded by mu; nil while stopped
	served  chan struct{}                // guarded by mu; closed when Serve returns
	states  map[string][]string          // guarded by mu; topic -> messages
}

// NewBroker starts a broker with the server keys' TLS certificate. now is
// its clock for device passwords (nil: time.Now).
func NewBroker(t testing.TB, keys *ca.Keys, now func() time.Time) *Broker {
	t.Helper()
	b := &Broker{keys: keys, now: now, devices: map[string]ed25519.PublicKey{}, states: map[string][]string{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.Addr = ln.Addr().String()
	b.serve(t, ln)
	t.Cleanup(func() { b.Stop(t) })
	return b
}

// URL is the broker's mqtts:// URL.
func (b *Broker) URL() string { return "mqtts://" + b.Addr }

// AddDevice lets a device with key pub log in.
func (b *Broker) AddDevice(fleet, device string, pub ed25519.PublicKey) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.devices[fleet+"/"+device] = pub
}

func (b *Broker) deviceKey(_ context.Context, fleet, device string) (ed25519.PublicKey, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if key, ok := b.devices[fleet+"/"+device]; ok {
		return key, nil
	}
	return nil, broker.ErrUnknownDevice
}

// serve starts a new broker on ln and records the state topics.
func (b *Broker) serve(t testing.TB, ln net.Listener) {
	t.Helper()
	mb, err := broker.New(broker.Config{DeviceKey: b.deviceKey, Now: b.now})
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	if err := mb.Subscribe(control.StateFilter, b.recordState); err != nil {
		t.Fatalf("subscribing to the state topics: %v", err)
	}
	served := make(chan struct{})
	tlsLn := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{b.keys.TLS}})
	go func() {
		defer close(served)
		_ = mb.Serve(tlsLn)
	}()
	b.mu.Lock()
	b.b, b.served = mb, served
	b.mu.Unlock()
}

func (b *Broker) recordState(topic string, payload []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.states[topic] = append(b.states[topic], string(payload))
}

// Stop closes the broker, disconnecting every device.
func (b *Broker) Stop(t testing.TB) {
	t.Helper()
	b.mu.Lock()
	mb, served := b.b, b.served
	b.b = nil
	b.mu.Unlock()
	if mb == nil {
		return
	}
	if err := mb.Close(); err != nil && !errors.Is(err, broker.ErrClosed) {
		t.Errorf("closing the broker: %v", err)
	}
	<-served
}

// Start serves a new broker (with no retained messages) on the same port.
func (b *Broker) Start(t testing.TB) {
	t.Helper()
	var ln net.Listener
	WaitUntil(t, "the broker's port to be free again", func() bool {
		var err error
		ln, err = net.Listen("tcp", b.Addr)
		return err == nil
	})
	b.serve(t, ln)
}

// Publish sends payload on topic at QoS 1 through the in-process client,
// as the server does.
func (b *Broker) Publish(t testing.TB, topic string, payload []byte) {
	t.Helper()
	b.mu.Lock()
	mb := b.b
	b.mu.Unlock()
	if mb == nil {
		t.Fatal("Publish on a stopped broker")
	}
	if err := mb.Publish(topic, payload, false, 1); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

// Disconnect cuts a device's connection as the server does when it deletes
// the device.
func (b *Broker) Disconnect(t testing.TB, fleet, device string) {
	t.Helper()
	b.mu.Lock()
	mb := b.b
	b.mu.Unlock()
	if mb == nil || !mb.Disconnect(fleet, device) {
		t.Fatalf("%s/%s is not connected", fleet, device)
	}
}

// States returns the messages published on a state topic so far, across
// restarts.
func (b *Broker) States(topic string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.states[topic])
}

// StateLog reads the messages of one state topic in order.
type StateLog struct {
	Topic  string
	source func(topic string) []string
	next   int // index of the first message not yet read
}

// StateLog reads topic's messages from the first one.
func (b *Broker) StateLog(topic string) *StateLog {
	return &StateLog{Topic: topic, source: b.States}
}

// NewStateLog reads topic's messages from source, which returns all of them
// so far, in order.
func NewStateLog(topic string, source func(topic string) []string) *StateLog {
	return &StateLog{Topic: topic, source: source}
}

// Expect waits for the next message and fails unless it is want.
func (l *StateLog) Expect(t testing.TB, want string) {
	t.Helper()
	var msgs []string
	WaitUntil(t, fmt.Sprintf("%q on %s", want, l.Topic), func() bool {
		msgs = l.source(l.Topic)
		return len(msgs) > l.next
	})
	if got := msgs[l.next]; got != want {
		t.Fatalf("state message %d on %s = %q; want %q (all: %q)", l.next+1, l.Topic, got, want, msgs)
	}
	l.next++
}

// ExpectEventually skips messages until one is want.
func (l *StateLog) ExpectEventually(t testing.TB, want string) {
	t.Helper()
	WaitUntil(t, fmt.Sprintf("%q on %s", want, l.Topic), func() bool {
		msgs := l.source(l.Topic)
		for ; l.next < len(msgs); l.next++ {
			if msgs[l.next] == want {
				l.next++
				return true
			}
		}
		return false
	})
}
