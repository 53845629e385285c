package storetest

import (
	"testing"
	"time"

	"github.com/porthole/porthole/store"
)

// mkRequest makes a support request on d created at t0, open for an hour.
func mkRequest(t *testing.T, s store.Store, d *store.Device, reason string) *store.SupportRequest {
	t.Helper()
	r := &store.SupportRequest{DeviceID: d.ID, Kind: store.RequestSupport, Reason: reason,
		CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	ok(t, "CreateSupportRequest", s.CreateSupportRequest(t.Context(), r))
	return r
}

// sessionAt makes a session on d for u created at at.
func sessionAt(t *testing.T, s store.Store, d *store.Device, u *store.User, at time.Time) *store.Session {
	t.Helper()
	ses := &store.Session{DeviceID: d.ID, UserID: u.ID, UserEmail: u.Email, PublicKey: "ssh-ed25519 AAAAengineer",
		IdleTimeout: time.Minute, MaxDuration: time.Hour, CreatedAt: at}
	ok(t, "CreateSession", s.CreateSession(t.Context(), ses))
	return ses
}

func testSupportRequests(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := mkFleet(t, s, "alpha")
	ann, bob := mkUser(t, s, "ann@example.com"), mkUser(t, s, "bob@example.com")
	d := mustEnroll(t, s, mkEnrollmentToken(t, s, f.ID, 1).Hash, "dev1")

	r := mkRequest(t, s, d, "the amp hums")
	wantPrefix(t, "support request", r.ID, "req")
	want := store.SupportRequest{ID: r.ID, FleetID: f.ID, FleetName: "alpha", DeviceID: d.ID, DeviceName: "dev1",
		Kind: store.RequestSupport, Reason: "the amp hums", State: store.RequestOpen,
		CreatedAt: stored(t0), ExpiresAt: stored(t0.Add(time.Hour)), SessionIDs: []string{}}
	equal(t, "created request", *r, want)
	got, err := s.GetSupportRequest(ctx, r.ID)
	ok(t, "GetSupportRequest", err)
	equal(t, "request", *got, want)

	// Sessions it led to: those on its device that began while it was
	// open, not before, not after, not on another device.
	sessionAt(t, s, d, ann, t0.Add(-time.Minute))
	in1 := sessionAt(t, s, d, ann, t0.Add(time.Minute))
	in2 := sessionAt(t, s, d, bob, t0.Add(2*time.Minute))
	sessionAt(t, s, d, ann, t0.Add(2*time.Hour))
	got, _ = s.GetSupportRequest(ctx, r.ID)
	equal(t, "sessions of the request", got.SessionIDs, []string{in1.ID, in2.ID})

	// Two engineers claim at once: one has it.
	at := t0.Add(3 * time.Minute)
	results := race(2, func(i int) bool {
		u := []*store.User{ann, bob}[i]
		_, changed, err := s.ClaimSupportRequest(ctx, r.ID, u.ID, u.Email, at)
		ok(t, "claim", err)
		return changed
	})
	if results[0] == results[1] {
		t.Fatalf("claims changed %v; want exactly one", results)
	}
	got, _ = s.GetSupportRequest(ctx, r.ID)
	equal(t, "state", got.State, store.RequestClaimed)
	equal(t, "claimed at", got.ClaimedAt, stored(at))
	if got.ClaimedBy != ann.ID && got.ClaimedBy != bob.ID || got.ClaimedEmail == "" {
		t.Errorf("claimed by %q (%q); want ann or bob", got.ClaimedBy, got.ClaimedEmail)
	}
	_, changed, err := s.ClaimSupportRequest(ctx, r.ID, ann.ID, ann.Email, at)
	ok(t, "claim again", err)
	equal(t, "a claimed request claimed again changes", changed, false)

	// Released by whoever does not hold it: unchanged. By its holder's
	// email (deleted, or no longer of the fleet): open again, and claimed
	// by the next one.
	holder, other := ann, bob
	if got.ClaimedBy == bob.ID {
		holder, other = bob, ann
	}
	_, changed, err = s.ReleaseSupportRequest(ctx, r.ID, other.Email)
	ok(t, "release by another", err)
	equal(t, "released by another changes", changed, false)
	got, changed, err = s.ReleaseSupportRequest(ctx, r.ID, holder.Email)
	ok(t, "release", err)
	equal(t, "released changes", changed, true)
	if got.State != store.RequestOpen || got.ClaimedBy != "" || got.ClaimedEmail != "" || !got.ClaimedAt.IsZero() {
		t.Errorf("released: %+v", got)
	}
	_, changed, err = s.ClaimSupportRequest(ctx, r.ID, holder.ID, holder.Email, at)
	ok(t, "claim a released request", err)
	equal(t, "a released request claimed changes", changed, true)

	// Closing records one reason, once; a sessions that began after it
	// closed is not one it led to.
	closeAt := t0.Add(10 * time.Minute)
	got, changed, err = s.CloseSupportRequest(ctx, r.ID, "closed", "ann@example.com", closeAt)
	ok(t, "close", err)
	equal(t, "changed", changed, true)
	equal(t, "closed state", got.State, store.RequestClosed)
	equal(t, "closed at", got.ClosedAt, stored(closeAt))
	equal(t, "close reason", got.CloseReason, "closed")
	equal(t, "closed by", got.ClosedBy, "ann@example.com")
	got, changed, err = s.CloseSupportRequest(ctx, r.ID, "revoked", "device", closeAt.Add(time.Minute))
	ok(t, "close again", err)
	equal(t, "changed by a second close", changed, false)
	equal(t, "reason after a second close", got.CloseReason, "closed")
	sessionAt(t, s, d, ann, closeAt.Add(time.Minute))
	got, _ = s.GetSupportRequest(ctx, r.ID)
	equal(t, "sessions of the closed request", got.SessionIDs, []string{in1.ID, in2.ID})
	_, changed, err = s.ClaimSupportRequest(ctx, r.ID, ann.ID, ann.Email, closeAt)
	ok(t, "claim a closed request", err)
	equal(t, "a closed request claimed changes", changed, false)

	// An expired request cannot be claimed.
	old := mkRequest(t, s, d, "old")
	_, changed, err = s.ClaimSupportRequest(ctx, old.ID, ann.ID, ann.Email, t0.Add(time.Hour))
	ok(t, "claim an expired request", err)
	equal(t, "an expired request claimed changes", changed, false)
	if !old.Over(t0.Add(time.Hour)) || old.Over(t0.Add(time.Hour-time.Millisecond)) {
		t.Error("Over does not end at ExpiresAt")
	}

	for _, tt := range []struct {
		name string
		err  error
	}{
		{"Get", errOf(s.GetSupportRequest(ctx, "req_missing"))},
		{"Claim", errOf3(s.ClaimSupportRequest(ctx, "req_missing", ann.ID, ann.Email, t0))},
		{"Close", errOf3(s.CloseSupportRequest(ctx, "req_missing", "closed", "x", t0))},
		{"Create on a missing device", s.CreateSupportRequest(ctx,
			&store.SupportRequest{DeviceID: "dev_missing", Kind: store.RequestSupport, CreatedAt: t0, ExpiresAt: t0})},
	} {
		wantErr(t, tt.name, tt.err, store.ErrNotFound)
	}
}

// testApprovalRequests: an approval names a session of its own device,
// and a session has at most one.
func testApprovalRequests(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := mkFleet(t, s, "alpha")
	ann := mkUser(t, s, "ann@example.com")
	d1 := mustEnroll(t, s, mkEnrollmentToken(t, s, f.ID, 1).Hash, "dev1")
	d2 := mustEnroll(t, s, mkEnrollmentToken(t, s, f.ID, 1).Hash, "dev2")
	ses := sessionAt(t, s, d1, ann, t0)
	other := sessionAt(t, s, d2, ann, t0)

	r := &store.SupportRequest{DeviceID: d1.ID, Kind: store.RequestApproval, SessionID: ses.ID, Reason: "ticket 42",
		RequestedBy: ann.Email, CreatedAt: t0, ExpiresAt: t0.Add(5 * time.Minute)}
	ok(t, "CreateSupportRequest approval", s.CreateSupportRequest(ctx, r))
	equal(t, "session", r.SessionID, ses.ID)
	equal(t, "requested by", r.RequestedBy, ann.Email)
	equal(t, "sessions of the approval", r.SessionIDs, []string{ses.ID})

	dup := &store.SupportRequest{DeviceID: d1.ID, Kind: store.RequestApproval, SessionID: ses.ID, CreatedAt: t0, ExpiresAt: t0}
	wantErr(t, "a second approval of a session", s.CreateSupportRequest(ctx, dup), store.ErrConflict)
	// A device cannot ask about another device's session.
	theirs := &store.SupportRequest{DeviceID: d1.ID, Kind: store.RequestApproval, SessionID: other.ID, CreatedAt: t0, ExpiresAt: t0}
	wantErr(t, "an approval of another device's session", s.CreateSupportRequest(ctx, theirs), store.ErrNotFound)
	for _, bad := range []*store.SupportRequest{
		{DeviceID: d1.ID, Kind: store.RequestApproval, CreatedAt: t0, ExpiresAt: t0},
		{DeviceID: d1.ID, Kind: store.RequestSupport, SessionID: other.ID, CreatedAt: t0, ExpiresAt: t0},
		{DeviceID: d1.ID, Kind: "other", CreatedAt: t0, ExpiresAt: t0},
	} {
		if err := s.CreateSupportRequest(ctx, bad); err == nil {
			t.Errorf("CreateSupportRequest(kind %q, session %q): no error", bad.Kind, bad.SessionID)
		}
	}

	// The session's request is found by session; deleting the device
	// takes its requests along.
	rs, err := s.ListSupportRequests(ctx, store.SupportRequestFilter{SessionID: ses.ID})
	ok(t, "ListSupportRequests by session", err)
	if len(rs) != 1 || rs[0].ID != r.ID {
		t.Fatalf("requests of session %s: %s; want %s", ses.ID, show(rs), r.ID)
	}
	ok(t, "DeleteDevice", s.DeleteDevice(ctx, d1.ID))
	_, err = s.GetSupportRequest(ctx, r.ID)
	wantErr(t, "a deleted device's request", err, store.ErrNotFound)
}

func testSupportRequestFilter(t *testing.T, s store.Store) {
	ctx := t.Context()
	fa, fb := mkFleet(t, s, "alpha"), mkFleet(t, s, "beta")
	ann := mkUser(t, s, "ann@example.com")
	da := mustEnroll(t, s, mkEnrollmentToken(t, s, fa.ID, 1).Hash, "dev1")
	db := mustEnroll(t, s, mkEnrollmentToken(t, s, fb.ID, 1).Hash, "dev1")
	r1, r2, r3 := mkRequest(t, s, da, "one"), mkRequest(t, s, da, "two"), mkRequest(t, s, db, "three")
	short := &store.SupportRequest{DeviceID: db.ID, Kind: store.RequestSupport, CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}
	ok(t, "CreateSupportRequest", s.CreateSupportRequest(ctx, short))
	_, _, err := s.CloseSupportRequest(ctx, r2.ID, "revoked", "device", t0.Add(time.Second))
	ok(t, "close", err)
	_, _, err = s.ClaimSupportRequest(ctx, r3.ID, ann.ID, ann.Email, t0.Add(time.Second))
	ok(t, "claim", err)

	ids := func(f store.SupportRequestFilter) map[string]bool {
		rs, err := s.ListSupportRequests(ctx, f)
		ok(t, "ListSupportRequests", err)
		out := map[string]bool{}
		for _, r := range rs {
			out[r.ID] = true
		}
		return out
	}
	set := func(v ...string) map[string]bool {
		m := map[string]bool{}
		for _, x := range v {
			m[x] = true
		}
		return m
	}
	equal(t, "all", ids(store.SupportRequestFilter{}), set(r1.ID, r2.ID, r3.ID, short.ID))
	equal(t, "fleet alpha", ids(store.SupportRequestFilter{FleetIDs: []string{fa.ID}}), set(r1.ID, r2.ID))
	equal(t, "no fleets", len(ids(store.SupportRequestFilter{FleetIDs: []string{}})), 0)
	equal(t, "device", ids(store.SupportRequestFilter{DeviceID: db.ID}), set(r3.ID, short.ID))
	// Pending: neither closed nor expired; a claimed one still is.
	equal(t, "pending", ids(store.SupportRequestFilter{PendingAt: t0.Add(2 * time.Minute)}), set(r1.ID, r3.ID))
	equal(t, "pending before the short one expires", ids(store.SupportRequestFilter{PendingAt: t0.Add(time.Second)}),
		set(r1.ID, r3.ID, short.ID))
	equal(t, "limit", len(ids(store.SupportRequestFilter{Limit: 2})), 2)
}

func errOf3[T any](_ T, _ bool, err error) error { return err }
