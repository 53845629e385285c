package agentcmd

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestLog(t *testing.T) {
	state := recordSessions(t)
	stdout, stderr, err := run(t, nil, "log", "--state", state)
	if err != nil || stderr != "" {
		t.Fatalf("log: %v, stderr %q", err, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var kinds []string
	for _, l := range lines {
		kinds = append(kinds, strings.Fields(l)[2])
	}
	if got, want := strings.Join(kinds, " "), "engineer_connected engineer_disconnected session_ended engineer_connected engineer_disconnected session_ended"; got != want {
		t.Fatalf("log events %s; want %s\n%s", got, want, stdout)
	}
	if strings.Join(strings.Fields(lines[0])[2:], " ") != "engineer_connected session=ses_term user=ann@example.com" ||
		!strings.Contains(lines[2], "session=ses_term reason=idle_timeout bytes=") {
		t.Errorf("log lines:\n%s", stdout)
	}

	// The second session started an hour ago, the first ended two.
	stdout, _, err = run(t, nil, "log", "--since", "90m", "--json", "--state", state)
	if err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("log --since 90m --json: %q; want the second session's 3 lines", stdout)
	}
	for _, l := range lines {
		var ev struct {
			Time    time.Time
			Event   string
			Session string
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Session != "ses_files" || ev.Time.IsZero() {
			t.Errorf("--json line %q: %+v, %v", l, ev, err)
		}
	}
}

func TestLogErrors(t *testing.T) {
	state := t.TempDir()
	if stdout, stderr, err := run(t, nil, "log", "--state", state); err != nil || stdout != "" || stderr != "nothing logged\n" {
		t.Errorf("log of a new device = %q, %q, %v", stdout, stderr, err)
	}
	if _, _, err := run(t, nil, "log", "--since", "yesterday", "--state", state); err == nil || !strings.Contains(err.Error(), `--since "yesterday": give a length of time back`) {
		t.Errorf("log --since yesterday: %v", err)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 22, 15, 0, 0, 0, time.Local)
	for _, tt := range []struct {
		in   string
		want time.Time
	}{
		{"", time.Time{}},
		{"2h", now.Add(-2 * time.Hour)},
		{"3d", now.Add(-72 * time.Hour)},
		{"2026-11-20", time.Date(2026, 11, 20, 0, 0, 0, 0, time.Local)},
		{"2026-11-20 14:30", time.Date(2026, 11, 20, 14, 30, 0, 0, time.Local)},
		{"2026-11-20T14:30:00Z", time.Date(2026, 11, 20, 14, 30, 0, 0, time.UTC)},
	} {
		if got, err := parseSince(tt.in, now); err != nil || !got.Equal(tt.want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}
