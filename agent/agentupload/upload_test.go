package agentupload

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/agent/agentrecord"
	"github.com/porthole/porthole/agent/agentretry"
	"github.com/porthole/porthole/agent/agentstate"
	"github.com/porthole/porthole/agent/internal/agenttest"
	"github.com/porthole/porthole/agentssh"
	"github.com/porthole/porthole/api"
	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/auth"
	"github.com/porthole/porthole/ca"
	"github.com/porthole/porthole/internal/testwait"
	"github.com/porthole/porthole/sessioncert"
	"github.com/porthole/porthole/store"
	"github.com/porthole/porthole/store/sqlitestore"
)

// The uploader's tests run it against the real API on a real store: what
// arrives is read from the server's own disk and store.

// uploadAPI is an API server keeping recordings, and a device enrolled
// with it whose key the test holds.
type uploadAPI struct {
	st    store.Store
	keys  *ca.Keys
	ts    *httptest.Server
	dir   string // the server's recordings
	fleet *store.Fleet
	dev   *store.Device
	key   ed25519.PrivateKey
}

var (
	uploadKeysOnce sync.Once
	uploadKeys     *ca.Keys
	uploadKeysErr  error
)

// newUploadAPI starts a server with its own store; rc's Dir is filled in.
func newUploadAPI(t *testing.T, rc api.RecordingsConfig) *uploadAPI {
	t.Helper()
	uploadKeysOnce.Do(func() {
		dir, err := os.MkdirTemp("", "upload-keys-")
		if err == nil {
			if err = ca.Generate(dir, nil); err == nil {
				uploadKeys, err = ca.Load(dir)
			}
		}
		uploadKeysErr = err
	})
	if uploadKeysErr != nil {
		t.Fatal(uploadKeysErr)
	}
	st, err := sqlitestore.Open(filepath.Join(t.TempDir(), "porthole.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rc.Dir = filepath.Join(t.TempDir(), "recordings")
	srv, err := api.New(api.Config{Store: st, Keys: uploadKeys, Recordings: rc})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{uploadKeys.TLS}}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	a := &uploadAPI{st: st, keys: uploadKeys, ts: ts, dir: rc.Dir}
	a.fleet = &store.Fleet{Name: "acme"}
	must(t, st.CreateFleet(t.Context(), a.fleet))
	a.dev, a.key = a.enroll(t, "dev1")
	return a
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// enroll enrolls a device named name with a key of the test's.
func (a *uploadAPI) enroll(t *testing.T, name string) (*store.Device, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	sshPub, err := ssh.NewPublicKey(pub)
	must(t, err)
	_, hash := auth.NewSecret("phe")
	must(t, a.st.CreateEnrollmentToken(t.Context(), &store.EnrollmentToken{FleetID: a.fleet.ID, Hash: hash, UsesLeft: 1, MaxUses: 1,
		ExpiresAt: time.Now().Add(time.Hour)}))
	d := &store.Device{Name: name, PublicKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))}
	must(t, a.st.EnrollDevice(t.Context(), hash, time.Now(), d, func(*store.Fleet) (string, error) { return "cert", nil }))
	return d, priv
}

// session records a session on d at the server.
func (a *uploadAPI) session(t *testing.T, d *store.Device) string {
	t.Helper()
	ses := &store.Session{DeviceID: d.ID, UserEmail: "ann@example.com", State: store.SessionActive, PublicKey: "ssh-ed25519 AAAA",
		IdleTimeout: time.Minute, MaxDuration: time.Hour}
	must(t, a.st.CreateSession(t.Context(), ses))
	return ses.ID
}

// state is the device's state as the uploader sees it, in a fresh
// directory.
func (a *uploadAPI) state(t *testing.T) *agentstate.State {
	t.Helper()
	return &agentstate.State{Dir: t.TempDir(), PrivateKey: a.key, Enrollment: agentstate.Enrollment{Server: a.ts.URL, Fingerprint: a.keys.TLSFingerprint(),
		Fleet: a.fleet.Name, DeviceID: a.dev.ID, Name: a.dev.Name}}
}

