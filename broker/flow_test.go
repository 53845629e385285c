package broker

import (
	"fmt"
	"testing"

	"github.com/eclipse/paho.golang/paho"
)

// TestCommandBurst: a burst of commands well past the device's Receive
// Maximum all arrive, and so does one sent after it. mochi holds back what
// exceeds the client's quota and sends it as acknowledgements come back,
// but forgets each held-back message once sent, so its PUBACK gave no
// quota back: after Receive Maximum held-back messages the device got
// nothing more until it reconnected (issue 11: sessions on a device whose
// commands no longer arrived "did not answer within 33 s").
func TestCommandBurst(t *testing.T) {
	t.Parallel()
	tb := startBroker(t, nil)
	d := tb.enroll(t, "acme", "dev-1")
	const receiveMax, burst = 4, 50
	login := d.login()
	rm := uint16(receiveMax)
	login.Properties = &paho.ConnectProperties{ReceiveMaximum: &rm}
	c, _, err := tb.connect(t, login)
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
		receive(start + n)
	}
}
