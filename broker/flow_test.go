package broker

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// TestCommandBurst: a burst of commands well past the device's Receive
// Maximum all arrive, and so does one sent after it. mochi holds back what
// exceeds the client's quota and sends it as acknowledgements come back,
// but forgets each held-back message once sent, so its PUBACK gave no
// quota back: after Receive Maximum held-back messages the device got
// nothing more until it reconnected (issue 11: sessions on a device whose
// commands no longer arrived "did not answer within 33 s").
//
// The device acknowledges a round only once it has all been published, so
// that each round's held-back messages are released by its own
// acknowledgements.
func TestCommandBurst(t *testing.T) {
	t.Parallel()
	tb := startBroker(t, nil)
	d := tb.enroll(t, "acme", "dev-1")
	const receiveMax, burst = 4, 50
	login := d.login()
	rm := uint16(receiveMax)
	login.Properties = &paho.ConnectProperties{ReceiveMaximum: &rm}
	gate := make(chan struct{}, 2*burst+1) // a token per message the device may take
	c, _, err := tb.connectGated(t, login, gate)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if reason, err := c.subscribe(t, d.cmdTopic()); err != nil || reason != 1 {
		t.Fatalf("Subscribe(own cmd) = %#x, %v; want QoS 1", reason, err)
	}
	got := map[string]bool{}
	receive := func(n int) {
		t.Helper()
		for len(got) < n {
			m := c.expectMessage(t)
			got[string(m.Payload)] = true
		}
	}
	for round, n := range []int{burst, 1, burst} {
		start := len(got)
		for i := range n {
			if err := tb.Publish(d.cmdTopic(), fmt.Appendf(nil, "cmd-%d-%d", round, i), false, 1); err != nil {
				t.Fatalf("Publish: %v", err)
			}
		}
		for range n {
			gate <- struct{}{}
		}
		receive(start + n)
		tb.waitAcknowledged(t, d.username())
	}
}

// waitAcknowledged waits until the broker awaits no acknowledgement from
// the client id.
func (tb *testBroker) waitAcknowledged(t testing.TB, id string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		cl, ok := tb.server.Clients.Get(id)
		if !ok || cl.State.Inflight.Len() == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still has %d messages in flight", id, cl.State.Inflight.Len())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCommandBurstWhileDevicePublishes: commands held back for a device
// that is slow to acknowledge them survive the states it publishes
// meanwhile, whose packet ids (the device's own numbering) are those of
// held-back commands (mochi kept both in one map and erased the command).
func TestCommandBurstWhileDevicePublishes(t *testing.T) {
	t.Parallel()
	tb := startBroker(t, nil)
	d := tb.enroll(t, "acme", "dev-1")
	const receiveMax, burst = 4, 50
	login := d.login()
	rm := uint16(receiveMax)
	login.Properties = &paho.ConnectProperties{ReceiveMaximum: &rm}
	gate := make(chan struct{})
	c, _, err := tb.connectGated(t, login, gate)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if reason, err := c.subscribe(t, d.cmdTopic()); err != nil || reason != 1 {
		t.Fatalf("Subscribe(own cmd) = %#x, %v; want QoS 1", reason, err)
	}
	for i := range burst {
		if err := tb.Publish(d.cmdTopic(), fmt.Appendf(nil, "cmd-%d", i), false, 1); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	// The device, still busy with the first command, says things: packet
	// ids 1, 2, ... of its own, the ids of the commands held back for it.
	for i := range 2 * receiveMax {
		if _, err := c.publish(t, d.stateTopic(), fmt.Sprintf("tunnel_up s%d", i), 1); err != nil {
			t.Fatalf("the device's state %d: %v", i, err)
		}
	}
	close(gate)
	got := map[string]bool{}
	for len(got) < burst {
		got[string(c.expectMessage(t).Payload)] = true
	}
}

// connectGated is connect with a gate (see connectOver).
func (tb *testBroker) connectGated(t testing.TB, cp *paho.Connect, gate <-chan struct{}) (*client, *paho.Connack, error) {
	t.Helper()
	conn, err := net.Dial("tcp", tb.addr)
	if err != nil {
		t.Fatal(err)
	}
	return connectOver(t, conn, cp, gate)
}

// TestCommandBurstToAgent: the agent asks for a Receive Maximum of 256, so
// a burst that large is sent at once: the device's queue of outgoing
// packets takes it whole (past WritesPending, mochi drops a message).
func TestCommandBurstToAgent(t *testing.T) {
	t.Parallel()
	tb := startBroker(t, nil)
	d := tb.enroll(t, "acme", "dev-1")
	login := d.login()
	rm := uint16(maxInflight)
	login.Properties = &paho.ConnectProperties{ReceiveMaximum: &rm}
	c, _, err := tb.connect(t, login)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if reason, err := c.subscribe(t, d.cmdTopic()); err != nil || reason != 1 {
		t.Fatalf("Subscribe(own cmd) = %#x, %v; want QoS 1", reason, err)
	}
	for i := range maxInflight {
		if err := tb.Publish(d.cmdTopic(), fmt.Appendf(nil, "cmd-%d", i), false, 1); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	got := map[string]bool{}
	for len(got) < maxInflight {
		got[string(c.expectMessage(t).Payload)] = true
	}
}
