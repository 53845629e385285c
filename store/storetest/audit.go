package storetest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/store"
)

// ev is an event of kind by the system, with one detail.
func ev(kind audit.Kind, detail string) audit.Event {
	return audit.Event{Kind: kind, Actor: audit.System, Detail: map[string]string{"n": detail}}
}

// with returns ctx carrying evs for the next write.
func with(ctx context.Context, evs ...audit.Event) context.Context {
	return store.WithAudit(ctx, evs...)
}

// auditLog lists every event, oldest first.
func auditLog(t *testing.T, s store.Store) []audit.Event {
	t.Helper()
	evs, err := s.ListAudit(t.Context(), store.AuditFilter{Limit: 100000})
	ok(t, "ListAudit", err)
	return evs
}

func kinds(evs []audit.Event) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, string(e.Kind))
	}
	return out
}

// verifyOK checks that the chain verifies with n events.
func verifyOK(t *testing.T, s store.Store, n int64) *audit.Report {
	t.Helper()
	r, err := audit.Verify(t.Context(), s, audit.Head{})
	ok(t, "Verify", err)
	if !r.OK() || r.Count != n {
		t.Fatalf("Verify: %d events, problem %+v; want %d events and no problem", r.Count, r.Problem, n)
	}
	return r
}

// testAuditAppend: events with no change get sequence numbers from 1, the
// time of the write when they have none, and a chain that verifies.
func testAuditAppend(t *testing.T, s store.Store) {
	ctx := t.Context()
	verifyOK(t, s, 0)
	ok(t, "AppendAudit nothing", s.AppendAudit(ctx))
	at := t0.Add(time.Minute)
	failed := audit.Event{Time: at, Kind: audit.LoginFailed, Actor: audit.Anonymous("mallory@example.com"),
		Detail: map[string]string{"reason": "bad_password", "remote": "192.0.2.7", "empty": ""}}
	before := time.Now().Add(-time.Second)
	ok(t, "AppendAudit", s.AppendAudit(ctx, failed, ev(audit.RelayRefused, "1")))
	ok(t, "AppendAudit with the context's events", s.AppendAudit(with(ctx, ev(audit.RelayRefused, "2")), ev(audit.RelayRefused, "3")))

	evs := auditLog(t, s)
	equal(t, "kinds", kinds(evs), []string{"login_failed", "relay_refused", "relay_refused", "relay_refused"})
	equal(t, "details in order", []string{evs[1].Detail["n"], evs[2].Detail["n"], evs[3].Detail["n"]}, []string{"1", "2", "3"})
	first := evs[0]
	equal(t, "seq", first.Seq, int64(1))
	equal(t, "time", first.Time, stored(at))
	equal(t, "actor", first.Actor, audit.Anonymous("mallory@example.com"))
	equal(t, "detail (empty values dropped)", first.Detail, map[string]string{"reason": "bad_password", "remote": "192.0.2.7"})
	equal(t, "first prev hash", first.PrevHash, audit.Genesis)
	equal(t, "hash", first.Hash, first.ComputeHash())
	if evs[1].Time.Before(before) || evs[1].Time.After(time.Now().Add(time.Second)) {
		t.Errorf("an event without a time got %v; want the time of the write", evs[1].Time)
	}
	for i := 1; i < len(evs); i++ {
		equal(t, fmt.Sprintf("event %d's prev hash", evs[i].Seq), evs[i].PrevHash, evs[i-1].Hash)
		equal(t, "seq", evs[i].Seq, int64(i+1))
	}
	r := verifyOK(t, s, 4)
	head, err := s.AuditHead(ctx)
	ok(t, "AuditHead", err)
	equal(t, "head", head, audit.Head{Seq: 4, Hash: evs[3].Hash})
	equal(t, "report head", r.Head, head)

	err = s.AppendAudit(ctx, audit.Event{Kind: "Not A Kind", Actor: audit.System})
	wantErr(t, "an invalid event", err, audit.ErrInvalid)
	verifyOK(t, s, 4)
}

