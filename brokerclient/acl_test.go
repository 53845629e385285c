package brokerclient

// Attacks on the shipped Mosquitto ACL (deploy/mosquitto): a device may read
// only its own cmd topic and write only its own state topic.
//
// Mosquitto handles each client's packets in order on one thread, so a
// message that a device would wrongly receive is queued before any message
// published after the forbidden one was acknowledged: each test ends with
// such a "barrier" message and checks, once it has arrived, that nothing
// forbidden came before it.

import (
	"testing"

	"github.com/eclipse/paho.golang/paho"

	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/internal/testmosquitto"
)

const notAuthorized = 0x87

func TestDeviceReadsOnlyItsOwnCommands(t *testing.T) {
	t.Parallel()
	m := startMosquitto(t, "")
	server := connectServer(t, m, nil)
	dev1 := dialDevice(t, m.Addr(testmosquitto.DeviceListener), "acme/dev1", nil)
	dev2 := dialDevice(t, m.Addr(testmosquitto.DeviceListener), "acme/dev2", nil)
	cmd1 := mustTopic(t, control.CmdTopic, "acme", "dev1")
	cmd2 := mustTopic(t, control.CmdTopic, "acme", "dev2")
	otherCmd := mustTopic(t, control.CmdTopic, "other", "dev1")
	state2 := mustTopic(t, control.StateTopic, "acme", "dev2")

	// A retained state of another device, which a wildcard subscription
	// would replay at once.
	dev2.send(t, state2, "online", true)
	// Mosquitto 2.0 grants these and filters each message on delivery;
	// what matters is that nothing forbidden arrives.
	dev1.subscribe(t, cmd2, otherCmd, "porthole/v1/acme/+/cmd", "porthole/v1/+/+/state",
		"porthole/v1/#", "#", "$share/x/porthole/v1/+/+/cmd", cmd1)

	for _, topic := range []string{cmd2, otherCmd, cmd1} {
		if err := server.Publish(topic, []byte("open"), false, 1); err != nil {
			t.Fatalf("Publish %s: %v", topic, err)
		}
	}
	dev1.waitMessage(t, message{cmd1, "open"}) // the barrier
	dev1.only(t, "acme/dev1", message{cmd1, "open"})
}

func TestDeviceWritesOnlyItsOwnState(t *testing.T) {
	t.Parallel()
	m := startMosquitto(t, "")
	server := connectServer(t, m, nil)
	states := watch(t, server, control.StateFilter)
	dev1 := dialDevice(t, m.Addr(testmosquitto.DeviceListener), "acme/dev1", nil)
	dev2 := dialDevice(t, m.Addr(testmosquitto.DeviceListener), "acme/dev2", nil)
	cmd1 := mustTopic(t, control.CmdTopic, "acme", "dev1")
	cmd2 := mustTopic(t, control.CmdTopic, "acme", "dev2")
	state1 := mustTopic(t, control.StateTopic, "acme", "dev1")
	state2 := mustTopic(t, control.StateTopic, "acme", "dev2")
	dev1.subscribe(t, cmd1)
	dev2.subscribe(t, cmd2)

	for _, topic := range []string{state2, cmd1, cmd2, "porthole/v1/acme/dev1/other", "other"} {
		if code := dev1.publish(t, topic, "forged", false); code != notAuthorized {
			t.Errorf("acme/dev1 publishing to %s: %s; want not authorized", topic, reasonName(code))
		}
	}
	// Barriers: one message to each would-be victim, sent after the forged
	// ones were refused.
	dev1.send(t, state1, "online", false)
	for _, topic := range []string{cmd1, cmd2} {
		if err := server.Publish(topic, []byte("open"), false, 1); err != nil {
			t.Fatal(err)
		}
	}
	states.waitMessage(t, message{state1, "online"})
	dev1.waitMessage(t, message{cmd1, "open"})
	dev2.waitMessage(t, message{cmd2, "open"})
	states.only(t, "the server", message{state1, "online"})
	dev1.only(t, "acme/dev1", message{cmd1, "open"})
	dev2.only(t, "acme/dev2", message{cmd2, "open"})
}

