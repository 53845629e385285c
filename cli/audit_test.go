package cli

import (
	"context"
	"crypto/tls"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/api"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/auth"
	"github.com/porthole/porthole/store"
)

// auditAPI is the real API in-process on a SQLite store of its own, with an
// administrator whose token the returned environment carries; db is the
// database under the store, to tamper with.
func auditAPI(t *testing.T) (env map[string]string, db *sql.DB) {
	t.Helper()
	keys, st := newServerState(t)
	srv, err := api.New(api.Config{Store: st, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	admin := &store.User{Email: adminEmail, PasswordHash: "x", TOTPSecret: "x", Admin: true}
	if err := st.CreateUser(context.Background(), admin); err != nil {
		t.Fatal(err)
	}
	secret, hash := auth.NewSecret("pht")
	if err := st.CreateToken(context.Background(), &store.Token{UserID: admin.ID, Hash: hash, Name: "test"}); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{keys.TLS}}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	env = testEnv(t)
	env[envServer], env[envToken], env[envFingerprint] = ts.URL, secret, keys.TLSFingerprint()
	return env, st.DB()
}

// TestAudit lists the log as a table and as JSON, filtered, and verifies
// it: intact, then after an edit behind the server's back, when --verify
// says what broke and exits with an error.
func TestAudit(t *testing.T) {
	t.Parallel()
	env, db := auditAPI(t)
	mustRun(t, env, "", "fleets", "create", "acme")
	mustRun(t, env, "", "fleets", "create", "beta")

	r := mustRun(t, env, "", "audit")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "SEQ") || !strings.Contains(lines[0], "DETAIL") {
		t.Fatalf("audit table:\n%s", r.stdout)
	}
	row := regexp.MustCompile(`^1\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+\s+fleet_created\s+` + regexp.QuoteMeta(adminEmail) + `\s+acme\s+remote=127\.0\.0\.1$`)
	if !row.MatchString(lines[1]) {
		t.Errorf("first row %q", lines[1])
	}

	r = mustRun(t, env, "", "audit", "--fleet", "beta", "--json")
	var evs []apitype.AuditEvent
	if err := json.Unmarshal([]byte(r.stdout), &evs); err != nil {
		t.Fatalf("audit --json: %v\n%s", err, r.stdout)
	}
	if len(evs) != 1 || evs[0].Fleet != "beta" || evs[0].Kind != "fleet_created" || evs[0].Hash == "" || evs[0].PrevHash == "" {
		t.Errorf("audit --fleet beta --json: %+v", evs)
	}
	if r := mustRun(t, env, "", "audit", "--since", time.Now().Add(time.Hour).Format(time.RFC3339), "--json"); strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("events from an hour ahead: %s", r.stdout)
	}
	if r := mustRun(t, env, "", "audit", "--limit", "1"); !strings.Contains(r.stderr, "the latest 1 events") || !strings.Contains(r.stdout, "beta") {
		t.Errorf("audit --limit 1: stdout %q, stderr %q", r.stdout, r.stderr)
	}

	r = mustRun(t, env, "", "audit", "--verify")
	head := regexp.MustCompile(`(?m)^head: (2:[0-9a-f]{64})$`).FindStringSubmatch(r.stdout)
	if !strings.HasPrefix(r.stdout, "ok: the audit log's hash chain is intact (2 events)") || head == nil {
		t.Fatalf("audit --verify:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "--anchor "+head[1]) {
		t.Errorf("audit --verify does not say how to use the head:\n%s", r.stderr)
	}
	mustRun(t, env, "", "audit", "--verify", "--anchor", head[1])

	if _, err := db.Exec(`UPDATE audit_events SET fleet = 'gamma' WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, env, "", "audit", "--verify")
	if !errors.Is(r.err, errTampered) || !strings.Contains(r.err.Error(), "event 2 (edited)") {
		t.Errorf("audit --verify after an edit: error %v", r.err)
	}
	if !strings.HasPrefix(r.stdout, "TAMPERED: event 2 ") || !strings.Contains(r.stdout, "sound for the first 1 events") {
		t.Errorf("audit --verify after an edit:\n%s", r.stdout)
	}
	r = runCLI(t, env, "", "audit", "--verify", "--json")
	var v apitype.AuditVerification
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.OK || v.Problem == nil || v.Problem.Seq != 2 || r.err == nil {
		t.Errorf("audit --verify --json after an edit: %+v %v (%v)", v, err, r.err)
	}
}

func TestAuditFlags(t *testing.T) {
	t.Parallel()
	env := testEnv(t)
	env[envServer], env[envToken] = "https://127.0.0.1:1", "pht_x"
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"audit", "--verify", "--fleet", "acme"}, "takes no --fleet"},
		{[]string{"audit", "--verify", "--since", "1h"}, "takes no --since"},
		{[]string{"audit", "--anchor", "1:ab"}, "--anchor goes with --verify"},
		{[]string{"audit", "--limit", "0"}, "--limit 0"},
		{[]string{"audit", "--since", "last tuesday"}, "--since \"last tuesday\""},
		{[]string{"audit", "--device", "Bad_Name"}, "is not a device"},
	} {
		r := runCLI(t, env, "", tt.args...)
		if r.err == nil || !strings.Contains(r.err.Error(), tt.want) {
			t.Errorf("porthole %s: %v; want an error saying %q", strings.Join(tt.args, " "), r.err, tt.want)
		}
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC)
	for _, tt := range []struct {
		in   string
		want time.Time
	}{
		{"90m", now.Add(-90 * time.Minute)},
		{"7d", now.Add(-7 * 24 * time.Hour)},
		{"2026-11-20T08:00:00Z", time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)},
		{"2026-11-20", time.Date(2026, 11, 20, 0, 0, 0, 0, time.Local)},
		{"2026-11-20 08:15", time.Date(2026, 11, 20, 8, 15, 0, 0, time.Local)},
	} {
		got, err := parseSince(tt.in, now)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "yesterday", "-1h", "0d", "2026-13-01"} {
		if _, err := parseSince(bad, now); err == nil {
			t.Errorf("parseSince(%q) accepted", bad)
		}
	}
}

func TestAuditColumns(t *testing.T) {
	e := apitype.AuditEvent{Kind: "relay_refused", Actor: apitype.AuditActor{Kind: "anonymous", Name: "acme/ghost"},
		Fleet: "acme", Device: "ghost", Session: "ses_1", Detail: map[string]string{"why": "no such device", "what": "login"}}
	if got := auditActor(e.Actor); got != "acme/ghost (unverified)" {
		t.Errorf("actor %q", got)
	}
	if got := auditWhere(e); got != "ghost.acme" {
		t.Errorf("where %q", got)
	}
	if got := auditDetail(e); got != `session=ses_1 what=login why="no such device"` {
		t.Errorf("detail %q", got)
	}
	// A stranger's name cannot drive the terminal.
	evil := apitype.AuditEvent{Actor: apitype.AuditActor{Kind: "anonymous", Name: "x\x1b]0;owned\x07"},
		Detail: map[string]string{"why": "bad\nline", "user": "\x1b[2J"}}
	for _, got := range []string{auditActor(evil.Actor), auditDetail(evil)} {
		if strings.ContainsAny(got, "\x1b\x07\n") {
			t.Errorf("control characters printed raw: %q", got)
		}
	}
	if got := auditActor(evil.Actor); got != `"x\x1b]0;owned\a" (unverified)` {
		t.Errorf("escaped actor %s", got)
	}
	if got := auditDetail(apitype.AuditEvent{}); got != "-" {
		t.Errorf("empty detail %q", got)
	}
}