// testAuditWithChanges: every audited write records the events its context
// carries in its transaction, completed with what it wrote; writes that
// keep times fresh record none.
func testAuditWithChanges(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := &store.Fleet{Name: "alpha"}
	ok(t, "CreateFleet", s.CreateFleet(with(ctx, ev(audit.FleetCreated, "")), f))
	u := &store.User{Email: "ann@example.com", PasswordHash: "x", TOTPSecret: "x"}
	ok(t, "CreateUser", s.CreateUser(with(ctx, ev(audit.UserCreated, "")), u))
	ok(t, "SetRole", s.SetRole(with(ctx, ev(audit.RoleChanged, "")), f.ID, u.ID, store.RoleOperator))
	tok := &store.Token{UserID: u.ID, Hash: randomHex(32), Name: "login"}
	ok(t, "CreateToken", s.CreateToken(with(ctx, ev(audit.LoginSucceeded, "")), tok))
	et := &store.EnrollmentToken{FleetID: f.ID, Hash: randomHex(32), UsesLeft: 3, MaxUses: 3}
	ok(t, "CreateEnrollmentToken", s.CreateEnrollmentToken(with(ctx, ev(audit.EnrollmentTokenCreated, "")), et))

	d := &store.Device{Name: "dev1", PublicKey: "ssh-ed25519 AAAAdev1"}
	ok(t, "EnrollDevice", s.EnrollDevice(with(ctx, ev(audit.DeviceEnrolled, "")), et.Hash, t0, d,
		func(f *store.Fleet) (string, error) { return certFor(f, "dev1"), nil }))
	ok(t, "SetDeviceLabels", s.SetDeviceLabels(with(ctx, ev(audit.LabelsChanged, "")), d.ID, map[string]string{"a": "b"}))
	ses := &store.Session{DeviceID: d.ID, UserID: u.ID, UserEmail: u.Email, PublicKey: "k", IdleTimeout: time.Minute, MaxDuration: time.Hour}
	ok(t, "CreateSession", s.CreateSession(with(ctx, ev(audit.SessionRequested, "")), ses))
	_, changed, err := s.TransitionSession(with(ctx, ev(audit.SessionActive, "")), ses.ID,
		[]store.SessionState{store.SessionRequested}, store.SessionActive, "", t0)
	ok(t, "TransitionSession", err)
	equal(t, "changed", changed, true)

	// Writes that only keep times fresh ignore the context's events.
	quiet := with(ctx, ev("not_recorded", ""))
	ok(t, "TouchToken", s.TouchToken(quiet, tok.ID, t0))
	ok(t, "TouchSessions", s.TouchSessions(quiet, []string{ses.ID}, t0))
	ok(t, "SetDevicePresence", s.SetDevicePresence(quiet, store.DevicePresence{DeviceID: d.ID, Online: true, At: t0}))
	ok(t, "TouchDevicesSeen", s.TouchDevicesSeen(quiet, []string{d.ID}, t0.Add(time.Second)))
	ok(t, "AdvanceTOTPStep", errOf(s.AdvanceTOTPStep(quiet, u.ID, 7)))
	ok(t, "MarkAllOffline", errOf(s.MarkAllOffline(quiet)))

	ok(t, "DeleteToken", s.DeleteToken(with(ctx, ev(audit.TokenRevoked, "")), u.ID, tok.ID))
	ok(t, "DeleteEnrollmentToken", s.DeleteEnrollmentToken(with(ctx, ev(audit.EnrollmentTokenDeleted, "")), f.ID, et.ID))
	ok(t, "RemoveRole", s.RemoveRole(with(ctx, ev(audit.RoleRemoved, "")), f.ID, u.ID))
	ok(t, "DeleteDevice", s.DeleteDevice(with(ctx, ev(audit.DeviceDeleted, "")), d.ID))
	ok(t, "DeleteUser", s.DeleteUser(with(ctx, ev("user_deleted", "")), u.ID, ""))
	ok(t, "DeleteFleet", s.DeleteFleet(with(ctx, ev("fleet_deleted", ""), ev("second_event", "")), f.ID))

	evs := auditLog(t, s)
	equal(t, "kinds", kinds(evs), []string{"fleet_created", "user_created", "role_changed", "login_succeeded",
		"enrollment_token_created", "device_enrolled", "labels_changed", "session_requested", "session_active",
		"token_revoked", "enrollment_token_deleted", "role_removed", "device_deleted", "user_deleted", "fleet_deleted", "second_event"})
	byKind := map[audit.Kind]audit.Event{}
	for _, e := range evs {
		byKind[e.Kind] = e
	}
	// The store filled in what only it knew.
	enrolled := byKind[audit.DeviceEnrolled]
	equal(t, "enrolled subject", []string{enrolled.FleetID, enrolled.Fleet, enrolled.DeviceID, enrolled.Device, enrolled.Session},
		[]string{f.ID, "alpha", d.ID, "dev1", ""})
	for _, k := range []audit.Kind{audit.SessionRequested, audit.SessionActive} {
		e := byKind[k]
		equal(t, string(k)+" subject", []string{e.FleetID, e.Fleet, e.DeviceID, e.Device, e.Session},
			[]string{f.ID, "alpha", d.ID, "dev1", ses.ID})
	}
	if e := byKind[audit.FleetCreated]; e.FleetID != "" || e.Session != "" {
		t.Errorf("an event the caller left without a subject got %+v", e)
	}
	verifyOK(t, s, int64(len(evs)))
}

