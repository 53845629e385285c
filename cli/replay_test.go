package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/api"
	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/auth"
	"github.com/porthole/porthole/session"
	"github.com/porthole/porthole/store"
)

// recordingAPI is the real API keeping recordings, with a fleet acme, an
// auditor of it, and a device dev1 whose key the test holds.
type recordingAPI struct {
	st      store.Store
	url, fp string
	env     map[string]string // the auditor, logged in through the environment
	dev     *store.Device
	device  *apiclient.Client // dev1's own client
}

func startRecordingAPI(t *testing.T) *recordingAPI {
	t.Helper()
	ctx := context.Background()
	keys, st := newServerState(t)
	dir := t.TempDir()
	// A session manager, so that the API lists sessions; its commands go
	// nowhere.
	mgr, err := session.New(session.Config{Store: st, ControlKey: keys.Control, UserCA: keys.UserCA,
		RelayAddr: "relay.example.com:443", Publish: func(string, []byte) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close() })
	srv, err := api.New(api.Config{Store: st, Keys: keys, Sessions: mgr, Recordings: api.RecordingsConfig{Dir: filepath.Join(dir, "recordings")}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{keys.TLS}}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	ra := &recordingAPI{st: st, url: ts.URL, fp: keys.TLSFingerprint()}

	fl := &store.Fleet{Name: "acme"}
	must(t, st.CreateFleet(ctx, fl))
	u, _, err := api.CreateUser(ctx, st, "audrey@example.com", "correct horse battery staple", false)
	must(t, err)
	must(t, st.SetRole(ctx, fl.ID, u.ID, store.RoleAuditor))
	secret, hash := auth.NewSecret("pht")
	must(t, st.CreateToken(ctx, &store.Token{UserID: u.ID, Hash: hash, Name: "test", ExpiresAt: time.Now().Add(time.Hour)}))
	ra.env = map[string]string{"XDG_CONFIG_HOME": t.TempDir(), envServer: ts.URL, "PORTHOLE_TOKEN": secret, "PORTHOLE_FINGERPRINT": ra.fp}

	pub, key, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	sshPub, err := ssh.NewPublicKey(pub)
	must(t, err)
	_, ehash := auth.NewSecret("phe")
	must(t, st.CreateEnrollmentToken(ctx, &store.EnrollmentToken{FleetID: fl.ID, Hash: ehash, UsesLeft: 1, MaxUses: 1, ExpiresAt: time.Now().Add(time.Hour)}))
	ra.dev = &store.Device{Name: "dev1", PublicKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))}
	must(t, st.EnrollDevice(ctx, ehash, time.Now(), ra.dev, func(*store.Fleet) (string, error) { return "cert", nil }))
	ra.device, err = apiclient.New(ts.URL, apiclient.Options{Fingerprint: ra.fp,
		Device: &apiclient.DeviceCredentials{Fleet: "acme", Device: "dev1", Key: key}})
	must(t, err)
	return ra
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// session records a closed session on dev1 and uploads files for it as
// the device would.
func (ra *recordingAPI) session(t *testing.T, files map[string]string, complete bool) string {
	t.Helper()
	ctx := context.Background()
	ses := &store.Session{DeviceID: ra.dev.ID, UserEmail: "ann@example.com", State: store.SessionClosed, CloseReason: "engineer_closed",
		PublicKey: "ssh-ed25519 AAAA", IdleTimeout: time.Minute, MaxDuration: time.Hour, ClosedAt: time.Now()}
	must(t, ra.st.CreateSession(ctx, ses))
	sizes := map[string]int64{}
	for name, data := range files {
		if _, err := ra.device.UploadRecordingFile(ctx, ses.ID, name, 0, []byte(data)); err != nil {
			t.Fatalf("uploading %s: %v", name, err)
		}
		sizes[name] = int64(len(data))
	}
	if complete {
		if _, err := ra.device.CompleteRecording(ctx, ses.ID, sizes); err != nil {
			t.Fatal(err)
		}
	}
	return ses.ID
}

