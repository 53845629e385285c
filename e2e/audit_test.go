package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	_ "modernc.org/sqlite" // the "sqlite" driver, to edit the server's database behind its back

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/internal/testwait"
)

// TestAuditEndToEnd: a realistic session through the real binaries (enroll,
// open, run a command, close) lands in the server's audit log with the
// relay's refusal of a stranger, `porthole audit --verify` passes and prints
// the head; then, with the server stopped, a row of its SQLite file is
// edited, and after a restart `porthole audit --verify` fails with status
// 1, naming the row, with or without the head recorded before.
func TestAuditEndToEnd(t *testing.T) {
	t.Parallel()
	srv, agent, eng := oneDevice(t, "15m")
	resp, client := eng.connect(t, "dev1", agent)
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := sess.CombinedOutput("echo audited"); err != nil || !strings.Contains(string(out), "audited") {
		t.Fatalf("exec: %q %v", out, err)
	}
	if _, err := eng.api.CloseSession(t.Context(), resp.Session.ID); err != nil {
		t.Fatal(err)
	}
	// A stranger knocks at the relay as a device of acme.
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(key)
	if c, err := ssh.Dial("tcp", resp.RelayAddr, &ssh.ClientConfig{User: "acme/ghost", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second}); err == nil {
		c.Close()
		t.Fatal("the relay let a stranger in")
	}

	// The session's life, by its actors; the refusal comes through the
	// server's queue, within a second or so.
	var evs []apitype.AuditEvent
	// A stranger can claim any device's name: the refusal is the server's
	// (in the whole log, naming the claimed device), not in acme's.
	auditJSON := func(args ...string) []apitype.AuditEvent {
		r := MustRun(t, srv.env, "", bins.CLI, append([]string{"audit", "--json", "--limit", "1000"}, args...)...)
		var out []apitype.AuditEvent
		if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
			t.Fatalf("audit --json: %v\n%s", err, r.Stdout)
		}
		return out
	}
	refusal := func(e apitype.AuditEvent) bool {
		return e.Kind == "relay_refused" && e.Detail["claimed_device"] == "acme/ghost"
	}
	testwait.ForEvery(t, 10*time.Second, 100*time.Millisecond, "the relay's refusal in the audit log", func() bool {
		evs = auditJSON()
		return slices.ContainsFunc(evs, refusal)
	})
	if slices.ContainsFunc(auditJSON("--fleet", "acme"), refusal) {
		t.Error("a stranger's refused login under acme's names is in acme's log")
	}
	var steps []string
	for _, e := range evs {
		if e.Session == resp.Session.ID {
			steps = append(steps, e.Kind+" by "+e.Actor.Name+" "+e.Detail["reason"])
		}
	}
	want := []string{"session_requested by ops@example.com e2e", "session_active by dev1.acme ",
		"session_closed by ops@example.com engineer_closed"}
	if !slices.Equal(steps, want) {
		t.Errorf("the session's events:\n%s\nwant\n%s", strings.Join(steps, "\n"), strings.Join(want, "\n"))
	}
	for _, kind := range []string{"fleet_created", "enrollment_token_created", "device_enrolled"} {
		if !slices.ContainsFunc(evs, func(e apitype.AuditEvent) bool { return e.Kind == kind }) {
			t.Errorf("no %s event in acme's log", kind)
		}
	}
	table := MustRun(t, srv.env, "", bins.CLI, "audit", "--fleet", "acme").Stdout
	if !regexp.MustCompile(`(?m)\ssession_closed\s+ops@example\.com\s+dev1\.acme\s+session=ses_\w+ reason=engineer_closed$`).MatchString(table) {
		t.Errorf("audit table has no row for the close:\n%s", table)
	}

	r := MustRun(t, srv.env, "", bins.CLI, "audit", "--verify")
	m := regexp.MustCompile(`(?m)^head: (\d+:[0-9a-f]{64})$`).FindStringSubmatch(r.Stdout)
	if !strings.HasPrefix(r.Stdout, "ok: ") || m == nil {
		t.Fatalf("audit --verify on an untouched log:\n%s%s", r.Stdout, r.Stderr)
	}
	head := m[1]

	// Behind the stopped server's back, the close's reason is rewritten.
	srv.stop(t)
	db, err := sql.Open("sqlite", filepath.Join(srv.tmp, "data", "porthole.db"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := db.Exec(`UPDATE audit_events SET detail = '{"reason":"idle_timeout","remote":"127.0.0.1"}' WHERE kind = 'session_closed' AND session_id = $1`, resp.Session.ID)
	if n, _ := res.RowsAffected(); err != nil || n != 1 {
		t.Fatalf("editing the close event: %d rows, %v", n, err)
	}
	var seq int64
	if err := db.QueryRow(`SELECT seq FROM audit_events WHERE kind = 'session_closed' AND session_id = $1`, resp.Session.ID).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	db.Close()
	srv.start(t)

	for _, args := range [][]string{{"audit", "--verify"}, {"audit", "--verify", "--anchor", head}} {
		r := Run(t, srv.env, "", bins.CLI, args...)
		if code := exitCode(r.Err); code != 1 {
			t.Errorf("porthole %s after the edit: exit status %d (%v); want 1\n%s", strings.Join(args, " "), code, r.Err, r.Stdout)
		}
		wantMsg := "failed verification at event " + itoa(seq) + " (edited)"
		if !strings.HasPrefix(r.Stdout, "TAMPERED: event "+itoa(seq)+" ") || !strings.Contains(r.Stderr, wantMsg) {
			t.Errorf("porthole %s after the edit:\nstdout:\n%s\nstderr:\n%s\nwant TAMPERED and %q", strings.Join(args, " "), r.Stdout, r.Stderr, wantMsg)
		}
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(interface{ ExitCode() int }); ok {
		return ee.ExitCode()
	}
	return -1
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
