package storetest

import (
	"testing"
	"time"

	"github.com/porthole/porthole/store"
)

// mkSession makes a requested session on d for u, created at t0.
func mkSession(t *testing.T, s store.Store, d *store.Device, u *store.User) *store.Session {
	t.Helper()
	ses := &store.Session{DeviceID: d.ID, UserID: u.ID, UserEmail: u.Email, PublicKey: "ssh-ed25519 AAAAengineer",
		Reason: "ticket 42", Ports: []int{22, 80}, IdleTimeout: 15 * time.Minute, MaxDuration: 2 * time.Hour, CreatedAt: t0}
	ok(t, "CreateSession", s.CreateSession(t.Context(), ses))
	return ses
}

func testSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := mkFleet(t, s, "alpha")
	u := mkUser(t, s, "ann@example.com")
	d := mustEnroll(t, s, mkEnrollmentToken(t, s, f.ID, 1).Hash, "dev1")

	ses := mkSession(t, s, d, u)
	wantPrefix(t, "session", ses.ID, "ses")
	want := store.Session{ID: ses.ID, FleetID: f.ID, FleetName: "alpha", DeviceID: d.ID, DeviceName: "dev1",
		UserID: u.ID, UserEmail: u.Email, State: store.SessionRequested, PublicKey: "ssh-ed25519 AAAAengineer",
		Reason: "ticket 42", Ports: []int{22, 80}, IdleTimeout: 15 * time.Minute, MaxDuration: 2 * time.Hour,
		CreatedAt: stored(t0)}
	equal(t, "created session", *ses, want)
	got, err := s.GetSession(ctx, ses.ID)
	ok(t, "GetSession", err)
	equal(t, "session", *got, want)

	// requested → connecting → active → closed, each time from the right state.
	at := t0.Add(time.Second)
	got, changed, err := s.TransitionSession(ctx, ses.ID, []store.SessionState{store.SessionRequested}, store.SessionConnecting, "", at)
	ok(t, "to connecting", err)
	equal(t, "changed", changed, true)
	equal(t, "state", got.State, store.SessionConnecting)
	got, changed, err = s.TransitionSession(ctx, ses.ID, []store.SessionState{store.SessionRequested}, store.SessionActive, "", at)
	ok(t, "to active from the wrong state", err)
	equal(t, "changed from the wrong state", changed, false)
	equal(t, "state after a refused move", got.State, store.SessionConnecting)
	got, _, err = s.TransitionSession(ctx, ses.ID, []store.SessionState{store.SessionConnecting}, store.SessionActive, "", at)
	ok(t, "to active", err)
	equal(t, "active at", got.ActiveAt, stored(at))

	ok(t, "TouchSessions", s.TouchSessions(ctx, []string{ses.ID}, at.Add(time.Minute)))
	ok(t, "TouchSessions back in time", s.TouchSessions(ctx, []string{ses.ID}, at))
	got, _ = s.GetSession(ctx, ses.ID)
	equal(t, "last activity never moves back", got.LastActivity, stored(at.Add(time.Minute)))

	// Two closers at once: one reason is recorded.
	closeAt := at.Add(time.Hour)
	results := race(4, func(i int) bool {
		reason := []string{"idle_timeout", "engineer_closed", "device_unreachable", "max_duration"}[i]
		_, changed, err := s.TransitionSession(ctx, ses.ID, store.OpenSessionStates, store.SessionClosed, reason, closeAt)
		ok(t, "close", err)
		return changed
	})
	equal(t, "sessions closed by four closers", trues(results), 1)
	got, _ = s.GetSession(ctx, ses.ID)
	equal(t, "closed state", got.State, store.SessionClosed)
	equal(t, "closed at", got.ClosedAt, stored(closeAt))
	if got.CloseReason == "" {
		t.Error("a closed session has no reason")
	}
	ok(t, "TouchSessions on a closed session", s.TouchSessions(ctx, []string{ses.ID}, closeAt.Add(time.Hour)))
	got, _ = s.GetSession(ctx, ses.ID)
	equal(t, "a closed session's activity", got.LastActivity, stored(at.Add(time.Minute)))

	_, _, err = s.TransitionSession(ctx, "ses_missing", store.OpenSessionStates, store.SessionClosed, "x", at)
	wantErr(t, "transition of a missing session", err, store.ErrNotFound)
	_, err = s.GetSession(ctx, "ses_missing")
	wantErr(t, "GetSession missing", err, store.ErrNotFound)
	err = s.CreateSession(ctx, &store.Session{DeviceID: "dev_missing", UserEmail: "x", PublicKey: "k"})
	wantErr(t, "a session on a missing device", err, store.ErrNotFound)
}

