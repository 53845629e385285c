package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/store"
)

// testFleetPolicy: a fleet's policy reads as the zero one until set, is
// set over the version read (a stale one is ErrConflict and writes
// nothing), keeps "no ports named" apart from "no port allowed", records
// its audit events with the fleet filled in, and goes with its fleet.
func testFleetPolicy(t *testing.T, s store.Store) {
	ctx := t.Context()
	f, g := mkFleet(t, s, "alpha"), mkFleet(t, s, "beta")

	p, err := s.GetFleetPolicy(ctx, f.ID)
	ok(t, "GetFleetPolicy of a fleet that set none", err)
	equal(t, "the zero policy", *p, store.FleetPolicy{FleetID: f.ID})
	_, err = s.GetFleetPolicy(ctx, "flt_missing")
	wantErr(t, "GetFleetPolicy of a missing fleet", err, store.ErrNotFound)

	set := &store.FleetPolicy{FleetID: f.ID, Ports: []int{22, 8080}, ConsentFloor: store.FloorApprove,
		MaxDuration: time.Hour, IdleTimeout: 10 * time.Minute, FourEyes: true, Reauth: 15 * time.Minute, UpdatedAt: t0, UpdatedBy: "ann@example.com"}
	ok(t, "SetFleetPolicy", s.SetFleetPolicy(with(ctx, ev("policy_changed", "1")), set))
	equal(t, "version after the first set", set.Version, int64(1))
	p, err = s.GetFleetPolicy(ctx, f.ID)
	ok(t, "GetFleetPolicy", err)
	equal(t, "policy", *p, store.FleetPolicy{FleetID: f.ID, Ports: []int{22, 8080}, ConsentFloor: store.FloorApprove,
		MaxDuration: time.Hour, IdleTimeout: 10 * time.Minute, FourEyes: true, Reauth: 15 * time.Minute, Version: 1, UpdatedAt: stored(t0), UpdatedBy: "ann@example.com"})
	other, err := s.GetFleetPolicy(ctx, g.ID)
	ok(t, "GetFleetPolicy of the other fleet", err)
	equal(t, "the other fleet's policy", *other, store.FleetPolicy{FleetID: g.ID})

	// Written over a version that is no longer the stored one: refused,
	// nothing written, no event recorded.
	stale := &store.FleetPolicy{FleetID: f.ID, Version: 0, UpdatedBy: "bob@example.com"}
	wantErr(t, "SetFleetPolicy over version 0 once set", s.SetFleetPolicy(with(ctx, ev("policy_changed", "stale")), stale), store.ErrConflict)
	stale.Version = 7
	wantErr(t, "SetFleetPolicy over a version never reached", s.SetFleetPolicy(with(ctx, ev("policy_changed", "stale")), stale), store.ErrConflict)
	p, _ = s.GetFleetPolicy(ctx, f.ID)
	equal(t, "policy after stale writes", p.Version, int64(1))

	// No ports allowed is not no ports named; everything off is the zero
	// policy again, at a new version.
	none := &store.FleetPolicy{FleetID: f.ID, Ports: []int{}, Version: 1, UpdatedAt: t0.Add(time.Minute), UpdatedBy: "ann@example.com"}
	ok(t, "SetFleetPolicy no ports", s.SetFleetPolicy(with(ctx, ev("policy_changed", "2")), none))
	p, _ = s.GetFleetPolicy(ctx, f.ID)
	if p.Ports == nil || len(p.Ports) != 0 {
		t.Errorf("ports after setting none allowed = %#v; want an empty list, not nil", p.Ports)
	}
	equal(t, "version", p.Version, int64(2))
	off := &store.FleetPolicy{FleetID: f.ID, Version: 2, UpdatedAt: t0.Add(2 * time.Minute), UpdatedBy: "ann@example.com"}
	ok(t, "SetFleetPolicy off", s.SetFleetPolicy(ctx, off))
	p, _ = s.GetFleetPolicy(ctx, f.ID)
	equal(t, "policy switched off", *p, store.FleetPolicy{FleetID: f.ID, Version: 3, UpdatedAt: stored(t0.Add(2 * time.Minute)), UpdatedBy: "ann@example.com"})

	wantErr(t, "SetFleetPolicy of a missing fleet", s.SetFleetPolicy(ctx, &store.FleetPolicy{FleetID: "flt_missing"}), store.ErrNotFound)
	wantErr(t, "SetFleetPolicy of a missing fleet at a version",
		s.SetFleetPolicy(ctx, &store.FleetPolicy{FleetID: "flt_missing", Version: 1}), store.ErrNotFound)

	// Two owners writing over the same version: one wins.
	results := race(4, func(i int) error {
		return s.SetFleetPolicy(ctx, &store.FleetPolicy{FleetID: g.ID, FourEyes: i%2 == 0, UpdatedBy: "racer"})
	})
	won := 0
	for _, err := range results {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("a racing SetFleetPolicy: %v; want nil or ErrConflict", err)
		}
	}
	equal(t, "racing writes over version 0 that won", won, 1)

	evs := auditLog(t, s)
	equal(t, "events", kinds(evs), []string{"policy_changed", "policy_changed"})
	for _, e := range evs {
		equal(t, "event's fleet", []string{e.FleetID, e.Fleet}, []string{f.ID, "alpha"})
	}

	ok(t, "DeleteFleet", s.DeleteFleet(ctx, f.ID))
	_, err = s.GetFleetPolicy(ctx, f.ID)
	wantErr(t, "the policy of a deleted fleet", err, store.ErrNotFound)
}

