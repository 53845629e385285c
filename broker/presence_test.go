package broker

import (
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// TestPresence: every way a connection can end reports the device offline.
func TestPresence(t *testing.T) {
	t.Parallel()
	tb := startBroker(t, func(c *Config) { c.MinKeepAlive = time.Second })
	d := tb.enroll(t, "acme", "dev-1")

	t.Run("clean disconnect", func(t *testing.T) {
		c := tb.connectDevice(t, d)
		tb.presence.waitEvents(t, "+acme/dev-1")
		if err := c.Disconnect(&paho.Disconnect{}); err != nil {
			t.Fatal(err)
		}
		tb.presence.waitEvents(t, "+acme/dev-1", "-acme/dev-1")
	})

	t.Run("connection closed", func(t *testing.T) {
		c := tb.connectDevice(t, d)
		tb.presence.waitEvents(t, "+acme/dev-1", "-acme/dev-1", "+acme/dev-1")
		c.conn.Close() // no DISCONNECT: the TCP connection just ends
		tb.presence.waitEvents(t, "+acme/dev-1", "-acme/dev-1", "+acme/dev-1", "-acme/dev-1")
	})

	t.Run("keep-alive timeout", func(t *testing.T) {
		// A device that goes silent without closing anything, as when its
		// network vanishes: after 1.5 keep-alives it is offline.
		conn, code := tb.dialV311(t, d.username(), d.username(), d.password(), 1)
		if code != 0 {
			t.Fatalf("CONNECT return code %d; want 0", code)
		}
		start := time.Now()
		waitClosed(t, conn)
		if waited := time.Since(start); waited < 900*time.Millisecond {
			t.Errorf("the broker dropped a silent device after %v; want about 1 s", waited)
		}
		tb.presence.waitEvents(t, "+acme/dev-1", "-acme/dev-1", "+acme/dev-1", "-acme/dev-1", "+acme/dev-1", "-acme/dev-1")
	})
}

// TestKeepAliveClamped: the broker tells an MQTT 5 device which keep-alive
// it gets when the asked one is out of range.
func TestKeepAliveClamped(t *testing.T) {
	t.Parallel()
	tb := startBroker(t, nil)
	d := tb.enroll(t, "acme", "dev-1")
	for _, tt := range []struct{ ask, want uint16 }{
		{0, 300}, // none asked: the maximum
		{1, 30},
		{3600, 300},
	} {
		cp := d.login()
		cp.KeepAlive = tt.ask
		_, ca, err := tb.connect(t, cp)
		if err != nil {
			t.Fatalf("Connect: %v", err)
		}
		if ca.Properties == nil || ca.Properties.ServerKeepAlive == nil || *ca.Properties.ServerKeepAlive != tt.want {
			t.Errorf("keep-alive %d: CONNACK properties %+v; want server keep-alive %d", tt.ask, ca.Properties, tt.want)
		}
	}
	// In range: the device keeps its own and is not told otherwise.
	cp := d.login()
	cp.KeepAlive = 60
	_, ca, err := tb.connect(t, cp)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if ca.Properties != nil && ca.Properties.ServerKeepAlive != nil {
		t.Errorf("keep-alive 60: server keep-alive %d; want none", *ca.Properties.ServerKeepAlive)
	}
}

// TestDisconnectDevice: the server can cut a (deleted) device's connection.
func TestDisconnectDevice(t *testing.T) {
	t.Parallel()
	tb := startBroker(t, nil)
	d := tb.enroll(t, "acme", "dev-1")
	c := tb.connectDevice(t, d)
	tb.presence.waitEvents(t, "+acme/dev-1")

	tb.reg.remove("acme", "dev-1")
	if !tb.Disconnect("acme", "dev-1") {
		t.Fatal("Disconnect(connected device) = false; want true")
	}
	c.waitGone(t, "the device is still connected")
	tb.presence.waitEvents(t, "+acme/dev-1", "-acme/dev-1")
	if _, _, err := tb.connect(t, d.login()); err == nil {
		t.Error("the deleted device logged in again")
	}
	for _, name := range []string{"dev-1", "nobody", "a/b"} {
		if tb.Disconnect("acme", name) {
			t.Errorf("Disconnect(%q) = true for a device that is not connected", name)
		}
	}
}