// client is the device's API client.
func (a *uploadAPI) client(t *testing.T) *apiclient.Client {
	t.Helper()
	c, err := apiclient.New(a.ts.URL, apiclient.Options{Fingerprint: a.keys.TLSFingerprint(),
		Device: &apiclient.DeviceCredentials{Fleet: a.fleet.Name, Device: a.dev.Name, Key: a.key}})
	must(t, err)
	return c
}

// flaky is the server, or, while down is set, a dropped connection.
type flaky struct {
	Server
	down  atomic.Bool
	calls atomic.Int64
}

var errDropped = errors.New("connection reset by peer")

func (f *flaky) UploadRecordingFile(ctx context.Context, session, name string, offset int64, data []byte) (int64, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return 0, errDropped
	}
	return f.Server.UploadRecordingFile(ctx, session, name, offset, data)
}

func (f *flaky) CompleteRecording(ctx context.Context, session string, files map[string]int64) (*apitype.Recording, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return nil, errDropped
	}
	return f.Server.CompleteRecording(ctx, session, files)
}

// startUploader starts an uploader of st to server with quick passes and
// retries; it stops at the test's end, or when stop is called.
func startUploader(t *testing.T, st *agentstate.State, server Server) (*Uploader, func()) {
	t.Helper()
	u, err := New(Options{State: st, Server: server, Every: 5 * time.Millisecond,
		Backoff: agentretry.Backoff{First: 5 * time.Millisecond, Max: 20 * time.Millisecond}, ChunkSize: 4096})
	must(t, err)
	return u, startStop(t, u)
}

func startStop(t *testing.T, u *Uploader) func() {
	stop := u.Start(t.Context())
	var once sync.Once
	s := func() { once.Do(stop) }
	t.Cleanup(s)
	return s
}

// recorder records in st's directory, telling changes to u (which may
// change, as the agent restarts).
func recorder(t *testing.T, st *agentstate.State, changed *atomic.Pointer[Uploader]) *agentrecord.Recordings {
	t.Helper()
	r, err := agentrecord.Open(agentrecord.Options{StateDir: st.Dir, Log: agenttest.OpenLog(t, st.Dir), Device: st.Enrollment.Name, FlushEvery: 5 * time.Millisecond,
		Changed: func(s string) {
			if u := changed.Load(); u != nil {
				u.Changed(s)
			}
		}})
	must(t, err)
	t.Cleanup(func() { r.Close() })
	return r
}

func engineer(session string) sessioncert.Claims {
	now := time.Now()
	return sessioncert.Claims{Session: session, User: "ann@example.com", ValidAfter: now.Add(-time.Minute), ValidBefore: now.Add(time.Hour)}
}

// serverFile is a file of a session's recording on the server's disk.
func (a *uploadAPI) serverFile(session, name string) []byte {
	b, _ := os.ReadFile(filepath.Join(a.dir, a.fleet.ID, session, name))
	return b
}

// complete reports whether the server holds the session's recording as
// complete.
func (a *uploadAPI) complete(t *testing.T, session string) bool {
	rec, err := a.st.GetRecording(t.Context(), session)
	return err == nil && rec.Complete()
}

// sameAsDevice checks that the server holds every file of the session's
// directory as the device does, and no other.
func (a *uploadAPI) sameAsDevice(t *testing.T, st *agentstate.State, session string) {
	t.Helper()
	dir := filepath.Join(st.Dir, agentrecord.SessionsDir, session)
	ents, err := os.ReadDir(dir)
	must(t, err)
	var names []string
	for _, e := range ents {
		if e.Name() == agentrecord.SessionUploadFile || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		names = append(names, e.Name())
		local, err := os.ReadFile(filepath.Join(dir, e.Name()))
		must(t, err)
		if got := a.serverFile(session, e.Name()); !bytes.Equal(got, local) {
			t.Errorf("%s on the server: %d bytes, %q…; the device has %d bytes", e.Name(), len(got), head(got), len(local))
		}
	}
	rec, err := a.st.GetRecording(t.Context(), session)
	must(t, err)
	if rec.FileCount != len(names) {
		t.Errorf("the server holds %d files; the device has %v", rec.FileCount, names)
	}
}

func head(b []byte) []byte { return b[:min(len(b), 40)] }