// testFourEyesSessions: a four-eyes session waits, requested, until a
// second engineer approves it: once, never by the engineer who asked, and
// never once it closed.
func testFourEyesSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := mkFleet(t, s, "alpha")
	ann, bob, cat := mkUser(t, s, "ann@example.com"), mkUser(t, s, "bob@example.com"), mkUser(t, s, "cat@example.com")
	dan := mkUser(t, s, "dan@example.com")
	for _, u := range []*store.User{ann, bob, cat, dan} {
		ok(t, "SetRole", s.SetRole(ctx, f.ID, u.ID, store.RoleOperator))
	}
	d := mustEnroll(t, s, mkEnrollmentToken(t, s, f.ID, 1).Hash, "dev1")
	fourEyes := func() *store.Session { return fourEyesSession(t, s, d, ann) }
	ses := fourEyes()
	if !ses.FourEyes || !ses.WaitsForApproval() || ses.State != store.SessionRequested {
		t.Fatalf("a new four-eyes session: %s; want it requested, waiting for approval", show(ses))
	}
	plain := sessionAt(t, s, d, ann, t0)
	if plain.FourEyes || plain.WaitsForApproval() {
		t.Errorf("a plain session waits for approval: %s", show(plain))
	}

	// The engineer who asked cannot approve it, by ID or by email.
	got, changed, err := s.ApproveSession(with(ctx, ev("four_eyes_approved", "self")), ses.ID, ann.ID, ann.Email, "", t0)
	ok(t, "ApproveSession by the requester", err)
	equal(t, "changed by the requester's approval", changed, false)
	equal(t, "state after the requester's approval", got.State, store.SessionRequested)
	_, changed, err = s.ApproveSession(ctx, ses.ID, dan.ID, ann.Email, "", t0)
	ok(t, "ApproveSession by the requester's email", err)
	equal(t, "changed by an approval under the requester's email", changed, false)

	// Only an administrator, or an operator or owner of the fleet, as the
	// approval is recorded: not an auditor, not one with no role, not one
	// deleted.
	eve, gus := mkUser(t, s, "eve@example.com"), mkUser(t, s, "gus@example.com")
	ok(t, "SetRole auditor", s.SetRole(ctx, f.ID, eve.ID, store.RoleAuditor))
	for _, u := range []*store.User{eve, gus, {ID: "usr_deleted", Email: "deleted@example.com"}} {
		_, _, err = s.ApproveSession(ctx, ses.ID, u.ID, u.Email, "", t0)
		wantErr(t, "ApproveSession by "+u.Email, err, store.ErrMayNotApprove)
	}
	equal(t, "state after refused approvals", reread(t, s, ses.ID).State, store.SessionRequested)

	// Two engineers approving at once: one approval.
	at := t0.Add(time.Minute)
	results := race(2, func(i int) bool {
		u := []*store.User{bob, cat}[i]
		_, changed, err := s.ApproveSession(with(ctx, ev("four_eyes_approved", u.Email)), ses.ID, u.ID, u.Email, `{"ports":[22]}`, at)
		ok(t, "ApproveSession", err)
		return changed
	})
	if results[0] == results[1] {
		t.Fatalf("approvals changed %v; want exactly one", results)
	}
	got, err = s.GetSession(ctx, ses.ID)
	ok(t, "GetSession", err)
	if got.State != store.SessionConnecting || got.WaitsForApproval() || got.ApprovedAt != stored(at) ||
		got.Policy != `{"ports":[22]}` || got.ApprovedEmail == "" || got.ApprovedEmail == ann.Email {
		t.Errorf("approved session: %s; want connecting, approved at %v by bob or cat, with the policy", show(got), stored(at))
	}
	approver := map[string]*store.User{bob.Email: bob, cat.Email: cat}[got.ApprovedEmail]
	if approver == nil || got.ApprovedBy != approver.ID {
		t.Errorf("approved by %q (%q)", got.ApprovedBy, got.ApprovedEmail)
	}

	// Nothing else can be approved: a plain session, a closed one.
	_, changed, err = s.ApproveSession(ctx, plain.ID, bob.ID, bob.Email, "", at)
	ok(t, "ApproveSession of a plain session", err)
	equal(t, "a plain session approved changes", changed, false)
	closed := fourEyes()
	_, _, err = s.TransitionSession(ctx, closed.ID, store.OpenSessionStates, store.SessionClosed, "four_eyes_timeout", at)
	ok(t, "close", err)
	got, changed, err = s.ApproveSession(ctx, closed.ID, bob.ID, bob.Email, "", at)
	ok(t, "ApproveSession of a closed session", err)
	equal(t, "a closed session approved changes", changed, false)
	equal(t, "a closed session's close reason after an approval", got.CloseReason, "four_eyes_timeout")
	_, _, err = s.ApproveSession(ctx, "ses_missing", bob.ID, bob.Email, "", at)
	wantErr(t, "ApproveSession of a missing session", err, store.ErrNotFound)

	// Only the approval that changed the session is in the log, with its
	// subject filled in.
	evs := auditLog(t, s)
	equal(t, "events", kinds(evs), []string{"four_eyes_approved"})
	equal(t, "event's subject", []string{evs[0].Fleet, evs[0].Device, evs[0].Session}, []string{"alpha", "dev1", ses.ID})
	equal(t, "the approver's event", evs[0].Detail["n"], reread(t, s, ses.ID).ApprovedEmail)

	// The approver's account goes; the record of who approved stays.
	ok(t, "DeleteUser", s.DeleteUser(ctx, approver.ID, ""))
	got = reread(t, s, ses.ID)
	equal(t, "approver after their deletion", []string{got.ApprovedBy, got.ApprovedEmail}, []string{"", approver.Email})
}