func testSessionFilter(t *testing.T, s store.Store) {
	ctx := t.Context()
	fa, fb := mkFleet(t, s, "alpha"), mkFleet(t, s, "beta")
	ann, bob := mkUser(t, s, "ann@example.com"), mkUser(t, s, "bob@example.com")
	da := mustEnroll(t, s, mkEnrollmentToken(t, s, fa.ID, 1).Hash, "dev1")
	db := mustEnroll(t, s, mkEnrollmentToken(t, s, fb.ID, 1).Hash, "dev1")
	s1, s2, s3 := mkSession(t, s, da, ann), mkSession(t, s, da, bob), mkSession(t, s, db, ann)
	_, _, err := s.TransitionSession(ctx, s2.ID, store.OpenSessionStates, store.SessionClosed, "engineer_closed", t0)
	ok(t, "close", err)
	ids := func(f store.SessionFilter) []string {
		ss, err := s.ListSessions(ctx, f)
		ok(t, "ListSessions", err)
		var out []string
		for _, x := range ss {
			out = append(out, x.ID)
		}
		return out
	}
	sorted := func(v ...string) map[string]bool {
		m := map[string]bool{}
		for _, x := range v {
			m[x] = true
		}
		return m
	}
	equal(t, "all", sorted(ids(store.SessionFilter{})...), sorted(s1.ID, s2.ID, s3.ID))
	equal(t, "fleet alpha", sorted(ids(store.SessionFilter{FleetIDs: []string{fa.ID}})...), sorted(s1.ID, s2.ID))
	equal(t, "no fleets", len(ids(store.SessionFilter{FleetIDs: []string{}})), 0)
	equal(t, "device", sorted(ids(store.SessionFilter{DeviceID: db.ID})...), sorted(s3.ID))
	equal(t, "user", sorted(ids(store.SessionFilter{UserID: bob.ID})...), sorted(s2.ID))
	equal(t, "user by email", sorted(ids(store.SessionFilter{UserEmail: bob.Email})...), sorted(s2.ID))
	equal(t, "open", sorted(ids(store.SessionFilter{OpenOnly: true})...), sorted(s1.ID, s3.ID))
	equal(t, "limit", len(ids(store.SessionFilter{Limit: 2})), 2)

	// A deleted user's sessions stay, with their email; a deleted device's go.
	ok(t, "DeleteUser", s.DeleteUser(ctx, bob.ID, ""))
	got, err := s.GetSession(ctx, s2.ID)
	ok(t, "GetSession after the user is deleted", err)
	equal(t, "user id", got.UserID, "")
	equal(t, "a deleted user's sessions by email", sorted(ids(store.SessionFilter{UserEmail: bob.Email})...), sorted(s2.ID))
	equal(t, "user email", got.UserEmail, "bob@example.com")
	ok(t, "DeleteDevice", s.DeleteDevice(ctx, db.ID))
	_, err = s.GetSession(ctx, s3.ID)
	wantErr(t, "a deleted device's session", err, store.ErrNotFound)
}

