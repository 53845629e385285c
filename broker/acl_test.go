package broker

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/porthole/porthole/internal/testwait"
)

// TestACL: a device reaches exactly its own cmd topic (subscribe) and its
// own state topic (publish), and nothing else.
func TestACL(t *testing.T) {
	t.Parallel()
	tb := startBroker(t, nil)
	a := tb.enroll(t, "acme", "dev-a")
	b := tb.enroll(t, "acme", "dev-b")
	otherFleet := tb.enroll(t, "other", "dev-a")

	// Everything any device publishes that reaches the broker's subscribers.
	var mu sync.Mutex
	var seen []string
	if err := tb.Subscribe("#", func(topic string, payload []byte) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, topic+" "+string(payload))
	}); err != nil {
		t.Fatal(err)
	}

	ca := tb.connectDevice(t, a)
	notAuthorized := packets.ErrNotAuthorized.Code

	t.Run("subscribe", func(t *testing.T) {
		for _, filter := range []string{
			b.cmdTopic(),
			otherFleet.cmdTopic(),
			a.stateTopic(),
			"porthole/v1/acme/+/cmd",
			"porthole/v1/+/dev-a/cmd",
			"porthole/v1/acme/dev-a/+",
			"porthole/v1/acme/dev-a/#",
			"porthole/v1/acme/dev-a/cmd/#",
			"porthole/#",
			"#",
			"+/+/+/+/+",
			"$SYS/#",
			"$SYS/broker/clients/connected",
			"$share/g/" + a.cmdTopic(),
			"$share/g/porthole/v1/+/+/state",
			"porthole/v1/acme/dev-a/cmd/",
			"/porthole/v1/acme/dev-a/cmd",
			"porthole/v1/ACME/dev-a/cmd",
		} {
			if reason, err := ca.subscribe(t, filter); err == nil || reason != notAuthorized {
				t.Errorf("Subscribe(%q) = %#x, %v; want refused with %#x", filter, reason, err, notAuthorized)
			}
		}
		if reason, err := ca.subscribe(t, a.cmdTopic()); err != nil || reason != 1 {
			t.Errorf("Subscribe(own cmd) = %#x, %v; want granted QoS 1", reason, err)
		}
	})

	t.Run("publish", func(t *testing.T) {
		for _, topic := range []string{
			b.stateTopic(),
			otherFleet.stateTopic(),
			a.cmdTopic(),
			b.cmdTopic(),
			"porthole/v1/acme/dev-a/state/x",
			"porthole/v1/acme/dev-a",
			"$SYS/broker/version",
			"anything",
		} {
			// QoS 1: MQTT 5 answers with a reason code. (mochi drops a
			// publish to a $ topic without any answer, so only QoS 0 below
			// covers $SYS.)
			if !strings.HasPrefix(topic, "$") {
				if pr, err := ca.publish(t, topic, "forged", 1); err == nil || pr == nil || pr.ReasonCode != notAuthorized {
					t.Errorf("Publish(%q, QoS 1) = %+v, %v; want refused with %#x", topic, pr, err, notAuthorized)
				}
			}
			// QoS 0 has no answer; the broker must drop it silently.
			if _, err := ca.publish(t, topic, "forged", 0); err != nil {
				t.Errorf("Publish(%q, QoS 0): %v", topic, err)
			}
		}
		if _, err := ca.publish(t, a.stateTopic(), "online", 1); err != nil {
			t.Fatalf("Publish(own state): %v", err)
		}
		// Packets of one connection are handled in order: once the good
		// state is seen, every forged message above was handled too.
		good := a.stateTopic() + " online"
		testwait.For(t, waitTimeout, "the device's own state", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return slices.Contains(seen, good)
		})
		mu.Lock()
		defer mu.Unlock()
		for _, m := range seen {
			if strings.HasSuffix(m, " forged") {
				t.Errorf("a forged message got through: %q", m)
			}
		}
	})

	t.Run("receive", func(t *testing.T) {
		// A subscribes to its own cmd only, so messages for B never reach
		// it; the next message A receives is its own.
		for _, topic := range []string{b.cmdTopic(), otherFleet.cmdTopic()} {
			if err := tb.Publish(topic, []byte("not for a"), false, 1); err != nil {
				t.Fatal(err)
			}
		}
		if err := tb.Publish(a.cmdTopic(), []byte("for a"), false, 1); err != nil {
			t.Fatal(err)
		}
		if m := ca.expectMessage(t); m.Topic != a.cmdTopic() || string(m.Payload) != "for a" {
			t.Errorf("device A received %q on %s; want %q on %s", m.Payload, m.Topic, "for a", a.cmdTopic())
		}
	})
}
