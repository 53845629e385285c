package broker

import (
	"errors"
	"net"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/porthole/porthole/internal/testwait"
)

// TestClose is not parallel: it counts the process's goroutines.
func TestClose(t *testing.T) {
	before := runtime.NumGoroutine()

	tb := startBroker(t, nil)
	d := tb.enroll(t, "acme", "dev-1")
	c := tb.connectDevice(t, d)
	tb.presence.waitEvents(t, "+acme/dev-1")
	// A connection still in its handshake must not hold Close up for the
	// connect timeout.
	handshaking, err := net.Dial("tcp", tb.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer handshaking.Close()
	tb.waitConns(t, 2)

	start := time.Now()
	if err := tb.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %v", took)
	}
	// Close waited for the presence calls.
	if ev := tb.presence.get(); !slices.Equal(ev, []string{"+acme/dev-1", "-acme/dev-1"}) {
		t.Errorf("presence after Close = %v; want the device connected then disconnected", ev)
	}
	if n := tb.connCount(); n != 0 {
		t.Errorf("%d connections left after Close", n)
	}
	if err := tb.serveResult(t); !errors.Is(err, ErrClosed) {
		t.Errorf("Serve = %v; want ErrClosed", err)
	}
	c.waitGone(t, "the device is still connected after Close")
	waitClosed(t, handshaking)

	// Everything after Close refuses, and Close stays idempotent.
	if err := tb.Close(); !errors.Is(err, ErrClosed) || !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close = %v; want ErrClosed (net.ErrClosed)", err)
	}
	if err := tb.Publish(d.cmdTopic(), []byte("x"), false, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close = %v; want ErrClosed", err)
	}
	if err := tb.Subscribe("#", func(string, []byte) {}); !errors.Is(err, ErrClosed) {
		t.Errorf("Subscribe after Close = %v; want ErrClosed", err)
	}
	if tb.Disconnect("acme", "dev-1") {
		t.Error("Disconnect after Close = true")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.Serve(ln); !errors.Is(err, ErrClosed) {
		t.Errorf("Serve after Close = %v; want ErrClosed", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("Serve after Close left its listener open")
	}

	// No goroutine outlives the broker (and the client it disconnected).
	testwait.GoroutinesAtMost(t, before, waitTimeout)
}

// TestCloseBeforeServe: a broker that never served closes cleanly.
func TestCloseBeforeServe(t *testing.T) {
	t.Parallel()
	b, err := New(Config{DeviceKey: (&registry{}).DeviceKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := b.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v; want ErrClosed", err)
	}
}