// testApprovalRacesRemoval: an approver whose role is taken away, or whose
// account is deleted, at the moment they approve either approves first,
// so the removal that follows finds the session they approved (the API
// then closes it), or is refused: never approved after the removal. The
// audit log, written in each change's transaction, has the order. An
// administrator approves with no role in the fleet.
func testApprovalRacesRemoval(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := mkFleet(t, s, "alpha")
	ann := mkUser(t, s, "ann@example.com")
	ok(t, "SetRole", s.SetRole(ctx, f.ID, ann.ID, store.RoleOperator))
	d := mustEnroll(t, s, mkEnrollmentToken(t, s, f.ID, 1).Hash, "dev1")
	fourEyes := func() *store.Session { return fourEyesSession(t, s, d, ann) }
	for i := range 10 {
		bob := mkUser(t, s, fmt.Sprintf("bob%d@example.com", i))
		ok(t, "SetRole", s.SetRole(ctx, f.ID, bob.ID, store.RoleOperator))
		ses := fourEyes()
		removal := "RemoveRole"
		remove := func() error {
			return s.RemoveRole(with(ctx, audit.Event{Kind: audit.RoleRemoved, Actor: audit.System, FleetID: f.ID}), f.ID, bob.ID)
		}
		if i%2 == 1 {
			removal = "DeleteUser"
			remove = func() error {
				return s.DeleteUser(with(ctx, audit.Event{Kind: audit.UserDeleted, Actor: audit.System}), bob.ID, "")
			}
		}
		errs := race(2, func(j int) error {
			if j == 0 {
				return remove()
			}
			_, _, err := s.ApproveSession(with(ctx, ev("four_eyes_approved", bob.Email)), ses.ID, bob.ID, bob.Email, "", t0)
			return err
		})
		ok(t, removal, errs[0])
		if errs[1] != nil && !errors.Is(errs[1], store.ErrMayNotApprove) {
			t.Fatalf("round %d: an approval racing %s failed with %v; want nil or ErrMayNotApprove", i, removal, errs[1])
		}
		approved, removed := -1, -1
		for n, e := range auditLog(t, s) {
			switch {
			case e.Kind == "four_eyes_approved" && e.Detail["n"] == bob.Email:
				approved = n
			case e.Kind == audit.RoleRemoved || e.Kind == audit.UserDeleted:
				removed = n
			}
		}
		got := reread(t, s, ses.ID)
		if errs[1] == nil && (approved < 0 || approved > removed || got.State != store.SessionConnecting) {
			t.Fatalf("round %d: approved (event %d, session %s) racing %s (event %d): want the approval first", i, approved, show(got), removal, removed)
		}
		if errs[1] != nil && (approved >= 0 || got.State != store.SessionRequested) {
			t.Fatalf("round %d: a refused approval left event %d, session %s", i, approved, show(got))
		}
	}
	root := &store.User{Email: "root@example.com", PasswordHash: "x", TOTPSecret: "y", Admin: true}
	ok(t, "CreateUser admin", s.CreateUser(ctx, root))
	_, changed, err := s.ApproveSession(ctx, fourEyes().ID, root.ID, root.Email, "", t0)
	ok(t, "ApproveSession by an administrator", err)
	equal(t, "an administrator's approval changed", changed, true)
}

