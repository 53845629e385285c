package brokerclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/internal/testmosquitto"
	"github.com/porthole/porthole/internal/testwait"
)

func TestCommandReachesDevice(t *testing.T) {
	t.Parallel()
	m := startMosquitto(t, "")
	server := connectServer(t, m, nil)
	dev := dialDevice(t, m.Addr(testmosquitto.DeviceListener), "acme/dev1", nil)
	cmd := mustTopic(t, control.CmdTopic, "acme", "dev1")
	dev.subscribe(t, cmd)

	if err := server.Publish(cmd, []byte("open"), false, 1); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	dev.waitMessage(t, message{cmd, "open"})
}

func TestStateReachesHandlerWithRealTopic(t *testing.T) {
	t.Parallel()
	m := startMosquitto(t, "")
	server := newServer(t, m, nil)
	got := watch(t, server, control.StateFilter) // before Connect: made when the connection comes up
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := server.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	dev := dialDevice(t, m.Addr(testmosquitto.DeviceListener), "acme/dev1", nil)
	state := mustTopic(t, control.StateTopic, "acme", "dev1")

	// The subscription is made in the background after Connect.
	dev.sendUntilSeen(t, got, state, "online")
	got.only(t, "the server", message{state, "online"})
}

func TestSubscribeWhileConnected(t *testing.T) {
	t.Parallel()
	m := startMosquitto(t, "")
	server := connectServer(t, m, nil)
	// Subscribe returns once the broker has granted the subscription, so a
	// state published afterwards arrives.
	got := watch(t, server, "porthole/v1/acme/+/state")
	dev := dialDevice(t, m.Addr(testmosquitto.DeviceListener), "acme/dev2", nil)
	state := mustTopic(t, control.StateTopic, "acme", "dev2")
	dev.send(t, state, "online", false)
	got.waitMessage(t, message{state, "online"})
}

// TestSharedSubscription: two server nodes in one share group; each state
// message is handled by exactly one of them.
func TestSharedSubscription(t *testing.T) {
	t.Parallel()
	m := startMosquitto(t, "")
	node := func() *recorder {
		return watch(t, connectServer(t, m, func(c *Config) { c.ShareGroup = "nodes" }), control.StateFilter)
	}
	a, b := node(), node()
	dev := dialDevice(t, m.Addr(testmosquitto.DeviceListener), "acme/dev1", nil)
	state := mustTopic(t, control.StateTopic, "acme", "dev1")
	const n = 6
	for i := range n {
		dev.send(t, state, fmt.Sprint("tunnel_up s", i), false)
	}
	// Each node receives its messages in order, so once both have seen a
	// later "barrier" message, no copy of the first n is still on its way.
	seenBarrier := func(r *recorder) bool {
		for _, m := range r.get() {
			if strings.HasPrefix(m.payload, "barrier") {
				return true
			}
		}
		return false
	}
	i := 0
	testwait.For(t, waitTimeout, "both nodes to receive a barrier", func() bool {
		i++
		dev.send(t, state, fmt.Sprint("barrier ", i), false)
		return seenBarrier(a) && seenBarrier(b)
	})
	count := map[string]int{}
	for _, m := range append(a.get(), b.get()...) {
		count[m.payload]++
	}
	for i := range n {
		if c := count[fmt.Sprint("tunnel_up s", i)]; c != 1 {
			t.Errorf("state %d was handled %d times; want once (node a: %v, node b: %v)", i, c, a.get(), b.get())
		}
	}
}

