package brokerclient

import (
	"runtime"
	"testing"

	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/internal/testmosquitto"
	"github.com/porthole/porthole/internal/testwait"
)

// TestCloseLeavesNoGoroutines is not parallel: the parallel tests wait
// while it runs, so the process's goroutine count is its own to watch.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	m := startMosquitto(t, "")
	before := runtime.NumGoroutine()

	dev := dialDevice(t, m.Addr(testmosquitto.DeviceListener), "acme/dev1", nil)
	cmd := mustTopic(t, control.CmdTopic, "acme", "dev1")
	state := mustTopic(t, control.StateTopic, "acme", "dev1")
	dev.subscribe(t, cmd)
	server := connectServer(t, m, nil)
	states := watch(t, server, control.StateFilter)
	dev.sendUntilSeen(t, states, state, "online")
	if err := server.Publish(cmd, []byte("open"), false, 1); err != nil {
		t.Fatal(err)
	}
	m.Restart(t) // a reconnection too
	testwait.For(t, waitTimeout, "the client to reconnect", server.Connected)
	if err := server.Close(); err != nil {
		t.Fatal(err)
	}
	dev.close() // already dropped by the restart; this waits for its goroutines
	// Polled: paho reports a lost connection on a goroutine it does not
	// wait for, which ends a moment later.
	testwait.GoroutinesAtMost(t, before, waitTimeout)
}
