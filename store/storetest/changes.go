package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole/store"
)

// watcher collects the changes a store announces.
type watcher struct {
	mu  sync.Mutex
	got []store.Change
	new chan struct{} // closed and replaced at each change
}

func watch(t *testing.T, s store.Store) *watcher {
	w := &watcher{new: make(chan struct{})}
	s.Watch(t.Context(), func(c store.Change) {
		w.mu.Lock()
		w.got = append(w.got, c)
		close(w.new)
		w.new = make(chan struct{})
		w.mu.Unlock()
	})
	return w
}

// take returns the changes collected so far and forgets them.
func (w *watcher) take() []store.Change {
	w.mu.Lock()
	defer w.mu.Unlock()
	got := w.got
	w.got = nil
	return got
}

// waitFor waits up to 10 s for a change equal to want, and returns the
// changes seen until then.
func (w *watcher) waitFor(t *testing.T, what string, want store.Change) []store.Change {
	t.Helper()
	deadline := time.After(10 * time.Second)
	var seen []store.Change
	for {
		w.mu.Lock()
		for _, c := range w.got {
			seen = append(seen, c)
			if c == want {
				w.got = nil
				w.mu.Unlock()
				return seen
			}
		}
		w.got = nil
		ch := w.new
		w.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%s: no %+v announced within 10 s; saw %+v", what, want, seen)
		}
	}
}

// testChanges: the changes other nodes must act on are announced to this
// node's watchers before the call that makes them returns, with the names
// they need; a change that fails is not announced; a watcher whose context
// ended hears nothing more.
func testChanges(t *testing.T, s store.Store) {
	ctx := t.Context()
	w := watch(t, s)
	f := mkFleet(t, s, "alpha")
	u := mkUser(t, s, "ann@example.com")
	tok := mkEnrollmentToken(t, s, f.ID, 3)
	d := mustEnroll(t, s, tok.Hash, "dev1")
	equal(t, "after enrolling", w.take(), []store.Change{{Kind: store.DeviceEnrolled, Fleet: "alpha", Device: "dev1"}})

	// A failed enrollment (its certificate cannot be made) announces
	// nothing; nor does one that fails after its announcement was made
	// in the transaction (its audit event is refused), which is rolled
	// back.
	err := s.EnrollDevice(ctx, tok.Hash, t0, &store.Device{Name: "dev2", PublicKey: "ssh-ed25519 AAAAdev2"},
		func(*store.Fleet) (string, error) { return "", errors.New("no certificate") })
	if err == nil {
		t.Fatal("an enrollment whose certificate failed was made")
	}
	if _, err := enroll(with(ctx, ev("Not A Kind", "x")), s, tok.Hash, "dev2"); err == nil {
		t.Fatal("an enrollment with an invalid audit event was made")
	}
	equal(t, "after failed enrollments", w.take(), []store.Change(nil))

	ses := mkSession(t, s, d, u)
	_, _, err = s.TransitionSession(ctx, ses.ID, []store.SessionState{store.SessionRequested}, store.SessionConnecting, "", t0)
	ok(t, "to connecting", err)
	_, _, err = s.TransitionSession(ctx, ses.ID, store.OpenSessionStates, store.SessionClosed, "engineer_closed", t0)
	ok(t, "to closed", err)
	// Closing a closed session changes nothing, and says nothing.
	_, _, err = s.TransitionSession(ctx, ses.ID, store.OpenSessionStates, store.SessionClosed, "idle_timeout", t0)
	ok(t, "closed again", err)
	equal(t, "after the session's moves", w.take(), []store.Change{
		{Kind: store.SessionChanged, Fleet: "alpha", Device: "dev1", Session: ses.ID, State: store.SessionConnecting},
		{Kind: store.SessionChanged, Fleet: "alpha", Device: "dev1", Session: ses.ID, State: store.SessionClosed},
	})

	ok(t, "DeleteDevice", s.DeleteDevice(ctx, d.ID))
	wantErr(t, "DeleteDevice again", s.DeleteDevice(ctx, d.ID), store.ErrNotFound)
	equal(t, "after deleting the device", w.take(), []store.Change{{Kind: store.DeviceDeleted, Fleet: "alpha", Device: "dev1"}})

	// A watcher whose context ended hears nothing more.
	wctx, stop := context.WithCancel(ctx)
	var late []store.Change
	var mu sync.Mutex
	s.Watch(wctx, func(c store.Change) { mu.Lock(); late = append(late, c); mu.Unlock() })
	stop()
	ok(t, "DeleteFleet", s.DeleteFleet(ctx, f.ID))
	equal(t, "after deleting the fleet", w.take(), []store.Change{{Kind: store.FleetDeleted, Fleet: "alpha"}})
	mu.Lock()
	equal(t, "heard by a stopped watcher", late, []store.Change(nil))
	mu.Unlock()
}

// RunChangesAcrossNodes checks that changes reach every store on one
// database, as they must reach every server node sharing it (PostgreSQL):
// a device deleted, a session closed through one store is announced to
// the watchers of another. open must open the same database each time;
// kill ends the listening connections of the database's other sessions,
// as a restart of the database or a cut network would (nil to skip that
// part): the watcher then hears ChangesLost, and later changes again.
func RunChangesAcrossNodes(t *testing.T, open func() (store.Store, error), kill func(ctx context.Context) error) {
	ctx := t.Context()
	a, err := open()
	ok(t, "open node a", err)
	defer a.Close()
	b, err := open()
	ok(t, "open node b", err)
	defer b.Close()
	wb := watch(t, b) // b hears what a commits from now on

	f := mkFleet(t, a, "alpha")
	u := mkUser(t, a, "ann@example.com")
	d := mustEnroll(t, a, mkEnrollmentToken(t, a, f.ID, 2).Hash, "dev1")
	wb.waitFor(t, "enrolled on a", store.Change{Kind: store.DeviceEnrolled, Fleet: "alpha", Device: "dev1"})
	ses := mkSession(t, a, d, u)
	_, _, err = a.TransitionSession(ctx, ses.ID, store.OpenSessionStates, store.SessionClosed, "engineer_closed", t0)
	ok(t, "close on a", err)
	wb.waitFor(t, "closed on a", store.Change{Kind: store.SessionChanged, Fleet: "alpha", Device: "dev1", Session: ses.ID, State: store.SessionClosed})
	// A change rolled back after its NOTIFY was made in the transaction
	// (its audit event is refused) is heard by nobody.
	if _, err := enroll(with(ctx, ev("Not A Kind", "x")), a, mkEnrollmentToken(t, a, f.ID, 1).Hash, "dev2"); err == nil {
		t.Fatal("an enrollment with an invalid audit event was made")
	}

	ok(t, "DeleteDevice on a", a.DeleteDevice(ctx, d.ID))
	seen := wb.waitFor(t, "deleted on a", store.Change{Kind: store.DeviceDeleted, Fleet: "alpha", Device: "dev1"})
	for _, c := range seen {
		if c.Kind == store.DeviceEnrolled {
			t.Errorf("node b heard of an enrollment that was rolled back: %+v", seen)
		}
	}
	if kill == nil {
		return
	}
	ok(t, "end the listening connections", kill(ctx))
	wb.waitFor(t, "after the database dropped the listener", store.Change{Kind: store.ChangesLost})
	ok(t, "DeleteFleet on a", a.DeleteFleet(ctx, f.ID))
	wb.waitFor(t, "deleted on a after the listener came back", store.Change{Kind: store.FleetDeleted, Fleet: "alpha"})
}
