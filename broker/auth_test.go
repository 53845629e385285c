package broker

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/porthole/porthole/control"
)

func TestDeviceConnects(t *testing.T) {
	t.Parallel()
	tb := startBroker(t, nil)
	d := tb.enroll(t, "acme", "dev-1")

	// Client id equal to the username.
	tb.connectDevice(t, d)
	tb.presence.waitEvents(t, "+acme/dev-1")

	// Or empty: the broker assigns the username.
	_, ca, err := tb.connect(t, &paho.Connect{Username: d.username(), Password: []byte(d.password())})
	if err != nil {
		t.Fatalf("Connect without client id: %v", err)
	}
	if ca.Properties == nil || ca.Properties.AssignedClientID != d.username() {
		t.Errorf("assigned client id = %+v; want %q", ca.Properties, d.username())
	}
}

// TestConnectRefused tries to log in with every credential that must fail.
func TestConnectRefused(t *testing.T) {
	t.Parallel()
	tb := startBroker(t, nil)
	dev := tb.enroll(t, "acme", "dev-1")
	other := tb.enroll(t, "acme", "dev-2")
	deleted := tb.enroll(t, "acme", "gone")
	tb.reg.remove("acme", "gone")
	_, strangerKey, _ := ed25519.GenerateKey(rand.Reader)
	stranger := device{fleet: "acme", name: "dev-1", priv: strangerKey} // right name, wrong key
	unknown := device{fleet: "acme", name: "nobody", priv: dev.priv}

	// as is the CONNECT of the device named by d, with a given password;
	// edit changes it further.
	as := func(d device, password []byte, edit ...func(*paho.Connect)) *paho.Connect {
		cp := &paho.Connect{ClientID: d.username(), Username: d.username(), Password: password}
		for _, e := range edit {
			e(cp)
		}
		return cp
	}
	at := func(d device, when time.Time) []byte {
		return []byte(control.DevicePassword(d.priv, d.fleet, d.name, when))
	}
	good := func() []byte { return []byte(dev.password()) }
	now := time.Now()
	bad := packets.ErrBadUsernameOrPassword.Code

	for _, tt := range []struct {
		name string
		cp   *paho.Connect
		want byte
	}{
		{"wrong key", as(dev, []byte(stranger.password())), bad},
		{"stale password", as(dev, at(dev, now.Add(-11*time.Minute))), bad},
		{"password from the future", as(dev, at(dev, now.Add(11*time.Minute))), bad},
		{"other device's name", as(other, good()), bad},
		{"other device's password", as(dev, []byte(other.password())), bad},
		{"unknown device", as(unknown, []byte(unknown.password())), bad},
		{"deleted device", as(deleted, []byte(deleted.password())), bad},
		{"no password", as(dev, nil), bad},
		{"empty password", as(dev, []byte{}), packets.ErrProtocolViolationFlagNoPassword.Code},
		{"malformed password", as(dev, []byte("hunter2")), bad},
		{"username without device", &paho.Connect{Username: "acme", Password: good()}, bad},
		{"wildcard username", &paho.Connect{Username: "acme/+", Password: good()}, bad},
		{"extra level", &paho.Connect{Username: "acme/dev-1/x", Password: good()}, bad},
		{"inline client id", as(dev, good(), func(cp *paho.Connect) { cp.ClientID = "inline" }), packets.ErrClientIdentifierNotValid.Code},
		{"other device's client id", as(dev, good(), func(cp *paho.Connect) { cp.ClientID = other.username() }), packets.ErrClientIdentifierNotValid.Code},
		{"will on other device's state", as(dev, good(), func(cp *paho.Connect) {
			cp.WillMessage = &paho.WillMessage{Topic: other.stateTopic(), Payload: []byte("offline"), Retain: true}
		}), packets.ErrNotAuthorized.Code},
		{"will on own cmd", as(dev, good(), func(cp *paho.Connect) {
			cp.WillMessage = &paho.WillMessage{Topic: dev.cmdTopic(), Payload: []byte("x")}
		}), packets.ErrNotAuthorized.Code},
		{"enhanced auth", as(dev, good(), func(cp *paho.Connect) {
			cp.Properties = &paho.ConnectProperties{AuthMethod: "SCRAM-SHA-1"}
		}), packets.ErrBadAuthenticationMethod.Code},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, ca, err := tb.connect(t, tt.cp)
			if err == nil {
				t.Fatalf("Connect succeeded; want refused with %#x", tt.want)
			}
			if ca == nil || ca.ReasonCode != tt.want {
				t.Errorf("Connect = %+v, %v; want CONNACK reason %#x", ca, err, tt.want)
			}
		})
	}
	if ev := tb.presence.get(); len(ev) != 0 {
		t.Errorf("presence events after refused logins: %v; want none", ev)
	}
	// The good credential still works: nothing above locked it out.
	tb.connectDevice(t, dev)
}

