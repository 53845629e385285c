package agent

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/porthole/porthole/agent/agentconsent"
	"github.com/porthole/porthole/agent/agentowner"
	"github.com/porthole/porthole/agent/internal/agenttest"
	"github.com/porthole/porthole/internal/testwait"
)

// TestAgentRunWaitsForAll: Agent.Run returns only once every goroutine it
// started has ended (the uploads, the owner's socket and page, the control
// channel, and a session waiting for the owner's approval with its talk to
// the server), not while any is still winding down. Not parallel: it looks
// at every goroutine of the process.
func TestAgentRunWaitsForAll(t *testing.T) {
	d := enrollDevice(t, uniqueName("dev"), nil)
	status := &agenttest.SyncWriter{}
	a, err := New(Options{State: d.State, Logger: agenttest.Logger(t), Status: status, Config: Config{
		Consent: agentconsent.Config{Mode: agentconsent.Approve},
		Owner:   agentowner.Config{Socket: filepath.Join(agenttest.ShortDir(t), "agent.sock"), LocalUI: "127.0.0.1:0"}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Run on a goroutine the check below does not count: one created by
	// this test would match it while it exits.
	var runs sync.WaitGroup
	var runErr error
	runs.Go(func() { runErr = a.Run(ctx) })
	status.WaitFor(t, "the owner's page is at http://127.0.0.1:")
	status.WaitFor(t, "connected to "+d.broker.URL())
	d.states.ExpectEventually(t, "online") // subscribed: a command sent now is not lost
	d.broker.Publish(t, d.cmdTopic(), d.sign(t, d.command("s1")))
	d.states.ExpectEventually(t, "waiting_consent s1")

	cancel()
	runs.Wait()
	if runErr != nil {
		t.Errorf("Run = %v", runErr)
	}
	// Only the agent's own and its parts' (agent/agentrecord, ...): paho's
	// client reports a read error on a goroutine of its own that nobody
	// joins (paho/client.go, incoming).
	if left := testwait.Leftover(0, "created by github.com/porthole/porthole/agent.", "created by github.com/porthole/porthole/agent/agent"); left != "" {
		t.Errorf("goroutines the agent started are still running after Run returned:\n%s", left)
	}
}
