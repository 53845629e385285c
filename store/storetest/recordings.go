package storetest

import (
	"testing"
	"time"

	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/store"
)

// testRecordings: files are counted as they grow, the same size again
// changes nothing, completing is recorded once with its event, and a file
// that grows again reopens the recording.
func testRecordings(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := mkFleet(t, s, "alpha")
	ann := mkUser(t, s, "ann@example.com")
	d := mustEnroll(t, s, mkEnrollmentToken(t, s, f.ID, 1).Hash, "dev1")
	ses := sessionAt(t, s, d, ann, t0)

	_, err := s.GetRecording(ctx, ses.ID)
	wantErr(t, "GetRecording before any upload", err, store.ErrNotFound)
	wantErr(t, "PutRecordingFile of a missing session", s.PutRecordingFile(ctx, "ses_nosuch", "meta.json", 10, t0), store.ErrNotFound)
	_, _, err = s.CompleteRecording(ctx, ses.ID, t0)
	wantErr(t, "CompleteRecording before any upload", err, store.ErrNotFound)

	t1, t2, t3 := t0.Add(time.Second), t0.Add(2*time.Second), t0.Add(3*time.Second)
	ok(t, "put meta", s.PutRecordingFile(ctx, ses.ID, "meta.json", 300, t1))
	ok(t, "put events", s.PutRecordingFile(ctx, ses.ID, "events.jsonl", 1000, t1))
	ok(t, "put cast", s.PutRecordingFile(ctx, ses.ID, "0001-pty.cast", 500, t1))
	ok(t, "grow events", s.PutRecordingFile(ctx, ses.ID, "events.jsonl", 1500, t2))
	ok(t, "the same size again", s.PutRecordingFile(ctx, ses.ID, "0001-pty.cast", 500, t3))
	got, err := s.GetRecording(ctx, ses.ID)
	ok(t, "GetRecording", err)
	want := store.Recording{SessionID: ses.ID, FleetID: f.ID, DeviceID: d.ID, FileCount: 3, Bytes: 2300,
		StartedAt: stored(t1), UpdatedAt: stored(t2),
		Files: []store.RecordingFile{
			{Name: "0001-pty.cast", Size: 500, UpdatedAt: stored(t1)},
			{Name: "events.jsonl", Size: 1500, UpdatedAt: stored(t2)},
			{Name: "meta.json", Size: 300, UpdatedAt: stored(t1)},
		}}
	equal(t, "recording", *got, want)
	if got.Complete() {
		t.Error("a recording nobody completed is complete")
	}

	before := len(auditLog(t, s))
	done := audit.Event{Kind: "recording_uploaded", Actor: audit.Device(d.ID, f.Name, d.Name)}
	rec, changed, err := s.CompleteRecording(with(ctx, done), ses.ID, t3)
	ok(t, "CompleteRecording", err)
	if !changed || !rec.Complete() || rec.CompletedAt != stored(t3) || rec.Files != nil || rec.Bytes != 2300 {
		t.Fatalf("CompleteRecording = %+v, %v; want complete at t3, changed", rec, changed)
	}
	_, changed, err = s.CompleteRecording(with(ctx, done), ses.ID, t3.Add(time.Second))
	ok(t, "CompleteRecording again", err)
	if changed {
		t.Error("completing a complete recording changed it")
	}
	evs := auditLog(t, s)[before:]
	equal(t, "events of completing twice", kinds(evs), []string{"recording_uploaded"})
	if e := evs[0]; e.Session != ses.ID || e.DeviceID != d.ID || e.Device != "dev1" || e.FleetID != f.ID || e.Fleet != "alpha" {
		t.Errorf("the event names session %q, device %q %q, fleet %q %q; want the session's", e.Session, e.DeviceID, e.Device, e.FleetID, e.Fleet)
	}
	verifyOK(t, s, int64(len(auditLog(t, s))))

	// The session taken up again: a file grows, and the recording is open
	// until the device completes it again.
	ok(t, "grow after completion", s.PutRecordingFile(ctx, ses.ID, "events.jsonl", 1600, t3))
	got, _ = s.GetRecording(ctx, ses.ID)
	if got.Complete() || got.Bytes != 2400 {
		t.Errorf("after growing again: complete %v, %d bytes; want open, 2400", got.Complete(), got.Bytes)
	}
}

