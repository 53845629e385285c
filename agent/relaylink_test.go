package agent

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/porthole/porthole/relay/relayproto"
)

// TestRelayLinkDialHoldsNothing: while the relay's second protocol is being
// dialled (slowly: a relay under load), a session on another connection
// still ends at once; the dial does not hold the lock the sessions share
// (issue 11: with fifty sessions at once, every session's registration,
// end and engineer waited on whichever dial was under way).
func TestRelayLinkDialHoldsNothing(t *testing.T) {
	t.Parallel()
	d := enrollDevice(t, uniqueName("dev"), nil)
	dialing, unblock := make(chan struct{}), make(chan struct{})
	tn, err := NewTunnels(TunnelOptions{State: d.State,
		NetDial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			close(dialing)
			select {
			case <-unblock:
			case <-ctx.Done():
			}
			return nil, context.Canceled
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer close(unblock)

	// A connection that serves one session, as if dialled before.
	a, b := net.Pipe()
	defer b.Close()
	mux, err := yamux.Server(a, relayproto.MuxConfig(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	old := &relayLink{mux: mux, users: 1, regs: map[string]*tunnel{}}
	_ = mux.Close() // it has just died: the next session dials anew

	ls := &tn.links
	ls.mu.Lock()
	ls.cur = old
	ls.mu.Unlock()
	go func() { _, _ = ls.acquire(context.Background()) }()
	<-dialing

	released := make(chan struct{})
	go func() {
		ls.release(old, "ses_old") // the old connection's session ends
		close(released)
	}()
	select {
	case <-released:
	case <-time.After(5 * time.Second):
		t.Fatal("a session's end waited for another session's dial")
	}
}