// TestLastWillOnlyOnOwnState: a device's last will is published only on its
// own state topic; one aimed at another device's is dropped.
func TestLastWillOnlyOnOwnState(t *testing.T) {
	t.Parallel()
	m := startMosquitto(t, "")
	server := connectServer(t, m, nil)
	states := watch(t, server, control.StateFilter)
	state1 := mustTopic(t, control.StateTopic, "acme", "dev1")
	state2 := mustTopic(t, control.StateTopic, "acme", "dev2")
	state3 := mustTopic(t, control.StateTopic, "acme", "dev3")

	forger := dialDevice(t, m.Addr(testmosquitto.DeviceListener), "acme/dev1", &paho.WillMessage{Topic: state2, Payload: []byte("offline"), QoS: 1, Retain: true})
	honest := dialDevice(t, m.Addr(testmosquitto.DeviceListener), "acme/dev3", &paho.WillMessage{Topic: state3, Payload: []byte("offline"), QoS: 1, Retain: true})
	// The server's subscription must be in place before the wills fire.
	honest.sendUntilSeen(t, states, state3, "online")
	forger.vanish(t)
	honest.vanish(t)
	states.waitMessage(t, message{state3, "offline"})
	states.only(t, "the server", message{state3, "online"}, message{state3, "offline"})
	if states.has(message{state1, "offline"}) {
		t.Error("a will on another device's topic was rewritten to the forger's own")
	}
}

// TestWildcardUsernameGetsNothing: a username with a wildcard, which %u would
// turn into a wildcard ACL entry, is given no access at all by Mosquitto.
func TestWildcardUsernameGetsNothing(t *testing.T) {
	t.Parallel()
	m := startMosquitto(t, "")
	server := connectServer(t, m, nil)
	states := watch(t, server, control.StateFilter)
	wild := dialDevice(t, m.Addr(testmosquitto.DeviceListener), "acme/+", nil)
	cmd1 := mustTopic(t, control.CmdTopic, "acme", "dev1")
	state1 := mustTopic(t, control.StateTopic, "acme", "dev1")
	wild.subscribe(t, "porthole/v1/acme/+/cmd", cmd1)
	if code := wild.publish(t, state1, "forged", false); code != notAuthorized {
		t.Errorf("acme/+ publishing to %s: %s; want not authorized", state1, reasonName(code))
	}
	if err := server.Publish(cmd1, []byte("open"), false, 1); err != nil {
		t.Fatal(err)
	}
	wild.drain(t)
	wild.only(t, "acme/+")

	// The server's barrier: a real device's state, published after the
	// forged one was refused.
	dev1 := dialDevice(t, m.Addr(testmosquitto.DeviceListener), "acme/dev1", nil)
	dev1.sendUntilSeen(t, states, state1, "online")
	states.only(t, "the server", message{state1, "online"})
}

// TestListenersKeepDevicesAndServersApart: a device cannot log in on the
// server nodes' listener nor a server node on the devices', and a device
// that connects with another client's id cannot knock it off.
func TestListenersKeepDevicesAndServersApart(t *testing.T) {
	t.Parallel()
	m := startMosquitto(t, "")
	if _, err := tryDevice(m.Addr(testmosquitto.ServerListener), "acme/dev1", password("acme/dev1"), "acme/dev1", nil); err == nil {
		t.Error("a device logged in on the server nodes' listener")
	}
	if _, err := tryDevice(m.Addr(testmosquitto.DeviceListener), "portholed", password("portholed"), "portholed-x", nil); err == nil {
		t.Error("the server's user logged in on the devices' listener")
	}

	server := connectServer(t, m, func(c *Config) { c.ClientID = "portholed-node1" })
	dev2 := dialDevice(t, m.Addr(testmosquitto.DeviceListener), "acme/dev2", nil)
	cmd2 := mustTopic(t, control.CmdTopic, "acme", "dev2")
	dev2.subscribe(t, cmd2)
	for _, id := range []string{"portholed-node1", "acme/dev2"} {
		d, err := tryDevice(m.Addr(testmosquitto.DeviceListener), "acme/dev1", password("acme/dev1"), id, nil)
		if err != nil {
			t.Fatalf("acme/dev1 with client id %s: %v", id, err)
		}
		t.Cleanup(d.close)
	}
	if err := server.Publish(cmd2, []byte("open"), false, 1); err != nil {
		t.Fatalf("the server after a device took its client id: Publish: %v", err)
	}
	dev2.waitMessage(t, message{cmd2, "open"})
}