// testRecordingFilter: lists by fleet, device and session, newest session
// first, without files; a deleted session takes its recording along.
func testRecordingFilter(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := mkFleet(t, s, "alpha"), mkFleet(t, s, "bravo")
	ann := mkUser(t, s, "ann@example.com")
	da := mustEnroll(t, s, mkEnrollmentToken(t, s, a.ID, 2).Hash, "dev1")
	da2 := mustEnroll(t, s, mkEnrollmentToken(t, s, a.ID, 1).Hash, "dev2")
	db := mustEnroll(t, s, mkEnrollmentToken(t, s, b.ID, 1).Hash, "dev1")
	s1, s2, s3 := sessionAt(t, s, da, ann, t0), sessionAt(t, s, da2, ann, t0.Add(time.Minute)), sessionAt(t, s, db, ann, t0.Add(2*time.Minute))
	sessionAt(t, s, da, ann, t0.Add(3*time.Minute)) // nothing uploaded
	for _, ses := range []*store.Session{s1, s2, s3} {
		ok(t, "put", s.PutRecordingFile(ctx, ses.ID, "meta.json", 10, t0))
	}
	ids := func(f store.RecordingFilter) []string {
		t.Helper()
		rs, err := s.ListRecordings(ctx, f)
		ok(t, "ListRecordings", err)
		out := []string{}
		for _, r := range rs {
			if r.Files != nil {
				t.Errorf("ListRecordings filled the files of %s", r.SessionID)
			}
			out = append(out, r.SessionID)
		}
		return out
	}
	equal(t, "all", ids(store.RecordingFilter{}), []string{s3.ID, s2.ID, s1.ID})
	equal(t, "fleet alpha", ids(store.RecordingFilter{FleetIDs: []string{a.ID}}), []string{s2.ID, s1.ID})
	equal(t, "no fleets", ids(store.RecordingFilter{FleetIDs: []string{}}), []string{})
	equal(t, "device", ids(store.RecordingFilter{DeviceID: da.ID}), []string{s1.ID})
	equal(t, "sessions", ids(store.RecordingFilter{SessionIDs: []string{s1.ID, s3.ID, "ses_nosuch"}}), []string{s3.ID, s1.ID})
	equal(t, "sessions in a fleet", ids(store.RecordingFilter{FleetIDs: []string{b.ID}, SessionIDs: []string{s1.ID}}), []string{})
	equal(t, "no sessions", ids(store.RecordingFilter{SessionIDs: []string{}}), []string{})
	equal(t, "limit", ids(store.RecordingFilter{Limit: 1}), []string{s3.ID})

	ok(t, "DeleteDevice", s.DeleteDevice(ctx, da.ID))
	equal(t, "after deleting a device", ids(store.RecordingFilter{}), []string{s3.ID, s2.ID})
	_, err := s.GetRecording(ctx, s1.ID)
	wantErr(t, "GetRecording of a deleted device's session", err, store.ErrNotFound)
}

// testOwnerTokens: a device has one owner token, a new one replaces the
// last with its event, expired ones are not found, and the token goes with
// its device.
func testOwnerTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := mkFleet(t, s, "alpha")
	et := mkEnrollmentToken(t, s, f.ID, 2)
	d, other := mustEnroll(t, s, et.Hash, "dev1"), mustEnroll(t, s, et.Hash, "dev2")
	wantErr(t, "CreateOwnerToken of a missing device",
		s.CreateOwnerToken(ctx, &store.OwnerToken{DeviceID: "dev_nosuch", Hash: randomHex(32), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}), store.ErrNotFound)

	before := len(auditLog(t, s))
	created := audit.Event{Kind: "owner_link_created", Actor: audit.Device(d.ID, f.Name, d.Name)}
	first := &store.OwnerToken{DeviceID: d.ID, Hash: randomHex(32), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	ok(t, "CreateOwnerToken", s.CreateOwnerToken(with(ctx, created), first))
	wantPrefix(t, "owner token", first.ID, "own")
	want := store.OwnerToken{ID: first.ID, DeviceID: d.ID, DeviceName: "dev1", FleetID: f.ID, FleetName: "alpha",
		Hash: first.Hash, CreatedAt: stored(t0), ExpiresAt: stored(t0.Add(time.Hour))}
	equal(t, "created", *first, want)
	got, err := s.OwnerTokenByHash(ctx, first.Hash, t0.Add(time.Minute))
	ok(t, "OwnerTokenByHash", err)
	equal(t, "by hash", *got, want)
	_, err = s.OwnerTokenByHash(ctx, first.Hash, t0.Add(time.Hour))
	wantErr(t, "OwnerTokenByHash at its expiry", err, store.ErrNotFound)
	_, err = s.OwnerTokenByHash(ctx, randomHex(32), t0)
	wantErr(t, "OwnerTokenByHash of an unknown hash", err, store.ErrNotFound)

	ok(t, "other device's token", s.CreateOwnerToken(ctx, &store.OwnerToken{DeviceID: other.ID, Hash: randomHex(32), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
	second := &store.OwnerToken{DeviceID: d.ID, Hash: randomHex(32), CreatedAt: t0, ExpiresAt: t0.Add(2 * time.Hour)}
	ok(t, "CreateOwnerToken again", s.CreateOwnerToken(with(ctx, created), second))
	_, err = s.OwnerTokenByHash(ctx, first.Hash, t0)
	wantErr(t, "the replaced token", err, store.ErrNotFound)
	_, err = s.OwnerTokenByHash(ctx, second.Hash, t0)
	ok(t, "the new token", err)
	evs := auditLog(t, s)[before:]
	equal(t, "events", kinds(evs), []string{"owner_link_created", "owner_link_created"})
	if evs[0].DeviceID != d.ID || evs[0].Device != "dev1" || evs[0].Fleet != "alpha" {
		t.Errorf("the event names device %q %q of fleet %q; want dev1's", evs[0].DeviceID, evs[0].Device, evs[0].Fleet)
	}
	wantErr(t, "a taken hash", s.CreateOwnerToken(ctx, &store.OwnerToken{DeviceID: other.ID, Hash: second.Hash, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}),
		store.ErrConflict)

	ok(t, "DeleteDevice", s.DeleteDevice(ctx, d.ID))
	_, err = s.OwnerTokenByHash(ctx, second.Hash, t0)
	wantErr(t, "the token of a deleted device", err, store.ErrNotFound)
}
