package session

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/store"
)

// TestClosedByANodeWithoutKeys: a relay node's Manager, which holds no
// signing key, opens and approves nothing; a session it closes (its relay
// lost, its device gone) is recorded with its reason and its close command
// due, which it does not send. A node that can sign sends it once, whether
// it heard of the close (SendDue) or only sweeps later (no API node was up
// then), and again only if the first try failed and its lease is over.
func TestClosedByANodeWithoutKeys(t *testing.T) {
	t.Parallel()
	var (
		clockMu sync.Mutex
		now     = time.Now()
	)
	clock := func() time.Time {
		clockMu.Lock()
		defer clockMu.Unlock()
		return now
	}
	advance := func(d time.Duration) {
		clockMu.Lock()
		now = now.Add(d)
		clockMu.Unlock()
	}
	// The API node sweeps only when the test says (sweepNow).
	fx := newFixture(t, func(c *Config) {
		c.Now, c.SweepInterval = clock, time.Hour
		c.Place = func(context.Context, *store.Device) (*store.Relay, error) {
			return &store.Relay{ID: "rly_1", Addr: "relay.example.com:443", SSHAddr: "relay.example.com:2222"}, nil
		}
	})
	heard := map[string]bool{"rly_1": true}
	var heardMu sync.Mutex
	relayNode, err := New(Config{Store: fx.st, RelayAddr: "relay.example.com:443", Now: clock, SweepInterval: 10 * time.Millisecond,
		Publish: func(topic string, _ []byte) error {
			t.Errorf("the node without keys published on %s", topic)
			return errors.New("no")
		},
		RelaysHeard: func(context.Context) (map[string]bool, error) {
			heardMu.Lock()
			defer heardMu.Unlock()
			return map[string]bool{"rly_1": heard["rly_1"]}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relayNode.Close() })
	ctx := t.Context()

	if _, err := relayNode.Open(ctx, Request{Device: fx.dev, User: fx.user, PublicKey: newSigner(t).PublicKey(), Ports: []int{22}}); !errors.Is(err, ErrCannotSign) {
		t.Fatalf("Open on a node without keys = %v; want ErrCannotSign", err)
	}
	if _, err := relayNode.Approve(ctx, "ses_x", fx.user, nil); !errors.Is(err, ErrCannotSign) {
		t.Fatalf("Approve on a node without keys = %v; want ErrCannotSign", err)
	}

	placed := func() *Opened {
		o := fx.open(t, nil)
		fx.cmd(t) // its open command
		fx.m.HandleState("acme", "dev1", control.State{Kind: control.StateTunnelUp, Session: o.Session.ID})
		return o
	}
	wantClose := func(id string) {
		t.Helper()
		if c := fx.cmd(t); c.Type != control.TypeClose || c.Session != id {
			t.Fatalf("the device got %+v; want the close of %s", c, id)
		}
	}
	noCommand := func(what string) {
		t.Helper()
		select {
		case c := <-fx.cmds:
			t.Fatalf("%s: the device got %+v", what, c)
		case <-time.After(50 * time.Millisecond):
		}
	}
	due := func(id string) time.Time {
		t.Helper()
		ses, err := fx.st.GetSession(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return ses.CloseDue
	}

	// The relay node closes a session whose device left; an API node
	// hears of it.
	left := placed()
	ses, err := relayNode.CloseSession(ctx, left.Session.ID, control.CloseDeviceDisconnected)
	if err != nil {
		t.Fatal(err)
	}
	if ses.State != store.SessionClosed || ses.CloseReason != string(control.CloseDeviceDisconnected) || ses.CloseDue.IsZero() {
		t.Fatalf("closed by the relay node: %s %q due %v; want closed, %s, its command due", ses.State, ses.CloseReason, ses.CloseDue, control.CloseDeviceDisconnected)
	}
	noCommand("before an API node heard of the close")
	fx.m.SendDue(ctx, left.Session.ID)
	wantClose(left.Session.ID)
	if !due(left.Session.ID).IsZero() {
		t.Error("the close command is still due once sent")
	}
	fx.m.SendDue(ctx, left.Session.ID) // heard twice
	noCommand("a close heard twice")

	// The relay node's sweeper closes a session whose relay it no longer
	// hears; no API node hears of it, and one picks it up at its sweep.
	lost := placed()
	heardMu.Lock()
	heard["rly_1"] = false
	heardMu.Unlock()
	if ses := fx.waitClosed(t, lost.Session.ID); ses.CloseReason != string(control.CloseRelayLost) || ses.CloseDue.IsZero() {
		t.Fatalf("closed by the relay node's sweeper as %q due %v; want %s, its command due", ses.CloseReason, ses.CloseDue, control.CloseRelayLost)
	}
	heardMu.Lock()
	heard["rly_1"] = true
	heardMu.Unlock()
	noCommand("before an API node swept")
	fx.m.sweep(ctx)
	wantClose(lost.Session.ID)
	fx.m.sweep(ctx)
	noCommand("a second sweep")

	// An API node that cannot publish (its broker is down) leaves the
	// command due; a sweep after the lease sends it.
	failed := placed()
	fx.mu.Lock()
	fx.failSend = errors.New("the broker is down")
	fx.mu.Unlock()
	if _, err := relayNode.CloseSession(ctx, failed.Session.ID, control.CloseRelayLost); err != nil {
		t.Fatal(err)
	}
	fx.m.SendDue(ctx, failed.Session.ID)
	fx.mu.Lock()
	fx.failSend = nil
	fx.mu.Unlock()
	fx.m.sweep(ctx)
	noCommand("a sweep within the lease of a failed send")
	advance(closeLease)
	fx.m.sweep(ctx)
	wantClose(failed.Session.ID)
	if !due(failed.Session.ID).IsZero() {
		t.Error("the close command is still due once sent")
	}
}
