package agent

import (
	"context"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/porthole/porthole/agent/internal/agenttest"
)

// mosquittoAddr is the Mosquitto broker on this machine (anonymous logins
// allowed by its default configuration).
const mosquittoAddr = "127.0.0.1:1883"

// mqttWatcher is a plain MQTT client of an external broker that records
// what arrives on one topic.
type mqttWatcher struct {
	*paho.Client
	mu   sync.Mutex
	msgs []string // guarded by mu
}

// dialMosquitto logs in to Mosquitto anonymously, skipping the test if it
// is not there or wants credentials, unless CI=true, where it must work.
func dialMosquitto(t *testing.T) *mqttWatcher {
	t.Helper()
	skip := func(why string, err error) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: %v", why, err)
		}
		t.Skipf("%s (%v); the external broker test needs Mosquitto on %s with anonymous logins", why, err, mosquittoAddr)
	}
	conn, err := net.DialTimeout("tcp", mosquittoAddr, time.Second)
	if err != nil {
		skip("no MQTT broker", err)
	}
	w := &mqttWatcher{}
	w.Client = paho.NewClient(paho.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.msgs = append(w.msgs, string(pr.Packet.Payload))
			return true, nil
		}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), agenttest.WaitTimeout)
	defer cancel()
	if _, err := w.Connect(ctx, &paho.Connect{ClientID: uniqueName("watcher"), CleanStart: true, KeepAlive: 30}); err != nil {
		skip("Mosquitto refused an anonymous login", err)
	}
	t.Cleanup(func() {
		_ = w.Disconnect(&paho.Disconnect{})
		<-w.Done()
	})
	return w
}

func (w *mqttWatcher) messages(string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.msgs)
}

func (w *mqttWatcher) subscribe(t *testing.T, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), agenttest.WaitTimeout)
	defer cancel()
	if _, err := w.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: topic, QoS: 1}}}); err != nil {
		t.Fatalf("Subscribe(%s): %v", topic, err)
	}
}

func (w *mqttWatcher) publish(t *testing.T, topic string, payload []byte, retain bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), agenttest.WaitTimeout)
	defer cancel()
	if _, err := w.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Retain: retain, Payload: payload}); err != nil {
		t.Fatalf("Publish(%s): %v", topic, err)
	}
}

// TestRunMosquitto runs the agent against an external broker, Mosquitto,
// with broker.url: the server's side is a plain MQTT client.
func TestRunMosquitto(t *testing.T) {
	t.Parallel()
	w := dialMosquitto(t)
	d := enrollDevice(t, uniqueName("mq"), nil) // unique: Mosquitto outlives test runs
	w.subscribe(t, d.stateTopic())
	t.Cleanup(func() { w.publish(t, d.stateTopic(), nil, true) }) // clear the retained state
	states := agenttest.NewStateLog(d.stateTopic(), w.messages)

	opts := d.options(t)
	opts.Config.Broker.URL = "mqtt://" + mosquittoAddr
	a := startAgent(t, opts)
	states.Expect(t, "online")
	a.status.WaitFor(t, "warning: mqtt://"+mosquittoAddr+" is not encrypted")
	a.status.WaitFor(t, "connected to mqtt://"+mosquittoAddr+" as lab/"+d.Enrollment.Name)

	w.publish(t, d.cmdTopic(), d.sign(t, d.command("s1")), false)
	states.Expect(t, "tunnel_down s1 unsupported")
	w.publish(t, d.cmdTopic(), []byte(`{"payload":"e30=","sig":"AAAA"}`), false)
	states.Expect(t, "rejected bad_signature")

	a.stop(t)
	states.Expect(t, "offline")
}
