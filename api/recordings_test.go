package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/internal/testdisk"
	"github.com/porthole/porthole/recstore"
	"github.com/porthole/porthole/store"
)

// newRecording stores a meta.json of ses as if its device had uploaded
// it, straight through the server's disk and the store.
func (f *fixture) newRecording(t *testing.T, ses *store.Session) {
	t.Helper()
	_, err := f.srv.recDisk.put(context.Background(), f.store, ses, recMetaFile, 0, []byte(`{"session":"`+ses.ID+`"}`), time.Now())
	must(t, err)
}

// recDevice is an API client with d's credential.
func recDevice(t *testing.T, url string, d *store.Device, key ed25519.PrivateKey) *apiclient.Client {
	t.Helper()
	c, err := apiclient.New(url, apiclient.Options{Fingerprint: fx.keys.TLSFingerprint(),
		Device: &apiclient.DeviceCredentials{Fleet: d.FleetName, Device: d.Name, Key: key}})
	must(t, err)
	return c
}

// recordingDir is where the fixture's server keeps a session's recording.
func recordingDir(ses *store.Session) string {
	return filepath.Join(fx.srv.recDisk.cfg.Dir, ses.FleetID, ses.ID)
}

// recUser is an API client of the fixture's user who.
func recUser(t *testing.T, url, who string) *apiclient.Client {
	t.Helper()
	c, err := apiclient.New(url, apiclient.Options{Fingerprint: fx.keys.TLSFingerprint(), Token: fx.tokens[who]})
	must(t, err)
	return c
}

func wantCode(t *testing.T, what string, err error, status int, code string) {
	t.Helper()
	var ae *apiclient.Error
	if !errors.As(err, &ae) || ae.Status != status || ae.Code != code {
		t.Fatalf("%s: %v; want %d %s", what, err, status, code)
	}
}

