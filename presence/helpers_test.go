package presence

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole/store"
	"github.com/porthole/porthole/store/sqlitestore"
)

// waitTimeout bounds every poll; the tests normally finish in milliseconds.
const waitTimeout = 5 * time.Second

// t0 is when the tests' devices first connect.
var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// spyStore is a real store whose presence calls can be counted, failed and
// held up.
type spyStore struct {
	store.Store

	mu      sync.Mutex
	sets    []int      // guarded by mu: the number of changes in each SetDevicePresence
	touches [][]string // guarded by mu: the IDs of each TouchDevicesSeen
	fails   int        // guarded by mu: how many more calls fail
	gate    chan struct{}
}

var errInjected = errors.New("injected failure")

// hold makes presence writes wait until the returned function is called.
func (s *spyStore) hold() (release func()) {
	gate := make(chan struct{})
	s.mu.Lock()
	s.gate = gate
	s.mu.Unlock()
	return sync.OnceFunc(func() { close(gate) })
}

// enter is the start of every spied call: it waits at the gate, then
// reports whether the call should fail.
func (s *spyStore) enter(ctx context.Context) error {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fails > 0 {
		s.fails--
		return errInjected
	}
	return nil
}

func (s *spyStore) SetDevicePresence(ctx context.Context, changes ...store.DevicePresence) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	s.sets = append(s.sets, len(changes))
	s.mu.Unlock()
	return s.Store.SetDevicePresence(ctx, changes...)
}

func (s *spyStore) TouchDevicesSeen(ctx context.Context, ids []string, at time.Time) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	s.touches = append(s.touches, ids)
	s.mu.Unlock()
	return s.Store.TouchDevicesSeen(ctx, ids, at)
}

// written is how many changes have been written so far.
func (s *spyStore) written() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.sets {
		n += c
	}
	return n
}

func (s *spyStore) setCalls() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.sets...)
}

func (s *spyStore) touchCalls() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]string(nil), s.touches...)
}

// clock is a settable Now.
type clock struct {
	mu  sync.Mutex
	now time.Time // guarded by mu
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// fixture is a Tracker on a real SQLite store with devices enrolled in
// fleet acme.
type fixture struct {
	*Tracker
	st    *spyStore
	clock *clock
	fleet *store.Fleet
	token string // enrollment token hash with uses left
}

// newFixture starts a Tracker (closed when the test ends) with a refresh
// that never comes unless edit asks for one.
func newFixture(t testing.TB, edit func(*Config)) *fixture {
	t.Helper()
	db, err := sqlitestore.Open(filepath.Join(t.TempDir(), "porthole.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st := &spyStore{Store: db}
	f := &store.Fleet{Name: "acme"}
	if err := st.CreateFleet(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	et := &store.EnrollmentToken{FleetID: f.ID, Hash: "hash-" + t.Name(), UsesLeft: 1 << 20, MaxUses: 1 << 20, ExpiresAt: t0.Add(24 * time.Hour)}
	if err := st.CreateEnrollmentToken(t.Context(), et); err != nil {
		t.Fatal(err)
	}
	c := &clock{now: t0}
	cfg := Config{Store: st, Now: c.Now, RefreshInterval: time.Hour, RetryDelay: time.Millisecond}
	if edit != nil {
		edit(&cfg)
	}
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return &fixture{Tracker: tr, st: st, clock: c, fleet: f, token: et.Hash}
}

func (f *fixture) enroll(t testing.TB, name string) *store.Device {
	t.Helper()
	d := &store.Device{Name: name, PublicKey: "ssh-ed25519 AAAA" + name}
	err := f.st.EnrollDevice(t.Context(), f.token, t0, d, func(*store.Fleet) (string, error) { return "cert", nil })
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// presence is a device's presence as the store has it.
type presence struct {
	Online   bool
	LastSeen time.Time
}

func (f *fixture) presence(t *testing.T, id string) presence {
	t.Helper()
	d, err := f.st.GetDevice(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return presence{d.Online, d.LastSeen}
}

// waitPresence waits until the store has want for device id.
func (f *fixture) waitPresence(t *testing.T, id string, want presence) {
	t.Helper()
	var got presence
	deadline := time.Now().Add(waitTimeout)
	for got = f.presence(t, id); got != want; got = f.presence(t, id) {
		if time.Now().After(deadline) {
			t.Fatalf("presence of %s = %+v; want %+v", id, got, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// queued is how many devices have a change waiting and how many the
// tracker knows.
func (f *fixture) queued() (pending, known int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pending), len(f.devices)
}