// TestUploadDuringAndAfter: a session's files reach the server while it is
// recorded, and completely once it ends, with the completion in the audit
// log.
func TestUploadDuringAndAfter(t *testing.T) {
	t.Parallel()
	a := newUploadAPI(t, api.RecordingsConfig{})
	st := a.state(t)
	ses := a.session(t, a.dev)
	var cur atomic.Pointer[Uploader]
	u, _ := startUploader(t, st, a.client(t))
	cur.Store(u)
	r := recorder(t, st, &cur)

	r.Connected(ses, engineer(ses))
	p := r.Process(ses, agentssh.Process{Channel: 1, PTY: true, Cols: 80, Rows: 24, Term: "xterm"})
	p.Output([]byte("ann@dev1:~$ uptime\r\n 10:00 up 3 days\r\n"))
	testwait.For(t, 10*time.Second, "the output on the server while the session goes on", func() bool {
		return bytes.Contains(a.serverFile(ses, "0001-pty.cast"), []byte("up 3 days"))
	})
	if a.complete(t, ses) {
		t.Fatal("a session still recorded is complete on the server")
	}
	p.Output([]byte(strings.Repeat("more output\r\n", 2000))) // several chunks
	p.Exited(agentssh.Exit{Status: 0, Took: time.Second})
	r.Disconnected(ses, "")
	r.SessionEnded(ses, "closed")
	testwait.For(t, 10*time.Second, "the recording complete on the server", func() bool { return a.complete(t, ses) })
	a.sameAsDevice(t, st, ses)

	evs, err := a.st.ListAudit(t.Context(), store.AuditFilter{Session: ses})
	must(t, err)
	if len(evs) != 1 || evs[0].Kind != "recording_uploaded" || evs[0].Detail["cut_short"] != "" {
		t.Errorf("audit events of the session: %+v; want one recording_uploaded", evs)
	}
}

// TestUploadRestartAndDrops: the connection drops in the middle of a
// session and comes back; the agent stops and a new one, which lost the
// last progress it saved, takes over the same state directory: the server
// ends up with exactly the device's files, completed once.
func TestUploadRestartAndDrops(t *testing.T) {
	t.Parallel()
	a := newUploadAPI(t, api.RecordingsConfig{})
	st := a.state(t)
	ses := a.session(t, a.dev)
	server := &flaky{Server: a.client(t)}
	var cur atomic.Pointer[Uploader]
	u, stop := startUploader(t, st, server)
	cur.Store(u)
	r := recorder(t, st, &cur)

	r.Connected(ses, engineer(ses))
	p := r.Process(ses, agentssh.Process{Channel: 1, PTY: true, Cols: 80, Rows: 24})
	p.Output([]byte("before the drop\r\n"))
	testwait.For(t, 10*time.Second, "the first output on the server", func() bool {
		return bytes.Contains(a.serverFile(ses, "0001-pty.cast"), []byte("before the drop"))
	})

	server.down.Store(true)
	p.Output([]byte("while the server is out of reach\r\n"))
	before := server.calls.Load()
	testwait.For(t, 10*time.Second, "tries while the server is out of reach", func() bool { return server.calls.Load() > before+2 })
	server.down.Store(false)
	testwait.For(t, 10*time.Second, "the output sent after the drop", func() bool {
		return bytes.Contains(a.serverFile(ses, "0001-pty.cast"), []byte("out of reach"))
	})

	// The agent stops; what it last saved of its progress is lost, as if
	// it died between an upload and the save.
	cur.Store(nil)
	stop()
	must(t, os.Remove(filepath.Join(st.Dir, agentrecord.SessionsDir, ses, agentrecord.SessionUploadFile)))
	p.Output([]byte("while no agent uploads\r\n"))
	p.Exited(agentssh.Exit{Status: 0})
	r.Disconnected(ses, "")
	r.SessionEnded(ses, "closed")

	u2, _ := startUploader(t, st, a.client(t))
	cur.Store(u2)
	testwait.For(t, 10*time.Second, "the recording complete after the restart", func() bool { return a.complete(t, ses) })
	a.sameAsDevice(t, st, ses)
	evs, err := a.st.ListAudit(t.Context(), store.AuditFilter{Session: ses})
	must(t, err)
	if len(evs) != 1 {
		t.Errorf("%d audit events; want one recording_uploaded", len(evs))
	}
}

