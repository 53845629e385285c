package agentcmd

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole/agent/agentrecord"
	"github.com/porthole/porthole/agent/internal/agenttest"
	"github.com/porthole/porthole/agentssh"
	"github.com/porthole/porthole/sessioncert"
)

// clock is a settable time for recordings made in tests; retention reads
// it from a goroutine of its own.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// recordSessions fills a state directory the way a running agent would:
// ses_term (ann, a terminal) three hours ago, for an hour, then ses_files
// (bob, a command and a file copy) an hour later.
func recordSessions(t *testing.T) (stateDir string) {
	t.Helper()
	stateDir = t.TempDir()
	c := &clock{t: time.Now().Add(-3 * time.Hour).Truncate(time.Second)}
	rec, err := agentrecord.Open(agentrecord.Options{StateDir: stateDir, Log: agenttest.OpenLog(t, stateDir), Device: "dev1", Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	who := func(user string) sessioncert.Claims {
		return sessioncert.Claims{User: user, ValidAfter: c.now(), ValidBefore: c.now().Add(time.Hour)}
	}

	rec.Connected("ses_term", who("ann@example.com"))
	sh := rec.Process("ses_term", agentssh.Process{Channel: 1, User: "pi", PTY: true, Term: "xterm", Cols: 80, Rows: 24, Start: c.now()})
	sh.Output([]byte("$ "))
	c.add(time.Second)
	sh.Output([]byte("uptime\r\n 12:00 up 3 days\r\n$ "))
	c.add(time.Hour) // the engineer went for lunch
	sh.Output([]byte("exit\r\n"))
	sh.Exited(agentssh.Exit{Took: time.Hour})
	rec.Disconnected("ses_term", "")
	rec.SessionEnded("ses_term", "idle_timeout")

	c.add(time.Hour)
	rec.Connected("ses_files", who("bob@example.com"))
	cmd := rec.Process("ses_files", agentssh.Process{Channel: 1, User: "pi", Command: "cat /etc/os-release", Start: c.now()})
	cmd.Output([]byte("NAME=Debian\n"))
	cmd.Exited(agentssh.Exit{Status: 0, Took: 3 * time.Millisecond})
	rec.SFTP("ses_files", agentssh.SFTPOp{Op: "write", Path: "/tmp/fw.bin", Bytes: 2048})
	c.add(2 * time.Minute)
	rec.Disconnected("ses_files", "")
	rec.SessionEnded("ses_files", "closed")
	return stateDir
}

func TestSessions(t *testing.T) {
	state := recordSessions(t)
	stdout, stderr, err := run(t, nil, "sessions", "--state", state)
	if err != nil || stderr != "" {
		t.Fatalf("sessions: %v, stderr %q", err, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("sessions printed %q; want a header and two rows", stdout)
	}
	for i, want := range [][]string{
		{"SESSION", "ENGINEER", "STARTED", "DURATION", "ENDED", "BYTES", "RECORDING"},
		{"ses_files", "bob@example.com", "2 min", "closed", "complete"},
		{"ses_term", "ann@example.com", "1 h", "idle_timeout", "complete"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d %q lacks %q", i, lines[i], w)
			}
		}
	}

	stdout, _, err = run(t, nil, "sessions", "--json", "--state", state)
	if err != nil {
		t.Fatal(err)
	}
	var list []agentrecord.SessionInfo
	if err := json.Unmarshal([]byte(stdout), &list); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout)
	}
	if len(list) != 2 || list[0].Session != "ses_files" || list[0].Who[0].User != "bob@example.com" || list[0].Reason != "closed" ||
		list[0].Bytes == 0 || len(list[0].Casts) != 1 || list[1].Session != "ses_term" {
		t.Errorf("--json = %+v", list)
	}
}

func TestSessionsNone(t *testing.T) {
	state := t.TempDir()
	stdout, stderr, err := run(t, nil, "sessions", "--state", state)
	if err != nil || stdout != "" || stderr != "no sessions recorded\n" {
		t.Errorf("sessions = %q, %q, %v; want nothing on stdout, a note on stderr", stdout, stderr, err)
	}
	stdout, _, err = run(t, nil, "sessions", "--json", "--state", state)
	if err != nil || stdout != "[]\n" {
		t.Errorf("sessions --json = %q, %v; want []", stdout, err)
	}
	_, _, err = run(t, nil, "sessions", "--state", state+"/missing")
	if err == nil || !strings.Contains(err.Error(), "does not exist; is --state the agent's state directory?") {
		t.Errorf("sessions in a missing directory: %v", err)
	}
}