// fourEyesSession stores a session of u on d that waits for a second
// engineer's approval.
func fourEyesSession(t *testing.T, s store.Store, d *store.Device, u *store.User) *store.Session {
	t.Helper()
	ses := &store.Session{DeviceID: d.ID, UserID: u.ID, UserEmail: u.Email, PublicKey: "ssh-ed25519 AAAAengineer",
		Ports: []int{22}, IdleTimeout: time.Minute, MaxDuration: time.Hour, CreatedAt: t0, FourEyes: true}
	ok(t, "CreateSession four-eyes", s.CreateSession(t.Context(), ses))
	return ses
}

// reread returns the session with ID id as the store has it now.
func reread(t *testing.T, s store.Store, id string) *store.Session {
	t.Helper()
	ses, err := s.GetSession(t.Context(), id)
	ok(t, "GetSession", err)
	return ses
}

// testFourEyesRequests: a session may have its owner's approval request
// and a four-eyes request, one of each; the queue tells them apart.
func testFourEyesRequests(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := mkFleet(t, s, "alpha")
	ann := mkUser(t, s, "ann@example.com")
	d := mustEnroll(t, s, mkEnrollmentToken(t, s, f.ID, 1).Hash, "dev1")
	ses := sessionAt(t, s, d, ann, t0)

	four := &store.SupportRequest{DeviceID: d.ID, Kind: store.RequestFourEyes, SessionID: ses.ID, Reason: "ticket 7",
		RequestedBy: ann.Email, CreatedAt: t0, ExpiresAt: t0.Add(10 * time.Minute)}
	ok(t, "CreateSupportRequest four_eyes", s.CreateSupportRequest(ctx, four))
	equal(t, "kind", four.Kind, store.RequestFourEyes)
	equal(t, "sessions of the four-eyes request", four.SessionIDs, []string{ses.ID})
	owners := &store.SupportRequest{DeviceID: d.ID, Kind: store.RequestApproval, SessionID: ses.ID, RequestedBy: ann.Email,
		CreatedAt: t0.Add(time.Minute), ExpiresAt: t0.Add(6 * time.Minute)}
	ok(t, "CreateSupportRequest approval of the same session", s.CreateSupportRequest(ctx, owners))
	dup := &store.SupportRequest{DeviceID: d.ID, Kind: store.RequestFourEyes, SessionID: ses.ID, CreatedAt: t0, ExpiresAt: t0}
	wantErr(t, "a second four-eyes request of a session", s.CreateSupportRequest(ctx, dup), store.ErrConflict)
	if err := s.CreateSupportRequest(ctx, &store.SupportRequest{DeviceID: d.ID, Kind: store.RequestFourEyes, CreatedAt: t0, ExpiresAt: t0}); err == nil {
		t.Error("a four-eyes request without a session was created")
	}

	for _, tt := range []struct {
		kind store.SupportRequestKind
		want []string
	}{
		{store.RequestFourEyes, []string{four.ID}},
		{store.RequestApproval, []string{owners.ID}},
		{"", []string{owners.ID, four.ID}},
	} {
		rs, err := s.ListSupportRequests(ctx, store.SupportRequestFilter{SessionID: ses.ID, Kind: tt.kind})
		ok(t, "ListSupportRequests", err)
		ids := []string{}
		for _, r := range rs {
			ids = append(ids, r.ID)
		}
		equal(t, "requests of kind "+string(tt.kind), ids, tt.want)
	}
	got, changed, err := s.CloseSupportRequest(ctx, four.ID, "approved", "bob@example.com", t0.Add(2*time.Minute))
	ok(t, "close the four-eyes request", err)
	equal(t, "closed", []any{changed, got.State, got.CloseReason, got.ClosedBy}, []any{true, store.RequestClosed, "approved", "bob@example.com"})
}