// TestUploadQueuedAcrossRestarts: recordings made while the server could
// not be reached, and left by an agent that stopped (interrupted), are
// sent by the next agent as it starts.
func TestUploadQueuedAcrossRestarts(t *testing.T) {
	t.Parallel()
	a := newUploadAPI(t, api.RecordingsConfig{})
	st := a.state(t)
	s1, s2 := a.session(t, a.dev), a.session(t, a.dev)
	var none atomic.Pointer[Uploader]
	r := recorder(t, st, &none)
	for _, ses := range []string{s1, s2} {
		r.Connected(ses, engineer(ses))
		p := r.Process(ses, agentssh.Process{Channel: 1, Command: "cat /etc/os-release"})
		p.Output([]byte("PRETTY_NAME=\"Debian\"\n"))
		p.Exited(agentssh.Exit{Status: 0})
	}
	r.SessionEnded(s1, "closed")
	r.Close() // s2 was still open: ended as agent_stopping

	_, _ = startUploader(t, st, a.client(t))
	testwait.For(t, 10*time.Second, "both recordings complete", func() bool { return a.complete(t, s1) && a.complete(t, s2) })
	a.sameAsDevice(t, st, s1)
	a.sameAsDevice(t, st, s2)
}

// TestUploadRefusals: a file past the server's caps is sent as far as the
// server takes it, the recording is completed naming it, and nothing is
// tried again; a session the server gives another device is not sent at
// all.
func TestUploadRefusals(t *testing.T) {
	t.Parallel()
	a := newUploadAPI(t, api.RecordingsConfig{MaxFile: 8 << 10})
	st := a.state(t)
	ses := a.session(t, a.dev)
	other, _ := a.enroll(t, "dev2")
	theirs := a.session(t, other)
	server := &flaky{Server: a.client(t)}
	var cur atomic.Pointer[Uploader]
	u, _ := startUploader(t, st, server)
	cur.Store(u)
	r := recorder(t, st, &cur)

	for _, id := range []string{ses, theirs} {
		r.Connected(id, engineer(id))
		p := r.Process(id, agentssh.Process{Channel: 1, PTY: true, Cols: 80, Rows: 24})
		p.Output(bytes.Repeat([]byte("0123456789abcdef\r\n"), 1000)) // 18 KB, past the 8 KiB cap
		p.Exited(agentssh.Exit{Status: 0})
		r.SessionEnded(id, "closed")
	}
	progress := func(id string) *uploadProgress {
		return readProgress(filepath.Join(st.Dir, agentrecord.SessionsDir, id))
	}
	// The server completes it before the uploader writes down its answer.
	testwait.For(t, 10*time.Second, "the capped recording complete", func() bool { return a.complete(t, ses) && progress(ses).Complete })
	testwait.For(t, 10*time.Second, "the other device's session given up", func() bool { return progress(theirs).Gone != "" })

	if got := len(a.serverFile(ses, "0001-pty.cast")); got == 0 || got > 8<<10 {
		t.Errorf("the server holds %d bytes of the cast; want some, at most 8 KiB", got)
	}
	if p := progress(ses); p.Refused["0001-pty.cast"] == "" || !p.Complete {
		t.Errorf("upload.json = %+v; want the cast refused and the recording complete", p)
	}
	evs, err := a.st.ListAudit(t.Context(), store.AuditFilter{Session: ses})
	must(t, err)
	if len(evs) != 1 || !strings.HasPrefix(evs[0].Detail["cut_short"], "0001-pty.cast (") {
		t.Errorf("audit events: %+v; want recording_uploaded naming the cast cut short", evs)
	}
	if _, err := a.st.GetRecording(t.Context(), theirs); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the other device's session got a recording: %v", err)
	}

	// Nothing more is tried, even after a rescan.
	calls := server.calls.Load()
	u.Changed(ses)
	u.Changed(theirs)
	u.markAll()
	u.Changed(ses)
	time.Sleep(50 * time.Millisecond)
	if n := server.calls.Load() - calls; n != 0 {
		t.Errorf("%d more calls after everything was sent or refused", n)
	}
}

