package broker

import (
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/control"
)

type message struct{ topic, payload string }

// collect subscribes in process and returns the channel the messages arrive
// on.
func collect(t *testing.T, tb *testBroker, filter string) chan message {
	t.Helper()
	ch := make(chan message, 16)
	if err := tb.Subscribe(filter, func(topic string, payload []byte) { ch <- message{topic, string(payload)} }); err != nil {
		t.Fatalf("Subscribe(%q): %v", filter, err)
	}
	return ch
}

func next(t *testing.T, ch chan message) message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(waitTimeout):
		t.Fatal("timed out waiting for a message")
		return message{}
	}
}

// TestServerAndDevice: the server's commands reach the device, the device's
// states reach the server.
func TestServerAndDevice(t *testing.T) {
	t.Parallel()
	tb := startBroker(t, nil)
	d := tb.enroll(t, "acme", "dev-1")
	states := collect(t, tb, control.StateFilter)

	c := tb.connectDevice(t, d)
	if reason, err := c.subscribe(t, d.cmdTopic()); err != nil || reason != 1 {
		t.Fatalf("Subscribe(own cmd) = %#x, %v; want QoS 1", reason, err)
	}

	if err := tb.Publish(d.cmdTopic(), []byte(`{"payload":"x","sig":"y"}`), false, 1); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	m := c.expectMessage(t)
	if m.Topic != d.cmdTopic() || string(m.Payload) != `{"payload":"x","sig":"y"}` || m.QoS != 1 {
		t.Errorf("device received %q on %s at QoS %d; want the command on %s at QoS 1", m.Payload, m.Topic, m.QoS, d.cmdTopic())
	}

	if _, err := c.publish(t, d.stateTopic(), "tunnel_up s1", 1); err != nil {
		t.Fatalf("device Publish: %v", err)
	}
	if got, want := next(t, states), (message{d.stateTopic(), "tunnel_up s1"}); got != want {
		t.Errorf("server received %+v; want %+v", got, want)
	}

	// The state is retained: a later subscriber gets it at once.
	late := collect(t, tb, d.stateTopic())
	if got, want := next(t, late), (message{d.stateTopic(), "tunnel_up s1"}); got != want {
		t.Errorf("late subscriber received %+v; want %+v", got, want)
	}
}

func TestPublishChecks(t *testing.T) {
	t.Parallel()
	tb := startBroker(t, nil)
	for _, tt := range []struct {
		name    string
		topic   string
		payload []byte
		qos     byte
	}{
		{"empty topic", "", nil, 0},
		{"wildcard", "porthole/v1/acme/+/cmd", nil, 0},
		{"QoS 2", "porthole/v1/acme/d/cmd", nil, 2},
		{"too large", "porthole/v1/acme/d/cmd", []byte(strings.Repeat("x", defaultMaxPacketSize)), 1},
	} {
		if err := tb.Publish(tt.topic, tt.payload, false, tt.qos); err == nil {
			t.Errorf("%s: Publish succeeded; want an error", tt.name)
		}
	}
	// A 16 KiB command fits.
	if err := tb.Publish("porthole/v1/acme/d/cmd", make([]byte, control.MaxEnvelopeSize), false, 1); err != nil {
		t.Errorf("Publish(16 KiB): %v", err)
	}
	if err := tb.Subscribe("porthole/#", nil); err == nil {
		t.Error("Subscribe(nil handler) succeeded; want an error")
	}
	if err := tb.Subscribe("porthole/#/x", func(string, []byte) {}); err == nil {
		t.Error("Subscribe(bad filter) succeeded; want an error")
	}
}