// TestReconnectAfterBrokerRestart: while the broker is down Publish fails at
// once saying so; after it is back the client reconnects by itself and its
// subscription works again.
func TestReconnectAfterBrokerRestart(t *testing.T) {
	t.Parallel()
	m := startMosquitto(t, "")
	server := connectServer(t, m, nil)
	got := watch(t, server, control.StateFilter)
	cmd := mustTopic(t, control.CmdTopic, "acme", "dev1")
	state := mustTopic(t, control.StateTopic, "acme", "dev1")

	m.Stop()
	testwait.For(t, waitTimeout, "the client to notice the broker is gone", func() bool { return !server.Connected() })
	start := time.Now()
	err := server.Publish(cmd, []byte("open"), false, 1)
	want := "brokerclient: cannot publish to " + cmd + ": not connected to the MQTT broker at " + m.URL(testmosquitto.ServerListener)
	if !errors.Is(err, ErrNotConnected) || err.Error() != want {
		t.Fatalf("Publish while the broker is down = %v; want ErrNotConnected saying %q", err, want)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Publish while the broker is down took %s; want it to fail at once", d)
	}

	// A subscription made while the broker is down takes effect on
	// reconnection.
	late := watch(t, server, "porthole/v1/acme/+/state")

	m.Restart(t)
	testwait.For(t, waitTimeout, "the client to reconnect", server.Connected)
	dev := dialDevice(t, m.Addr(testmosquitto.DeviceListener), "acme/dev1", nil)
	dev.subscribe(t, cmd)
	if err := server.Publish(cmd, []byte("open"), false, 1); err != nil {
		t.Fatalf("Publish after the restart: %v", err)
	}
	dev.waitMessage(t, message{cmd, "open"})
	dev.sendUntilSeen(t, got, state, "online") // the renewed subscription
	dev.sendUntilSeen(t, late, state, "online")
}

func TestWrongPasswordSaysLoginRefused(t *testing.T) {
	t.Parallel()
	m := startMosquitto(t, "")
	server := newServer(t, m, func(c *Config) { c.Password = "wrong" })
	start := time.Now()
	err := server.Connect(context.Background())
	if !errors.Is(err, ErrLoginRefused) {
		t.Fatalf("Connect = %v; want ErrLoginRefused", err)
	}
	want := fmt.Sprintf(`the MQTT broker at mqtt://%s refused portholed's login as "portholed": not authorized`, m.Addr(testmosquitto.ServerListener))
	if !strings.Contains(err.Error(), want) {
		t.Errorf("Connect = %q; want it to say %q", err, want)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Connect took %s to give up on a refused login; want it at once", d)
	}
	if err := server.Publish("porthole/v1/acme/dev1/cmd", nil, false, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after a failed Connect = %v; want ErrClosed", err)
	}
}

func TestUnreachableBrokerSaysWhy(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c, err := New(Config{URL: "mqtt://" + addr, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	err = connectOnce(c)
	want := "brokerclient: cannot reach the MQTT broker at mqtt://" + addr + ": connection refused"
	if err == nil || err.Error() != want {
		t.Errorf("Connect = %v; want %q", err, want)
	}
	if err := c.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("Close after a failed Connect = %v; want ErrClosed (Connect closes)", err)
	}
}

func TestServerCannotWriteStates(t *testing.T) {
	t.Parallel()
	m := startMosquitto(t, "")
	server := connectServer(t, m, nil)
	err := server.Publish(mustTopic(t, control.StateTopic, "acme", "dev1"), []byte("online"), true, 1)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "not authorized") {
		t.Errorf("Publish to a state topic = %v; want ErrRefused, not authorized", err)
	}
}

func TestCloseIsIdempotentAndEndsUse(t *testing.T) {
	t.Parallel()
	m := startMosquitto(t, "")
	server := connectServer(t, m, nil)
	if err := server.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := server.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v; want ErrClosed", err)
	}
	if server.Connected() {
		t.Error("Connected after Close")
	}
	if err := server.Publish("porthole/v1/acme/dev1/cmd", nil, false, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close = %v; want ErrClosed", err)
	}
	if err := server.Subscribe(control.StateFilter, func(string, []byte) {}); !errors.Is(err, ErrClosed) {
		t.Errorf("Subscribe after Close = %v; want ErrClosed", err)
	}
	if err := server.Connect(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Connect after Close = %v; want ErrClosed", err)
	}
}

func TestPublishBeforeConnect(t *testing.T) {
	t.Parallel()
	c, err := New(Config{URL: "mqtt://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Publish("porthole/v1/acme/dev1/cmd", nil, false, 1); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Publish before Connect = %v; want ErrNotConnected", err)
	}
}