// TestUploadChangedNeverBlocks: the recorder's hook returns at once, with
// no uploader running and the server unreachable.
func TestUploadChangedNeverBlocks(t *testing.T) {
	t.Parallel()
	st := &agentstate.State{Dir: t.TempDir(), Enrollment: agentstate.Enrollment{Server: "https://127.0.0.1:1", Fleet: "acme", Name: "dev1"}}
	u, err := New(Options{State: st})
	must(t, err)
	done := make(chan struct{})
	go func() {
		for i := range 10000 {
			u.Changed(fmt.Sprintf("ses_%d", i%50))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Changed blocked")
	}
}

// TestOwnerLinkKept: the running agent gets an owner link and keeps it in
// the state directory for the owner; a link near its end is renewed, and
// the old one stops working.
func TestOwnerLinkKept(t *testing.T) {
	t.Parallel()
	a := newUploadAPI(t, api.RecordingsConfig{})
	st := a.state(t)
	_, _ = startUploader(t, st, a.client(t))
	var l *OwnerLink
	testwait.For(t, 10*time.Second, "the owner link", func() bool {
		var err error
		l, err = ReadOwnerLink(st.Dir)
		return err == nil
	})
	wantPrefix := a.ts.URL + "/owner/#token=pho_"
	if !strings.HasPrefix(l.URL, wantPrefix) || l.Fingerprint != a.keys.TLSFingerprint() || time.Until(l.ExpiresAt) < 29*24*time.Hour {
		t.Fatalf("owner link = %+v; want %s…", l, wantPrefix)
	}
	if fi, err := os.Stat(filepath.Join(st.Dir, OwnerLinkFile)); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("%s: %v, %v; want mode 0640", OwnerLinkFile, fi.Mode(), err)
	}
	if !strings.Contains(l.Curl("/api/v1/owner/audit"), "'Authorization: Owner "+l.Token+"' "+a.ts.URL+"/api/v1/owner/audit") {
		t.Errorf("curl command: %s", l.Curl("/api/v1/owner/audit"))
	}

	// The same link while it has long to go; a new one near its end.
	u, err := New(Options{State: st, Server: a.client(t)})
	must(t, err)
	if _, err := u.ensureOwnerLink(t.Context()); err != nil {
		t.Fatal(err)
	}
	if again, _ := ReadOwnerLink(st.Dir); again.Token != l.Token {
		t.Error("a fresh link was renewed")
	}
	u.now = func() time.Time { return l.ExpiresAt.Add(-ownerLinkRenew) }
	if _, err := u.ensureOwnerLink(t.Context()); err != nil {
		t.Fatal(err)
	}
	renewed, _ := ReadOwnerLink(st.Dir)
	if renewed.Token == l.Token {
		t.Fatal("a link near its end was not renewed")
	}
	if _, err := a.st.OwnerTokenByHash(t.Context(), auth.HashSecret(l.Token), time.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the replaced link still works: %v", err)
	}
}

// oldServer answers uploads as a server without them does: an unknown
// path.
type oldServer struct {
	Server
	calls atomic.Int64
}

func (s *oldServer) UploadRecordingFile(context.Context, string, string, int64, []byte) (int64, error) {
	s.calls.Add(1)
	return 0, &apiclient.Error{Status: 404, Code: apitype.CodeNotFound, Message: "this server has no API path /api/v1/device/sessions/x/files/meta.json"}
}

// TestUploadOldServer: a server that does not know the upload's path is
// not taken to refuse the session: the recording stays queued.
func TestUploadOldServer(t *testing.T) {
	t.Parallel()
	a := newUploadAPI(t, api.RecordingsConfig{})
	st := a.state(t)
	ses := a.session(t, a.dev)
	var none atomic.Pointer[Uploader]
	r := recorder(t, st, &none)
	r.Connected(ses, engineer(ses))
	r.SessionEnded(ses, "closed")
	server := &oldServer{Server: a.client(t)}
	startUploader(t, st, server)
	testwait.For(t, 10*time.Second, "tries", func() bool { return server.calls.Load() >= 3 })
	if p := readProgress(filepath.Join(st.Dir, agentrecord.SessionsDir, ses)); p.Gone != "" || p.Meta != "" {
		t.Errorf("upload.json = %+v; want the session still queued", p)
	}
}