// testAuditRollback: a change that fails, or changes nothing, records no
// event; an event that cannot be recorded undoes its change.
func testAuditRollback(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := mkFleet(t, s, "alpha")
	u := mkUser(t, s, "ann@example.com")
	et := mkEnrollmentToken(t, s, f.ID, 2)
	d := mustEnroll(t, s, et.Hash, "dev1")
	ses := mkSession(t, s, d, u)
	lost := func(what string) context.Context { return with(ctx, ev("lost", what)) }

	wantErr(t, "CreateFleet with a taken name", s.CreateFleet(lost("fleet"), &store.Fleet{Name: "alpha"}), store.ErrConflict)
	wantErr(t, "CreateUser with a taken email", s.CreateUser(lost("user"), &store.User{Email: "ann@example.com"}), store.ErrConflict)
	wantErr(t, "DeleteDevice of a missing device", s.DeleteDevice(lost("device"), "dev_missing"), store.ErrNotFound)
	wantErr(t, "SetRole in a missing fleet", s.SetRole(lost("role"), "flt_missing", u.ID, store.RoleOwner), store.ErrNotFound)
	wantErr(t, "CreateSession on a missing device", s.CreateSession(lost("session"),
		&store.Session{DeviceID: "dev_missing", UserEmail: "x", PublicKey: "k"}), store.ErrNotFound)
	_, err := enroll(lost("name taken"), s, et.Hash, "dev1")
	wantErr(t, "EnrollDevice with a taken name", err, store.ErrConflict)
	err = s.EnrollDevice(lost("cert"), et.Hash, t0, &store.Device{Name: "dev2", PublicKey: "k"},
		func(*store.Fleet) (string, error) { return "", errors.New("the CA is away") })
	if err == nil {
		t.Fatal("EnrollDevice with a failing certificate succeeded")
	}
	_, changed, err := s.TransitionSession(lost("no change"), ses.ID, []store.SessionState{store.SessionActive},
		store.SessionClosed, "idle_timeout", t0)
	ok(t, "TransitionSession from a state it is not in", err)
	equal(t, "changed", changed, false)
	equal(t, "events after failed changes", kinds(auditLog(t, s)), []string{})

	// The other way round: a change whose event cannot be recorded is
	// undone with it.
	err = s.CreateFleet(with(ctx, audit.Event{Kind: "Bad Kind", Actor: audit.System}), &store.Fleet{Name: "beta"})
	wantErr(t, "CreateFleet with an invalid event", err, audit.ErrInvalid)
	wantErr(t, "the fleet whose event failed", errOf(s.GetFleetByName(ctx, "beta")), store.ErrNotFound)
	err = s.DeleteDevice(with(ctx, audit.Event{Kind: audit.DeviceDeleted}), d.ID) // no actor
	wantErr(t, "DeleteDevice with an invalid event", err, audit.ErrInvalid)
	ok(t, "the device whose deletion's event failed", errOf(s.GetDevice(ctx, d.ID)))
	_, _, err = s.TransitionSession(with(ctx, audit.Event{Kind: audit.SessionClosed}), ses.ID, store.OpenSessionStates,
		store.SessionClosed, "engineer_closed", t0)
	wantErr(t, "TransitionSession with an invalid event", err, audit.ErrInvalid)
	got, err := s.GetSession(ctx, ses.ID)
	ok(t, "GetSession", err)
	equal(t, "state of the session whose close's event failed", got.State, store.SessionRequested)
	equal(t, "uses left after failed enrollments", usesLeft(t, s, f.ID, et.ID), 1)
	verifyOK(t, s, 0)
}

