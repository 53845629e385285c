package broker

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/eclipse/paho.golang/paho"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/internal/testwait"
)

// TestServerLogin: another portholed node logs in with the deployment's
// server password and may read every state (also through a shared
// subscription) and send every device commands, and nothing else: it
// cannot forge a device's state, read commands, leave a will, take a
// device's client id, or count as a device online. Without the password,
// or on a broker that takes no server logins, it is refused.
func TestServerLogin(t *testing.T) {
	t.Parallel()
	secret := []byte("the deployment's derived secret")
	tb := startBroker(t, func(c *Config) { c.ServerPassword = secret })
	dev := tb.enroll(t, "acme", "dev1")
	login := func(id, password string) *paho.Connect {
		return &paho.Connect{ClientID: id, Username: ServerUsername, UsernameFlag: true, PasswordFlag: true, Password: []byte(password), KeepAlive: 30}
	}

	refused := []struct {
		name string
		cp   *paho.Connect
		code byte
	}{
		{"wrong password", login("portholed-node2", "guess"), packets.ErrBadUsernameOrPassword.Code},
		{"a device's client id", login(dev.username(), string(secret)), packets.ErrClientIdentifierNotValid.Code},
		{"a client id without the prefix", login("node2", string(secret)), packets.ErrClientIdentifierNotValid.Code},
	}
	willed := login("portholed-node2", string(secret))
	willed.WillMessage = &paho.WillMessage{Topic: dev.stateTopic(), Payload: []byte("offline")}
	refused = append(refused, struct {
		name string
		cp   *paho.Connect
		code byte
	}{"a last will", willed, packets.ErrNotAuthorized.Code})
	for _, tt := range refused {
		if _, ca, err := tb.connect(t, tt.cp); err == nil || ca == nil || ca.ReasonCode != tt.code {
			t.Errorf("%s: Connect = %+v, %v; want refused with %#x", tt.name, ca, err, tt.code)
		}
	}
	noServers := startBroker(t, nil)
	if _, ca, err := noServers.connect(t, login("portholed-node2", "anything")); err == nil || ca == nil || ca.ReasonCode != packets.ErrBadUsernameOrPassword.Code {
		t.Errorf("a server login to a broker without ServerPassword: %+v, %v; want refused", ca, err)
	}

	node, _, err := tb.connect(t, login("portholed-node2", string(secret)))
	if err != nil {
		t.Fatalf("the server node's login was refused: %v", err)
	}
	notAuthorized := packets.ErrNotAuthorized.Code
	for _, filter := range []string{dev.cmdTopic(), "porthole/v1/+/+/cmd", "#", "porthole/#", "$share/g/porthole/v1/+/+/cmd", "$SYS/#"} {
		if reason, err := node.subscribe(t, filter); err == nil || reason != notAuthorized {
			t.Errorf("the server node subscribed to %q: %#x, %v; want refused", filter, reason, err)
		}
	}
	shared, err := control.SharedStateFilter("portholed")
	if err != nil {
		t.Fatal(err)
	}
	if reason, err := node.subscribe(t, shared); err != nil || reason != 1 {
		t.Fatalf("the server node's shared subscription to the states: %#x, %v", reason, err)
	}
	for _, topic := range []string{dev.stateTopic(), "porthole/v1/acme/dev1", "anything"} {
		if pr, err := node.publish(t, topic, "forged", 1); err == nil || pr == nil || pr.ReasonCode != notAuthorized {
			t.Errorf("the server node published to %q: %+v, %v; want refused", topic, pr, err)
		}
	}

	// The device's state reaches the node; the node's command reaches the
	// device; the node is no device online.
	var mu sync.Mutex
	var local []string
	if err := tb.Subscribe(control.StateFilter, func(topic string, payload []byte) {
		mu.Lock()
		local = append(local, string(payload))
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	cd := tb.connectDevice(t, dev)
	if reason, err := cd.subscribe(t, dev.cmdTopic()); err != nil || reason != 1 {
		t.Fatalf("device subscribe: %#x, %v", reason, err)
	}
	if _, err := cd.publish(t, dev.stateTopic(), "online", 1); err != nil {
		t.Fatal(err)
	}
	if m := node.expectMessage(t); m.Topic != dev.stateTopic() || string(m.Payload) != "online" {
		t.Errorf("the server node got %q on %s; want the device's state", m.Payload, m.Topic)
	}
	if _, err := node.publish(t, dev.cmdTopic(), "a signed command", 1); err != nil {
		t.Fatalf("the server node's command: %v", err)
	}
	if m := cd.expectMessage(t); m.Topic != dev.cmdTopic() || string(m.Payload) != "a signed command" {
		t.Errorf("the device got %q on %s", m.Payload, m.Topic)
	}
	testwait.For(t, waitTimeout, "the forged states to be handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(local, "online")
	})
	mu.Lock()
	for _, m := range local {
		if strings.Contains(m, "forged") {
			t.Errorf("a state forged by the server node got through: %q", m)
		}
	}
	mu.Unlock()
	if got := tb.presence.get(); !slices.Equal(got, []string{"+acme/dev1"}) {
		t.Errorf("presence = %v; want only the device online", got)
	}
}