// TestRecordingUpload: a device uploads its session's files in chunks;
// chunks sent again are answered with the size held, a gap with the size
// to resume from, changed bytes are refused; engineers read what arrived;
// completing it is in the audit log with the files the server lacks.
func TestRecordingUpload(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	fl := fx.newFleet(t)
	d, key := newKeyedDevice(t, fl)
	ses := fx.newSession(t, d)
	dev := recDevice(t, fx.ts.URL, d, key)

	meta := []byte(`{"session":"` + ses.ID + `","start":"2026-11-22T10:00:00Z"}`)
	if n, err := dev.UploadRecordingFile(ctx, ses.ID, "meta.json", 0, meta); err != nil || n != int64(len(meta)) {
		t.Fatalf("meta.json: %d, %v", n, err)
	}
	events := "{\"event\":\"connected\"}\n{\"event\":\"process\"}\n"
	for _, tt := range []struct {
		name   string
		offset int64
		chunk  string
		want   int64
	}{
		{"first chunk", 0, events[:10], 10},
		{"the same chunk again", 0, events[:10], 10},
		{"a chunk within what is held", 2, events[2:5], 10},
		{"a chunk overlapping the end", 5, events[5:20], 20},
		{"the rest", 20, events[20:], int64(len(events))},
		{"an empty chunk at the end", int64(len(events)), "", int64(len(events))},
	} {
		if n, err := dev.UploadRecordingFile(ctx, ses.ID, "events.jsonl", tt.offset, []byte(tt.chunk)); err != nil || n != tt.want {
			t.Fatalf("%s: size %d, %v; want %d", tt.name, n, err, tt.want)
		}
	}
	_, err := dev.UploadRecordingFile(ctx, ses.ID, "events.jsonl", int64(len(events))+5, []byte("late\n"))
	var gap *apiclient.UploadOffsetError
	if !errors.As(err, &gap) || gap.Size != int64(len(events)) {
		t.Fatalf("a gap: %v; want an offset error naming %d", err, len(events))
	}
	_, err = dev.UploadRecordingFile(ctx, ses.ID, "events.jsonl", 0, []byte(`{"event":"forged"}`))
	wantCode(t, "rewriting what is held", err, http.StatusConflict, apitype.CodeUploadMismatch)
	cast := "{\"version\": 2, \"width\": 80, \"height\": 24}\n[0.5, \"o\", \"hello\\r\\n\"]\n"
	if _, err := dev.UploadRecordingFile(ctx, ses.ID, "0001-pty.cast", 0, []byte(cast)); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct{ name, url string }{
		{"no offset", "/files/events.jsonl"},
		{"a bad offset", "/files/events.jsonl?offset=-1"},
		{"an offset for meta.json", "/files/meta.json?offset=5"},
		{"a name the recorder never makes", "/files/notes.txt?offset=0"},
		{"process 0", "/files/0000-pty.cast?offset=0"},
		{"a path", "/files/..%2F..%2Fkeys?offset=0"},
		{"an unknown parameter", "/files/events.jsonl?offset=0&append=1"},
	} {
		r := doDevice(t, fx.ts.URL, "PUT", "/api/v1/device/sessions/"+ses.ID+tt.url, d, key, "x\n")
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: status %d (%s); want 400", tt.name, r.status, r.body)
		}
	}
	if _, err := dev.UploadRecordingFile(ctx, ses.ID, "meta.json", 0, []byte("not json")); err == nil {
		t.Error("meta.json that is not JSON was taken")
	}

	// On disk: the bytes, private to the server.
	dir := filepath.Join(fx.srv.recDisk.cfg.Dir, fl.ID, ses.ID)
	if got, err := os.ReadFile(filepath.Join(dir, "events.jsonl")); err != nil || string(got) != events {
		t.Fatalf("events.jsonl on disk: %q, %v", got, err)
	}
	for _, p := range []string{filepath.Dir(dir), dir, filepath.Join(dir, "meta.json"), filepath.Join(dir, "0001-pty.cast")} {
		fi, err := os.Stat(p)
		must(t, err)
		if want := fs.FileMode(0o600); fi.IsDir() && fi.Mode().Perm() != 0o700 || !fi.IsDir() && fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v", p, fi.Mode())
		}
	}

	// Engineers read it.
	aud := recUser(t, fx.ts.URL, "auditor")
	rec, err := aud.Recording(ctx, ses.ID)
	must(t, err)
	sizes := map[string]int64{}
	for _, f := range rec.Files {
		sizes[f.Name] = f.Size
	}
	want := map[string]int64{"meta.json": int64(len(meta)), "events.jsonl": int64(len(events)), "0001-pty.cast": int64(len(cast))}
	if !mapsEqual(sizes, want) || rec.Complete || rec.Session.ID != ses.ID || rec.Bytes != int64(len(meta)+len(events)+len(cast)) {
		t.Fatalf("recording = %+v; want files %v, not complete", rec, want)
	}
	if b, err := aud.RecordingFile(ctx, ses.ID, "0001-pty.cast"); err != nil || string(b) != cast {
		t.Fatalf("the cast: %q, %v", b, err)
	}
	_, err = aud.RecordingFile(ctx, ses.ID, "0002-pty.cast")
	wantCode(t, "a file not uploaded", err, http.StatusNotFound, apitype.CodeNotFound)
	r := do(t, fx.ts, "GET", "/api/v1/sessions/"+ses.ID+"/recording/files/events.jsonl", fx.tokens["auditor"], nil)
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/jsonl" || r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("events.jsonl: %d, headers %v", r.status, r.header)
	}
	recs, err := aud.Recordings(ctx, apiclient.RecordingFilter{Fleet: fl.Name, Sessions: []string{ses.ID}})
	if err != nil || len(recs) != 1 || recs[0].Bytes != rec.Bytes || recs[0].Files != nil {
		t.Fatalf("Recordings = %+v, %v", recs, err)
	}
	other := recUser(t, fx.ts.URL, "other")
	_, err = other.Recording(ctx, ses.ID)
	wantCode(t, "another fleet's owner", err, http.StatusNotFound, apitype.CodeNotFound)
	_, err = other.RecordingFile(ctx, ses.ID, "meta.json")
	wantCode(t, "another fleet's owner reading a file", err, http.StatusNotFound, apitype.CodeNotFound)

	// Complete, telling of a file the server has less of.
	done, err := dev.CompleteRecording(ctx, ses.ID, map[string]int64{"meta.json": int64(len(meta)),
		"events.jsonl": int64(len(events)), "0001-pty.cast": int64(len(cast)), "0002-exec.cast": 4096})
	if err != nil || !done.Complete || len(done.Files) != 3 {
		t.Fatalf("CompleteRecording = %+v, %v", done, err)
	}
	if _, err := dev.CompleteRecording(ctx, ses.ID, map[string]int64{}); err != nil {
		t.Fatalf("completing again: %v", err)
	}
	evs, err := aud.Audit(ctx, apiclient.AuditFilter{Session: ses.ID})
	must(t, err)
	var uploaded []apitype.AuditEvent
	for _, e := range evs {
		if e.Kind == string(audit.RecordingUploaded) {
			uploaded = append(uploaded, e)
		}
	}
	if len(uploaded) != 1 {
		t.Fatalf("%d recording_uploaded events; want 1: %+v", len(uploaded), evs)
	}
	if e := uploaded[0]; e.Actor.Kind != "device" || e.Device != d.Name || e.Detail["cut_short"] != "0002-exec.cast (0 of 4096 bytes)" || e.Detail["files"] != "3" {
		t.Errorf("recording_uploaded = %+v", e)
	}
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// doDevice sends a request to base with d's credential.
func doDevice(t *testing.T, base, method, path string, d *store.Device, key ed25519.PrivateKey, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	must(t, err)
	req.Header.Set("Authorization", deviceCred(d.FleetName, d.Name, key, method, req.URL.RequestURI(), []byte(body), time.Now()))
	req.Header.Set(control.ContentDigestHeader, control.FormatContentDigest(control.BodyDigest([]byte(body))))
	resp, err := fx.ts.Client().Do(req)
	must(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	must(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// TestRecordingOtherDevice: a device cannot upload to, nor complete,
// another device's session, even of its own fleet; nothing reaches the
// disk or the store.
func TestRecordingOtherDevice(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	fl := fx.newFleet(t)
	victim, _ := newKeyedDevice(t, fl)
	intruder, key := newKeyedDevice(t, fl)
	ses := fx.newSession(t, victim)
	dev := recDevice(t, fx.ts.URL, intruder, key)
	_, err := dev.UploadRecordingFile(ctx, ses.ID, "events.jsonl", 0, []byte("{\"event\":\"forged\"}\n"))
	wantCode(t, "uploading to another device's session", err, http.StatusNotFound, apitype.CodeUnknownSession)
	_, err = dev.UploadRecordingFile(ctx, ses.ID, "meta.json", 0, []byte("{}"))
	wantCode(t, "meta.json of another device's session", err, http.StatusNotFound, apitype.CodeUnknownSession)
	_, err = dev.CompleteRecording(ctx, ses.ID, map[string]int64{})
	wantCode(t, "completing another device's session", err, http.StatusNotFound, apitype.CodeUnknownSession)
	_, err = dev.UploadRecordingFile(ctx, "ses_nosuch", "events.jsonl", 0, []byte("x\n"))
	wantCode(t, "a session that does not exist", err, http.StatusNotFound, apitype.CodeUnknownSession)
	if _, err := fx.store.GetRecording(ctx, ses.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the victim's recording: %v; want none", err)
	}
	if _, err := os.Stat(filepath.Join(fx.srv.recDisk.cfg.Dir, fl.ID, ses.ID)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the victim's recording directory: %v; want none", err)
	}
	// A user's token is no device credential.
	r := do(t, fx.ts, "PUT", "/api/v1/device/sessions/"+ses.ID+"/files/events.jsonl?offset=0", fx.tokens["admin"], "x\n")
	r.wantError(t, http.StatusUnauthorized, apitype.CodeUnauthenticated)
}

// TestRecordingCaps: the server keeps no more of a file, a session or
// files than its caps, refused in words the device logs; one chunk is
// bounded too.
func TestRecordingCaps(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := newServer(t, Config{Recordings: RecordingsConfig{Dir: t.TempDir(), MaxFile: 1000, MaxSession: 1500, MaxFiles: 3}})
	fl := fx.newFleet(t)
	d, key := newKeyedDevice(t, fl)
	ses := fx.newSession(t, d)
	dev := recDevice(t, srv.ts.URL, d, key)
	chunk := func(n int) []byte { return []byte(strings.Repeat("x", n-1) + "\n") }

	if n, err := dev.UploadRecordingFile(ctx, ses.ID, "0001-pty.cast", 0, chunk(900)); err != nil || n != 900 {
		t.Fatalf("within the caps: %d, %v", n, err)
	}
	_, err := dev.UploadRecordingFile(ctx, ses.ID, "0001-pty.cast", 900, chunk(200))
	wantCode(t, "past the file cap", err, http.StatusRequestEntityTooLarge, apitype.CodeTooLarge)
	if n, err := dev.UploadRecordingFile(ctx, ses.ID, "0001-pty.cast", 0, chunk(900)); err != nil || n != 900 {
		t.Fatalf("the file after a refusal: %d, %v; want 900 kept", n, err)
	}
	if _, err := dev.UploadRecordingFile(ctx, ses.ID, "events.jsonl", 0, chunk(500)); err != nil {
		t.Fatal(err)
	}
	_, err = dev.UploadRecordingFile(ctx, ses.ID, "events.jsonl", 500, chunk(200))
	wantCode(t, "past the session cap", err, http.StatusRequestEntityTooLarge, apitype.CodeTooLarge)
	if _, err := dev.UploadRecordingFile(ctx, ses.ID, "meta.json", 0, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	_, err = dev.UploadRecordingFile(ctx, ses.ID, "0002-exec.cast", 0, []byte("{}\n"))
	wantCode(t, "past the file count", err, http.StatusRequestEntityTooLarge, apitype.CodeTooLarge)
	_, err = dev.UploadRecordingFile(ctx, ses.ID, "events.jsonl", 500, make([]byte, maxUploadChunk+1))
	wantCode(t, "a chunk over the bound", err, http.StatusRequestEntityTooLarge, apitype.CodeTooLarge)
	rec, err := fx.store.GetRecording(ctx, ses.ID)
	must(t, err)
	if rec.Bytes != 1402 || rec.FileCount != 3 {
		t.Errorf("held: %d bytes in %d files; want 1402 in 3", rec.Bytes, rec.FileCount)
	}
}

// TestRecordingsNotKept: a server without a recordings directory says so.
func TestRecordingsNotKept(t *testing.T) {
	t.Parallel()
	srv := newServer(t, Config{})
	fl := fx.newFleet(t)
	d, key := newKeyedDevice(t, fl)
	ses := fx.newSession(t, d)
	_, err := recDevice(t, srv.ts.URL, d, key).UploadRecordingFile(t.Context(), ses.ID, "meta.json", 0, []byte("{}"))
	wantCode(t, "upload", err, http.StatusServiceUnavailable, apitype.CodeUnavailable)
}

// TestRecordingConcurrentUploads: the same chunks sent at once (a retry
// while the first try is still on its way) are stored once.
func TestRecordingConcurrentUploads(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	fl := fx.newFleet(t)
	d, key := newKeyedDevice(t, fl)
	ses := fx.newSession(t, d)
	dev := recDevice(t, fx.ts.URL, d, key)
	data := []byte(strings.Repeat("0123456789abcdef\n", 4000))
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			off := int64(0)
			for off < int64(len(data)) {
				end := min(off+8192, int64(len(data)))
				n, err := dev.UploadRecordingFile(ctx, ses.ID, "events.jsonl", off, data[off:end])
				var gap *apiclient.UploadOffsetError
				if errors.As(err, &gap) {
					n, err = gap.Size, nil
				}
				if err != nil {
					errs[i] = err
					return
				}
				off = n
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		must(t, err)
	}
	got, err := os.ReadFile(filepath.Join(fx.srv.recDisk.cfg.Dir, fl.ID, ses.ID, "events.jsonl"))
	must(t, err)
	if string(got) != string(data) {
		t.Fatalf("stored %d bytes; want the %d sent", len(got), len(data))
	}
	rec, err := fx.store.GetRecording(ctx, ses.ID)
	must(t, err)
	if !slices.ContainsFunc(rec.Files, func(f store.RecordingFile) bool { return f.Size == int64(len(data)) }) {
		t.Errorf("the store holds %+v; want %d bytes", rec.Files, len(data))
	}
}

// TestDeleteDeviceRemovesRecordings: a deleted device's recordings leave
// the disk with its sessions.
func TestDeleteDeviceRemovesRecordings(t *testing.T) {
	t.Parallel()
	fl := fx.newFleet(t)
	d, key := newKeyedDevice(t, fl)
	ses := fx.newSession(t, d)
	dev := deviceClient(t, fl.Name, d, key)
	if _, err := dev.UploadRecordingFile(t.Context(), ses.ID, "events.jsonl", 0, []byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	dir := recordingDir(ses)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the upload left no directory: %v", err)
	}
	if r := do(t, fx.ts, "DELETE", "/api/v1/devices/"+d.ID, fx.tokens["owner"], nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the deleted device's recording is still on disk: %v", err)
	}
}

// TestRecordingUploadDiskFull: the recordings' disk fills during an
// upload. The device is told in words (disk_full, nothing changed), what
// was uploaded before stays whole, and the upload resumes from there once
// there is room.
func TestRecordingUploadDiskFull(t *testing.T) {
	t.Parallel()
	disk := testdisk.Tiny(t, "1m")
	srv, err := New(Config{Store: fx.store, Keys: fx.keys, Sessions: fx.srv.sessions, RelayAddr: "relay.example.com:443",
		Recordings: RecordingsConfig{Dir: disk}})
	must(t, err)
	ts := startTLS(srv.Handler(), fx.keys)
	defer ts.Close()
	ctx := t.Context()
	fl := fx.newFleet(t)
	d, key := newKeyedDevice(t, fl)
	ses := fx.newSession(t, d)
	dev := recDevice(t, ts.URL, d, key)
	first := bytes.Repeat([]byte("{\"event\":\"x\"}\n"), 1000)
	if _, err := dev.UploadRecordingFile(ctx, ses.ID, "events.jsonl", 0, first); err != nil {
		t.Fatal(err)
	}
	free := testdisk.Fill(t, disk)
	_, err = dev.UploadRecordingFile(ctx, ses.ID, "events.jsonl", int64(len(first)), first)
	wantCode(t, "an upload to a full disk", err, http.StatusInsufficientStorage, apitype.CodeDiskFull)
	if !strings.Contains(err.Error(), "the server's disk is full, so nothing was changed") {
		t.Errorf("the device reads %q", err)
	}
	free()
	size, err := dev.UploadRecordingFile(ctx, ses.ID, "events.jsonl", int64(len(first)), first)
	if err != nil || size != int64(2*len(first)) {
		t.Fatalf("resumed upload: size %d, %v; want %d", size, err, 2*len(first))
	}
}

// fullDisk is a recording store whose disk is full: appends fail as a
// full disk's writes do.
type fullDisk struct{ *recstore.Dir }

func (fullDisk) Append(context.Context, recstore.Key, string, int64, []byte) error {
	return &os.PathError{Op: "write", Path: "events.jsonl", Err: syscall.ENOSPC}
}

// TestRecordingUploadStoreFull: wherever the recordings are kept, a full
// disk under them is answered 507 disk_full in words, not as an internal
// error; this needs no root, unlike TestRecordingUploadDiskFull's tmpfs.
func TestRecordingUploadStoreFull(t *testing.T) {
	t.Parallel()
	srv, err := New(Config{Store: fx.store, Keys: fx.keys, Sessions: fx.srv.sessions, RelayAddr: "relay.example.com:443",
		Recordings: RecordingsConfig{Store: fullDisk{&recstore.Dir{Root: t.TempDir()}}}})
	must(t, err)
	ts := startTLS(srv.Handler(), fx.keys)
	defer ts.Close()
	fl := fx.newFleet(t)
	d, key := newKeyedDevice(t, fl)
	ses := fx.newSession(t, d)
	_, err = recDevice(t, ts.URL, d, key).UploadRecordingFile(t.Context(), ses.ID, "events.jsonl", 0, []byte("{}\n"))
	wantCode(t, "an upload to a full store", err, http.StatusInsufficientStorage, apitype.CodeDiskFull)
}