// testAuditConcurrent: appends with changes and without, from many
// goroutines at once, make one unbroken chain with every event in it.
func testAuditConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	const workers, each = 8, 6
	errs := race(workers, func(w int) error {
		for i := range each {
			var err error
			switch i % 3 {
			case 0:
				err = s.AppendAudit(ctx, ev(audit.RelayRefused, fmt.Sprintf("%d/%d", w, i)))
			case 1:
				err = s.CreateFleet(with(ctx, ev(audit.FleetCreated, fmt.Sprintf("%d/%d", w, i))),
					&store.Fleet{Name: fmt.Sprintf("f-%d-%d", w, i)})
			case 2:
				// Two events with one change, and one with none.
				err = s.AppendAudit(with(ctx, ev(audit.LoginFailed, fmt.Sprintf("%d/%d", w, i))), ev(audit.LoginFailed, fmt.Sprintf("%d/%d+", w, i)))
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	for _, err := range errs {
		ok(t, "append at once", err)
	}
	want := workers * (each/3*1 + each/3*1 + each/3*2)
	evs := auditLog(t, s)
	equal(t, "events", len(evs), want)
	seen := map[string]bool{}
	for i, e := range evs {
		equal(t, "seq", e.Seq, int64(i+1))
		if seen[string(e.Kind)+e.Detail["n"]] {
			t.Errorf("event %s %s recorded twice", e.Kind, e.Detail["n"])
		}
		seen[string(e.Kind)+e.Detail["n"]] = true
	}
	verifyOK(t, s, int64(want))
}

// testAuditFilter: ListAudit by fleet, device, session, time and sequence
// number, first or latest.
func testAuditFilter(t *testing.T, s store.Store) {
	ctx := t.Context()
	fa, fb := mkFleet(t, s, "alpha"), mkFleet(t, s, "beta")
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
	evs := []audit.Event{
		{Time: at(0), Kind: audit.LoginSucceeded, Actor: audit.System},
		{Time: at(1), Kind: audit.DeviceEnrolled, Actor: audit.System, FleetID: fa.ID, Fleet: "alpha", Device: "dev1"},
		{Time: at(2), Kind: audit.SessionRequested, Actor: audit.System, FleetID: fa.ID, Fleet: "alpha", Device: "dev1", Session: "ses_1"},
		{Time: at(3), Kind: audit.SessionClosed, Actor: audit.System, FleetID: fa.ID, Fleet: "alpha", Device: "dev1", Session: "ses_1"},
		{Time: at(4), Kind: audit.DeviceEnrolled, Actor: audit.System, FleetID: fb.ID, Fleet: "beta", Device: "dev1"},
		{Time: at(5), Kind: audit.DeviceEnrolled, Actor: audit.System, FleetID: fa.ID, Fleet: "alpha", Device: "dev2"},
	}
	ok(t, "AppendAudit", s.AppendAudit(ctx, evs...))
	seqs := func(f store.AuditFilter) []int64 {
		t.Helper()
		got, err := s.ListAudit(ctx, f)
		ok(t, "ListAudit", err)
		out := []int64{}
		for _, e := range got {
			out = append(out, e.Seq)
		}
		return out
	}
	for _, tt := range []struct {
		name string
		f    store.AuditFilter
		want []int64
	}{
		{"all", store.AuditFilter{}, []int64{1, 2, 3, 4, 5, 6}},
		{"no fleets", store.AuditFilter{FleetIDs: []string{}}, []int64{}},
		{"alpha", store.AuditFilter{FleetIDs: []string{fa.ID}}, []int64{2, 3, 4, 6}},
		{"alpha and beta", store.AuditFilter{FleetIDs: []string{fa.ID, fb.ID}}, []int64{2, 3, 4, 5, 6}},
		{"dev1 of alpha", store.AuditFilter{FleetIDs: []string{fa.ID}, Device: "dev1"}, []int64{2, 3, 4}},
		{"session", store.AuditFilter{Session: "ses_1"}, []int64{3, 4}},
		{"since", store.AuditFilter{Since: at(4)}, []int64{5, 6}},
		{"after", store.AuditFilter{After: 4}, []int64{5, 6}},
		{"limit", store.AuditFilter{Limit: 2}, []int64{1, 2}},
		{"latest", store.AuditFilter{Limit: 2, Latest: true}, []int64{5, 6}},
		{"latest of alpha", store.AuditFilter{FleetIDs: []string{fa.ID}, Limit: 3, Latest: true}, []int64{3, 4, 6}},
		{"before", store.AuditFilter{Before: 3}, []int64{1, 2}},
		{"older page", store.AuditFilter{Before: 5, Limit: 2, Latest: true}, []int64{3, 4}},
		{"older page of alpha", store.AuditFilter{FleetIDs: []string{fa.ID}, Before: 6, Limit: 2, Latest: true}, []int64{3, 4}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			equal(t, "seqs", seqs(tt.f), tt.want)
		})
	}
}

// testAuditFillByName: an event naming a fleet, or a device of it, by name
// only gets their IDs, when they exist.
func testAuditFillByName(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := mkFleet(t, s, "alpha")
	d := mustEnroll(t, s, mkEnrollmentToken(t, s, f.ID, 1).Hash, "dev1")
	ok(t, "AppendAudit", s.AppendAudit(ctx,
		audit.Event{Kind: audit.RelayRefused, Actor: audit.Anonymous("x"), Fleet: "alpha", Device: "dev1"},
		audit.Event{Kind: audit.RelayRefused, Actor: audit.Anonymous("x"), Fleet: "alpha", Device: "ghost"},
		audit.Event{Kind: audit.RelayRefused, Actor: audit.Anonymous("x"), Fleet: "nowhere", Device: "dev1"}))
	evs := auditLog(t, s)
	equal(t, "known device", []string{evs[0].FleetID, evs[0].DeviceID}, []string{f.ID, d.ID})
	equal(t, "unknown device of a known fleet", []string{evs[1].FleetID, evs[1].DeviceID}, []string{f.ID, ""})
	equal(t, "unknown fleet", []string{evs[2].FleetID, evs[2].DeviceID}, []string{"", ""})
	verifyOK(t, s, 3)
}

// rawDB is what the tamper test needs of a store: its database, to edit
// behind its back.
type rawDB interface{ DB() *sql.DB }

// testAuditTamper edits, inserts and deletes audit rows with SQL behind
// the store's back, and checks that Verify finds each, where it happened
// and what it looks like. Each case starts from the same sound chain of
// ten events, restored from a copy.
func testAuditTamper(t *testing.T, s store.Store) {
	raw, isRaw := s.(rawDB)
	if !isRaw {
		t.Fatalf("%T does not give its database (DB() *sql.DB) for the tamper test", s)
	}
	db := raw.DB()
	ctx := t.Context()
	f := mkFleet(t, s, "alpha")
	u := mkUser(t, s, "ann@example.com")
	d := mustEnroll(t, s, mkEnrollmentToken(t, s, f.ID, 1).Hash, "dev1")
	for i := range 4 {
		ses := &store.Session{DeviceID: d.ID, UserID: u.ID, UserEmail: u.Email, PublicKey: "k", IdleTimeout: time.Minute, MaxDuration: time.Hour}
		ok(t, "CreateSession", s.CreateSession(with(ctx, audit.Event{Kind: audit.SessionRequested, Actor: audit.User(u.ID, u.Email)}), ses))
		ok(t, "AppendAudit", s.AppendAudit(ctx, audit.Event{Kind: audit.LoginFailed, Actor: audit.Anonymous("m@example.com"),
			Detail: map[string]string{"try": fmt.Sprint(i)}}))
	}
	ok(t, "AppendAudit", s.AppendAudit(ctx, ev(audit.RelayRefused, "9"), ev(audit.RelayRefused, "10")))
	sound := verifyOK(t, s, 10)
	run := func(query string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, query, args...); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
	run(`CREATE TABLE audit_copy AS SELECT * FROM audit_events`)
	restore := func() {
		run(`DELETE FROM audit_events`)
		run(`INSERT INTO audit_events SELECT * FROM audit_copy`)
		run(`DELETE FROM audit_head`)
		run(`INSERT INTO audit_head (id, seq, hash) VALUES (1, $1, $2)`, sound.Head.Seq, sound.Head.Hash)
	}
	hashOf := func(seq int) string {
		var h string
		if err := db.QueryRowContext(ctx, `SELECT hash FROM audit_events WHERE seq = $1`, seq).Scan(&h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	// insert adds a plausible event with sequence number seq after prev,
	// its hash computed as the store would.
	insert := func(seq int64, prev string) string {
		e := audit.Event{Time: t0, Kind: audit.LoginSucceeded, Actor: audit.User(u.ID, "mallory@example.com")}
		e.Seal(audit.Head{Seq: seq - 1, Hash: prev})
		run(`INSERT INTO audit_events (seq, at, kind, actor_kind, actor_id, actor_name, prev_hash, hash)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, e.Seq, e.Time.UnixMilli(), string(e.Kind), string(e.Actor.Kind),
			e.Actor.ID, e.Actor.Name, e.PrevHash, e.Hash)
		return e.Hash
	}
	// renumber adds by to the sequence numbers from seq on, in two steps,
	// so that no two rows hold one number in between.
	renumber := func(from, by int) {
		run(`UPDATE audit_events SET seq = -seq WHERE seq >= $1`, from)
		run(`UPDATE audit_events SET seq = -seq + $1 WHERE seq < 0`, by)
	}
	for _, tt := range []struct {
		name   string
		tamper func()
		anchor audit.Head
		kind   audit.ProblemKind
		seq    int64
	}{
		{"edited the actor", func() { run(`UPDATE audit_events SET actor_name = 'someone-else@example.com' WHERE seq = 2`) }, audit.Head{}, audit.ProblemEdited, 2},
		{"edited a detail", func() { run(`UPDATE audit_events SET detail = '{"try":"9"}' WHERE seq = 4`) }, audit.Head{}, audit.ProblemEdited, 4},
		{"edited the time", func() { run(`UPDATE audit_events SET at = at - 3600000 WHERE seq = 10`) }, audit.Head{}, audit.ProblemEdited, 10},
		{"edited the kind", func() { run(`UPDATE audit_events SET kind = 'login_succeeded' WHERE seq = 5`) }, audit.Head{}, audit.ProblemEdited, 5},
		{"edited the session", func() { run(`UPDATE audit_events SET session_id = 'ses_other' WHERE seq = 3`) }, audit.Head{}, audit.ProblemEdited, 3},
		{"deleted one", func() { run(`DELETE FROM audit_events WHERE seq = 6`) }, audit.Head{}, audit.ProblemMissing, 6},
		{"deleted the first", func() { run(`DELETE FROM audit_events WHERE seq = 1`) }, audit.Head{}, audit.ProblemMissing, 1},
		{"deleted one and renumbered", func() {
			run(`DELETE FROM audit_events WHERE seq = 6`)
			renumber(7, -1)
			run(`UPDATE audit_head SET seq = 9`)
		}, audit.Head{}, audit.ProblemBrokenLink, 6},
		{"deleted the last", func() { run(`DELETE FROM audit_events WHERE seq >= 9`) }, audit.Head{}, audit.ProblemTruncated, 9},
		{"deleted the last and the head moved back", func() {
			run(`DELETE FROM audit_events WHERE seq = 10`)
			run(`UPDATE audit_head SET seq = 9, hash = $1`, hashOf(9))
		}, sound.Head, audit.ProblemAnchor, 10},
		{"inserted beyond the head", func() { insert(11, sound.Head.Hash) }, audit.Head{}, audit.ProblemInserted, 11},
		{"inserted before the first", func() { insert(0, audit.Genesis) }, audit.Head{}, audit.ProblemInserted, 0},
		{"inserted at the end, head moved", func() {
			h := insert(11, strings.Repeat("0", 64))
			run(`UPDATE audit_head SET seq = 11, hash = $1`, h)
		}, audit.Head{}, audit.ProblemBrokenLink, 11},
		{"inserted in the middle, renumbered", func() {
			renumber(4, 1)
			insert(4, hashOf(3))
			run(`UPDATE audit_head SET seq = 11`)
		}, audit.Head{}, audit.ProblemBrokenLink, 5},
		{"head edited", func() { run(`UPDATE audit_head SET hash = $1`, strings.Repeat("e", 64)) }, audit.Head{}, audit.ProblemHead, 10},
		{"head deleted", func() { run(`DELETE FROM audit_head`) }, audit.Head{}, audit.ProblemHead, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.tamper()
			r, err := audit.Verify(ctx, s, tt.anchor)
			ok(t, "Verify", err)
			if r.OK() {
				t.Fatalf("Verify found nothing wrong after the chain was tampered with (%d events)", r.Count)
			}
			if r.Problem.Kind != tt.kind || r.Problem.Seq != tt.seq {
				t.Errorf("problem %s at %d (%s); want %s at %d", r.Problem.Kind, r.Problem.Seq, r.Problem.Message, tt.kind, tt.seq)
			}
			restore()
			verifyOK(t, s, 10)
		})
	}

	// Without its head, the store refuses audited changes rather than
	// make them unrecorded.
	run(`DELETE FROM audit_head`)
	err := s.CreateFleet(with(ctx, ev(audit.FleetCreated, "")), &store.Fleet{Name: "beta"})
	wantErr(t, "an audited change without the chain's head", err, audit.ErrNoHead)
	wantErr(t, "the change refused", errOf(s.GetFleetByName(ctx, "beta")), store.ErrNotFound)
	restore()
	ok(t, "an audited change once the head is back", s.CreateFleet(with(ctx, ev(audit.FleetCreated, "")), &store.Fleet{Name: "beta"}))
	verifyOK(t, s, 11)
	if slices.ContainsFunc(auditLog(t, s), func(e audit.Event) bool { return e.Seq > 11 }) {
		t.Error("events beyond 11")
	}
}
