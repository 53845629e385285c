package relays_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/porthole/porthole/internal/testwait"
	"github.com/porthole/porthole/relays"
	"github.com/porthole/porthole/store"
	"github.com/porthole/porthole/store/storetest"
)

// run starts a registration of rel on st, stopped when the test ends or
// by the returned function.
func run(t *testing.T, st store.Store, rel store.Relay, interval time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&relays.Registration{Store: st, Relay: rel, Interval: interval}).Run(ctx)
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func place(t *testing.T, p *relays.Placer, d *store.Device) string {
	t.Helper()
	r, err := p.Place(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	return r.ID
}

// TestPlacement: sessions go to live relays only, to one of the device's
// region when there is one, else to the least loaded; a relay that stops
// is removed at once, one that dies (stops beating) gets no session after
// three intervals, and with none left Place says so.
func TestPlacement(t *testing.T) {
	t.Parallel()
	st := storetest.OpenSQLite(t)
	const interval = 200 * time.Millisecond
	p := &relays.Placer{Store: st, Interval: interval}
	if _, err := p.Place(t.Context(), &store.Device{}); !errors.Is(err, relays.ErrNoRelay) {
		t.Fatalf("Place with no relay: %v; want ErrNoRelay", err)
	}

	stopEU := run(t, st, store.Relay{ID: "rly_eu", Addr: "eu.example.com:443", Region: "eu"}, interval)
	run(t, st, store.Relay{ID: "rly_us", Addr: "us.example.com:443", Region: "us"}, interval)
	testwait.For(t, 5*time.Second, "both relays to register", func() bool {
		live, err := st.ListRelays(t.Context(), time.Now().Add(-time.Minute))
		return err == nil && len(live) == 2
	})

	eu := &store.Device{Labels: map[string]string{"region": "eu"}}
	for range 20 {
		if got := place(t, p, eu); got != "rly_eu" {
			t.Fatalf("a device of region eu was placed on %s", got)
		}
	}
	// Unlabelled, and of a region with no relay: the least loaded, which
	// is us once eu carries a session.
	fleet := &store.Fleet{Name: "acme"}
	if err := st.CreateFleet(t.Context(), fleet); err != nil {
		t.Fatal(err)
	}
	tok := &store.EnrollmentToken{FleetID: fleet.ID, Hash: "h", UsesLeft: 1, MaxUses: 1}
	if err := st.CreateEnrollmentToken(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	d := &store.Device{Name: "dev1", PublicKey: "k"}
	if err := st.EnrollDevice(t.Context(), "h", time.Now(), d, func(*store.Fleet) (string, error) { return "c", nil }); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSession(t.Context(), &store.Session{DeviceID: d.ID, UserEmail: "e", PublicKey: "k", RelayID: "rly_eu"}); err != nil {
		t.Fatal(err)
	}
	for _, dev := range []*store.Device{{}, {Labels: map[string]string{"region": "ap"}}} {
		if got := place(t, p, dev); got != "rly_us" {
			t.Errorf("device %v placed on %s; want the least loaded, rly_us", dev.Labels, got)
		}
	}

	stopEU()
	for range 20 {
		if got := place(t, p, eu); got != "rly_us" {
			t.Fatalf("placed on %s after rly_eu stopped", got)
		}
	}

	// A relay that dies beats no more: after three intervals it gets no
	// session. (Its row stays; a stopped one's went at once.)
	if err := st.HeartbeatRelay(t.Context(), &store.Relay{ID: "rly_dead", Addr: "dead.example.com:443", Region: "eu", HeartbeatAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if got := place(t, p, eu); got != "rly_dead" {
		t.Fatalf("placed on %s; want the eu relay just heard from", got)
	}
	testwait.For(t, 5*time.Second, "the silent relay to get no session", func() bool { return place(t, p, eu) == "rly_us" })
}
