package brokerclient

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"testing"
	"time"

	"github.com/porthole/porthole/control"
)

// systemBroker is the Mosquitto a Debian machine runs by default, which
// takes anonymous clients on loopback.
const systemBroker = "127.0.0.1:1883"

// TestSystemMosquitto is a smoke test against the machine's own broker, if
// it lets anonymous clients in. It uses a fleet and share group of its own
// so it disturbs nobody, and publishes nothing retained.
func TestSystemMosquitto(t *testing.T) {
	t.Parallel()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	fleet := "smoke-" + hex.EncodeToString(b[:])
	server, err := New(Config{URL: "mqtt://" + systemBroker, ShareGroup: fleet, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	states := watch(t, server, "porthole/v1/"+fleet+"/+/state")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := server.Connect(ctx); err != nil {
		t.Skipf("no Mosquitto taking anonymous clients on %s: %v", systemBroker, err)
	}
	conn, err := net.Dial("tcp", systemBroker)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := loginDevice(conn, "", "", fleet+"/dev1", nil)
	if err != nil {
		t.Fatalf("anonymous device: %v", err)
	}
	defer dev.close()
	cmd := mustTopic(t, control.CmdTopic, fleet, "dev1")
	state := mustTopic(t, control.StateTopic, fleet, "dev1")
	dev.subscribe(t, cmd)
	if err := server.Publish(cmd, []byte("open"), false, 1); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	dev.waitMessage(t, message{cmd, "open"})
	dev.sendUntilSeen(t, states, state, "online")
}
