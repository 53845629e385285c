package storetest

import (
	"testing"
	"time"

	"github.com/porthole/porthole/store"
)

// testRelays: relays register and beat their hearts; a list since a time
// leaves out the silent ones and counts each one's open sessions; a
// session keeps the relay it was placed on; stale and stopping relays are
// removed.
func testRelays(t *testing.T, s store.Store) {
	ctx := t.Context()
	r1 := &store.Relay{ID: "rly_1", Addr: "relay1.example.com:443", SSHAddr: "relay1.example.com:2222", Region: "eu", HeartbeatAt: t0}
	r2 := &store.Relay{ID: "rly_2", Addr: "relay2.example.com:443", HeartbeatAt: t0.Add(-time.Minute)}
	ok(t, "HeartbeatRelay 1", s.HeartbeatRelay(ctx, r1))
	ok(t, "HeartbeatRelay 2", s.HeartbeatRelay(ctx, r2))
	got, err := s.ListRelays(ctx, t0.Add(-10*time.Second))
	ok(t, "ListRelays", err)
	equal(t, "live relays", got, []*store.Relay{{ID: "rly_1", Addr: "relay1.example.com:443", SSHAddr: "relay1.example.com:2222",
		Region: "eu", StartedAt: stored(t0), HeartbeatAt: stored(t0)}})

	// A heartbeat moves the time on and keeps the start.
	r2.HeartbeatAt = t0
	ok(t, "HeartbeatRelay 2 again", s.HeartbeatRelay(ctx, r2))
	f := mkFleet(t, s, "alpha")
	u := mkUser(t, s, "ann@example.com")
	d := mustEnroll(t, s, mkEnrollmentToken(t, s, f.ID, 1).Hash, "dev1")
	placed := &store.Session{DeviceID: d.ID, UserEmail: u.Email, PublicKey: "k", CreatedAt: t0,
		RelayID: "rly_2", RelayAddr: "relay2.example.com:443", RelaySSHAddr: "relay2.example.com:2222"}
	ok(t, "CreateSession", s.CreateSession(ctx, placed))
	closed := &store.Session{DeviceID: d.ID, UserEmail: u.Email, PublicKey: "k", CreatedAt: t0, RelayID: "rly_2"}
	ok(t, "CreateSession", s.CreateSession(ctx, closed))
	_, _, err = s.TransitionSession(ctx, closed.ID, store.OpenSessionStates, store.SessionClosed, "engineer_closed", t0)
	ok(t, "close", err)
	back, err := s.GetSession(ctx, placed.ID)
	ok(t, "GetSession", err)
	equal(t, "placement", [3]string{back.RelayID, back.RelayAddr, back.RelaySSHAddr},
		[3]string{"rly_2", "relay2.example.com:443", "relay2.example.com:2222"})
	got, err = s.ListRelays(ctx, t0.Add(-10*time.Second))
	ok(t, "ListRelays", err)
	if len(got) != 2 || got[0].Sessions != 0 || got[1].Sessions != 1 || !got[1].StartedAt.Equal(stored(t0.Add(-time.Minute))) {
		t.Errorf("relays = %s; want rly_1 with no session, rly_2 started a minute earlier with its one open session", show(got))
	}

	// A heartbeat with no time is the database's, which is this
	// machine's, near enough.
	ok(t, "HeartbeatRelay now", s.HeartbeatRelay(ctx, &store.Relay{ID: "rly_3", Addr: "relay3.example.com:443"}))
	got, err = s.ListRelays(ctx, time.Now().Add(-time.Minute))
	ok(t, "ListRelays", err)
	if len(got) != 1 || got[0].ID != "rly_3" || time.Since(got[0].HeartbeatAt).Abs() > 10*time.Second || !got[0].StartedAt.Equal(got[0].HeartbeatAt) {
		t.Errorf("relays heard in the last minute = %s; want rly_3, heard now", show(got))
	}
	now, err := s.Now(ctx)
	ok(t, "Now", err)
	if d := time.Since(now); d.Abs() > 10*time.Second { // the same clock, however slow the machine
		t.Errorf("the database's clock says %v, %v from this machine's", now, d)
	}

	n, err := s.DeleteRelays(ctx, "rly_1", t0.Add(-time.Hour))
	ok(t, "DeleteRelays by ID", err)
	equal(t, "removed", n, 1)
	n, err = s.DeleteRelays(ctx, "", t0.Add(time.Second))
	ok(t, "DeleteRelays stale", err)
	equal(t, "removed", n, 1)
	_, err = s.DeleteRelays(ctx, "rly_3", time.Time{})
	ok(t, "DeleteRelays rly_3", err)
	got, err = s.ListRelays(ctx, time.Time{})
	ok(t, "ListRelays", err)
	equal(t, "relays left", len(got), 0)
}