const (
	replayEvents = `{"time":"2026-11-22T10:00:00Z","event":"connected","user":"ann@example.com"}
{"time":"2026-11-22T10:00:01Z","event":"process","process":1,"channel":1,"run_as":"support","pty":true,"cols":80,"rows":24}
{"time":"2026-11-22T10:00:05Z","event":"process","process":2,"channel":2,"command":"systemctl restart amp","run_as":"support"}
{"time":"2026-11-22T10:00:06Z","event":"exit","process":2,"status":0}
{"time":"2026-11-22T10:00:09Z","event":"sftp","op":"write","path":"/etc/amp.conf","bytes":512}
`
	replayPTY  = "{\"version\": 2, \"width\": 80, \"height\": 24}\n[0.2, \"o\", \"support@dev1:~$ \"]\n[1.5, \"o\", \"uptime\\r\\n 10:00:03 up 3 days\\r\\n\"]\n[30, \"o\", \"support@dev1:~$ exit\\r\\n\"]\n"
	replayExec = "{\"version\": 2, \"width\": 80, \"height\": 24}\n[0.1, \"o\", \"restarted amp.service\\n\"]\n"
)

// TestReplay: porthole replay plays the terminal an engineer saw, from the
// recording the device uploaded, with notes on stderr; --exec adds the
// commands' output; a session without a terminal lists its events; one
// with nothing uploaded says so; porthole sessions shows the sizes.
func TestReplay(t *testing.T) {
	t.Parallel()
	ra := startRecordingAPI(t)
	full := ra.session(t, map[string]string{"meta.json": `{}`, "events.jsonl": replayEvents,
		"0001-pty.cast": replayPTY, "0002-exec.cast": replayExec}, true)

	start := time.Now()
	r := mustRun(t, ra.env, "", "replay", full, "--speed", "100")
	if time.Since(start) > 5*time.Second {
		t.Errorf("replay at 100× took %v; the 28 s pause should have been cut to 2 s, then sped up", time.Since(start))
	}
	if r.stdout != "support@dev1:~$ uptime\r\n 10:00:03 up 3 days\r\nsupport@dev1:~$ exit\r\n" {
		t.Errorf("stdout = %q; want the terminal's output alone", r.stdout)
	}
	if !strings.Contains(r.stderr, "[1/1] process 1 of "+full+" on dev1: login shell as support") || !strings.Contains(r.stderr, "80x24") {
		t.Errorf("stderr = %q; want a note naming the process", r.stderr)
	}
	r = mustRun(t, ra.env, "", "replay", full, "--exec", "--speed", "1000", "--idle-limit", "0")
	if !strings.HasSuffix(r.stdout, "exit\r\nrestarted amp.service\n") || !strings.Contains(r.stderr, `[2/2] process 2 of `+full+` on dev1: "systemctl restart amp"`) {
		t.Errorf("--exec: stdout %q, stderr %q", r.stdout, r.stderr)
	}

	files := ra.session(t, map[string]string{"meta.json": `{}`, "events.jsonl": replayEvents, "0002-exec.cast": replayExec}, false)
	r = mustRun(t, ra.env, "", "replay", files)
	if !strings.Contains(r.stderr, "has not finished sending") || !strings.Contains(r.stderr, "add --exec") ||
		!strings.Contains(r.stdout, `write "/etc/amp.conf" (512 bytes)`) || !strings.Contains(r.stdout, `#2 "systemctl restart amp" as support`) {
		t.Errorf("a session without a terminal: stdout %q, stderr %q", r.stdout, r.stderr)
	}

	none := ra.session(t, nil, false)
	if r := runCLI(t, ra.env, "", "replay", none); r.err == nil || !strings.Contains(r.err.Error(), "nothing of session "+none+" on dev1 has reached the server") {
		t.Errorf("a session with nothing uploaded: %v", r.err)
	}
	if r := runCLI(t, ra.env, "", "replay", "ses_nosuch"); r.err == nil || !strings.Contains(r.err.Error(), "no session") {
		t.Errorf("an unknown session: %v", r.err)
	}
	if r := runCLI(t, ra.env, "", "replay", full, "--speed", "0"); r.err == nil || !strings.Contains(r.err.Error(), "--speed") {
		t.Errorf("--speed 0: %v", r.err)
	}

	r = mustRun(t, ra.env, "", "sessions")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^ID .*CLOSE REASON +BYTES$`),
		regexp.MustCompile(`(?m)^` + full + ` .* 734 B$`),
		regexp.MustCompile(`(?m)^` + files + ` .* \d+(\.\d)? (B|KiB)\+$`),
		regexp.MustCompile(`(?m)^` + none + ` .* -$`),
	} {
		if !want.MatchString(r.stdout) {
			t.Errorf("porthole sessions:\n%s\nwant a line matching %s", r.stdout, want)
		}
	}
}