// TestWillOnOwnState: the agent's own "offline" will is allowed.
func TestWillOnOwnState(t *testing.T) {
	t.Parallel()
	tb := startBroker(t, nil)
	d := tb.enroll(t, "acme", "dev-1")
	cp := d.login()
	cp.WillMessage = &paho.WillMessage{Topic: d.stateTopic(), Payload: []byte("offline"), Retain: true, QoS: 1}
	_, _, err := tb.connect(t, cp)
	if err != nil {
		t.Fatalf("Connect with will on own state topic: %v", err)
	}
}

// TestRegistryDown: a store outage is "server unavailable", so devices
// retry instead of believing their credential is bad.
func TestRegistryDown(t *testing.T) {
	t.Parallel()
	tb := startBroker(t, nil)
	d := tb.enroll(t, "acme", "dev-1")
	tb.reg.fail(errors.New("database is down"))
	_, ca, err := tb.connect(t, d.login())
	if err == nil || ca == nil || ca.ReasonCode != packets.ErrServerUnavailable.Code {
		t.Errorf("Connect = %+v, %v; want CONNACK reason %#x", ca, err, packets.ErrServerUnavailable.Code)
	}
}

// TestMQTT311: devices may speak MQTT 3.1.1, under the same rules.
func TestMQTT311(t *testing.T) {
	t.Parallel()
	tb := startBroker(t, nil)
	d := tb.enroll(t, "acme", "dev-1")
	other := tb.enroll(t, "acme", "dev-2")

	if _, code := tb.dialV311(t, d.username(), d.username(), d.password(), 30); code != 0 {
		t.Errorf("3.1.1 CONNECT with a good password: return code %d; want 0", code)
	}
	tb.presence.waitEvents(t, "+acme/dev-1")
	// mochi answers a bad 3.1.1 password with 5 (not authorized).
	if _, code := tb.dialV311(t, d.username(), d.username(), other.password(), 30); code != 5 {
		t.Errorf("3.1.1 CONNECT with another device's password: return code %d; want 5 (not authorized)", code)
	}
	if _, code := tb.dialV311(t, other.username(), d.username(), d.password(), 30); code != 2 {
		t.Errorf("3.1.1 CONNECT with another device's client id: return code %d; want 2 (identifier rejected)", code)
	}
	// 3.1.1 cannot be told a keep-alive: one the broker would not honour is
	// refused rather than dropped between pings.
	for _, ka := range []uint16{0, 301} {
		if _, code := tb.dialV311(t, d.username(), d.username(), d.password(), ka); code != 5 {
			t.Errorf("3.1.1 CONNECT with keep-alive %d: return code %d; want 5 (not authorized)", ka, code)
		}
	}
	// A short keep-alive is raised (harmless: the device pings more often
	// than needed), and an empty client id becomes the username.
	if _, code := tb.dialV311(t, "", d.username(), d.password(), 1); code != 0 {
		t.Errorf("3.1.1 CONNECT with keep-alive 1 and no client id: return code %d; want 0", code)
	}
}

// TestTakeover: one connection per device; a new one replaces the old, and
// the device stays online throughout.
func TestTakeover(t *testing.T) {
	t.Parallel()
	tb := startBroker(t, nil)
	d := tb.enroll(t, "acme", "dev-1")

	first := tb.connectDevice(t, d)
	tb.presence.waitEvents(t, "+acme/dev-1")
	second := tb.connectDevice(t, d)
	first.waitGone(t, "the first connection is still up after the device connected again")
	tb.waitConns(t, 1)
	tb.presence.waitEvents(t, "+acme/dev-1", "+acme/dev-1")

	// The surviving connection is the one that works.
	if reason, err := second.subscribe(t, d.cmdTopic()); err != nil || reason != 1 {
		t.Fatalf("Subscribe on the new connection = %#x, %v; want QoS 1", reason, err)
	}
	if err := tb.Publish(d.cmdTopic(), []byte("cmd"), false, 1); err != nil {
		t.Fatal(err)
	}
	second.expectMessage(t)

	_ = second.Disconnect(&paho.Disconnect{})
	tb.presence.waitEvents(t, "+acme/dev-1", "+acme/dev-1", "-acme/dev-1")
}

// TestConnectTimeout: a connection that never sends CONNECT is cut.
func TestConnectTimeout(t *testing.T) {
	t.Parallel()
	tb := startBroker(t, func(c *Config) { c.ConnectTimeout = 100 * time.Millisecond })
	conn, err := net.Dial("tcp", tb.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitClosed(t, conn)
	tb.waitConns(t, 0)
}

// TestOversizedPacket: a device cannot make the broker read a packet over
// MaxPacketSize.
func TestOversizedPacket(t *testing.T) {
	t.Parallel()
	tb := startBroker(t, nil)
	d := tb.enroll(t, "acme", "dev-1")
	c := tb.connectDevice(t, d)
	_, _ = c.publish(t, d.stateTopic(), string(make([]byte, defaultMaxPacketSize)), 0)
	c.waitGone(t, "the broker kept the connection after an oversized packet")
}
