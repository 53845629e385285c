package agent

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/porthole/porthole/agent/internal/agenttest"
	"github.com/porthole/porthole/control"
)

// heldSessions is a SessionHandler whose first Open waits until the test
// lets it go, and which counts the sessions it was asked to open.
type heldSessions struct {
	entered chan struct{} // closed when the first Open waits
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	opened  map[string]bool // guarded by mu
}

func (h *heldSessions) Open(_ context.Context, cmd *control.Command, _ Reporter) {
	h.once.Do(func() {
		close(h.entered)
		<-h.release
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.opened[cmd.Session] = true
}

func (h *heldSessions) Close(context.Context, *control.Command, Reporter) {}

func (h *heldSessions) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.opened)
}

// TestRunCommandBurst: a hundred open commands at once, while the agent's
// worker is held up, all reach the sessions: the agent waits for room
// rather than dropping what its inbox cannot hold, and the broker holds
// the rest back (issue 11: fifty sessions asked of one device at once,
// some of whose commands were dropped, "did not answer within 33 s").
func TestRunCommandBurst(t *testing.T) {
	t.Parallel()
	d := enrollDevice(t, "dev1", nil)
	h := &heldSessions{entered: make(chan struct{}), release: make(chan struct{}), opened: map[string]bool{}}
	opts := d.options(t)
	opts.Sessions = h
	opts.Status = &agenttest.SyncWriter{}
	r, err := newRunner(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		defer r.close()
		done <- r.run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run = %v", err)
		}
	})
	d.states.Expect(t, "online")

	d.broker.Publish(t, d.cmdTopic(), d.sign(t, d.command("s0")))
	<-h.entered // the worker is held up in the first Open
	const n = 100
	for i := 1; i < n; i++ {
		d.broker.Publish(t, d.cmdTopic(), d.sign(t, d.command(fmt.Sprintf("s%d", i))))
	}
	agenttest.WaitUntil(t, "the agent's inbox to fill up", func() bool { return len(r.inbox) == cap(r.inbox) })
	close(h.release)
	agenttest.WaitUntil(t, fmt.Sprintf("all %d sessions to be opened", n), func() bool { return h.count() == n })
}