// testCloseDue: a close recorded with its device to be told is due until
// a node that sends the command clears it; of nodes claiming it at once
// one takes it, and another may again once the lease is over; a close
// whose device need not be told, and an open session, are never due.
func testCloseDue(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := mkFleet(t, s, "alpha")
	u := mkUser(t, s, "ann@example.com")
	d := mustEnroll(t, s, mkEnrollmentToken(t, s, f.ID, 1).Hash, "dev1")
	told, quiet, open := mkSession(t, s, d, u), mkSession(t, s, d, u), mkSession(t, s, d, u)

	closeAt := t0.Add(time.Minute)
	got, changed, err := s.CloseSession(ctx, told.ID, "relay_lost", closeAt, true)
	ok(t, "CloseSession", err)
	equal(t, "closed", changed, true)
	equal(t, "state", got.State, store.SessionClosed)
	equal(t, "reason", got.CloseReason, "relay_lost")
	equal(t, "close due", got.CloseDue, stored(closeAt))
	_, changed, err = s.CloseSession(ctx, told.ID, "engineer_closed", closeAt.Add(time.Second), true)
	ok(t, "CloseSession again", err)
	equal(t, "a closed session closed again", changed, false)
	got, _ = s.GetSession(ctx, told.ID)
	equal(t, "reason after a second close", got.CloseReason, "relay_lost")
	equal(t, "close due after a second close", got.CloseDue, stored(closeAt))
	_, _, err = s.CloseSession(ctx, quiet.ID, "device_closed", closeAt, false)
	ok(t, "CloseSession without telling", err)
	// A four-eyes session closed before its approval: its device was
	// never asked, so none is due, whatever the closer says.
	waiting := fourEyesSession(t, s, d, u)
	got, _, err = s.CloseSession(ctx, waiting.ID, "four_eyes_timeout", closeAt, true)
	ok(t, "CloseSession of a session waiting for approval", err)
	equal(t, "close due of a session never approved", got.CloseDue, time.Time{})

	due, err := s.ListSessions(ctx, store.SessionFilter{CloseDueBy: closeAt})
	ok(t, "ListSessions due", err)
	equal(t, "sessions due", ids(due), []string{told.ID})
	due, err = s.ListSessions(ctx, store.SessionFilter{CloseDueBy: closeAt.Add(-time.Millisecond)})
	ok(t, "ListSessions due earlier", err)
	equal(t, "sessions due before the close", len(due), 0)

	for _, id := range []string{quiet.ID, open.ID} {
		_, claimed, err := s.ClaimClose(ctx, id, closeAt, time.Minute)
		ok(t, "ClaimClose of nothing due", err)
		equal(t, "claimed with nothing due", claimed, false)
	}
	lease := 30 * time.Second
	results := race(4, func(int) bool {
		_, claimed, err := s.ClaimClose(ctx, told.ID, closeAt, lease)
		ok(t, "ClaimClose", err)
		return claimed
	})
	equal(t, "claims taken by four nodes at once", trues(results), 1)
	_, claimed, err := s.ClaimClose(ctx, told.ID, closeAt.Add(lease-time.Second), lease)
	ok(t, "ClaimClose within the lease", err)
	equal(t, "claimed within another's lease", claimed, false)
	got, claimed, err = s.ClaimClose(ctx, told.ID, closeAt.Add(lease), lease)
	ok(t, "ClaimClose after the lease", err)
	equal(t, "claimed after the lease", claimed, true)
	equal(t, "session claimed", got.ID, told.ID)

	ok(t, "CloseSent", s.CloseSent(ctx, told.ID))
	got, _ = s.GetSession(ctx, told.ID)
	equal(t, "close due once sent", got.CloseDue.IsZero(), true)
	_, claimed, err = s.ClaimClose(ctx, told.ID, closeAt.Add(time.Hour), lease)
	ok(t, "ClaimClose once sent", err)
	equal(t, "claimed once sent", claimed, false)
	_, claimed, err = s.ClaimClose(ctx, "ses_missing", closeAt, lease)
	ok(t, "ClaimClose of a missing session", err)
	equal(t, "claimed a missing session", claimed, false)
}

func ids(ss []*store.Session) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ID
	}
	return out
}
