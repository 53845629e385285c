package agent

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/porthole/porthole/agent/internal/agenttest"
	"github.com/porthole/porthole/internal/testmosquitto"
)

// mqttWatcher is a plain MQTT client of an external broker that records
// what arrives on one topic.
type mqttWatcher struct {
	*paho.Client
	mu   sync.Mutex
	msgs []string // guarded by mu
}

// dialMosquitto starts a Mosquitto of the test's own that lets anyone in
// (testmosquitto), and logs in to it at addr.
func dialMosquitto(t *testing.T) (w *mqttWatcher, addr string) {
	t.Helper()
	addr = testmosquitto.Start(t, testmosquitto.Config{}).Addr(testmosquitto.DeviceListener)
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	w = &mqttWatcher{}
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
		t.Fatalf("logging in to Mosquitto: %v", err)
	}
	t.Cleanup(func() {
		_ = w.Disconnect(&paho.Disconnect{})
		<-w.Done()
	})
	return w, addr
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
	w, mosquittoAddr := dialMosquitto(t)
	d := enrollDevice(t, uniqueName("mq"), nil)
	w.subscribe(t, d.stateTopic())
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
