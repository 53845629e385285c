package agentcmd

import (
	"strings"
	"testing"
	"time"
)

func TestReplay(t *testing.T) {
	state := recordSessions(t)
	start := time.Now()
	// An hour's pause, cut to the 2 s idle limit, at 100 times the pace.
	stdout, stderr, err := run(t, nil, "replay", "ses_t", "--speed", "100", "--state", state)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("replay took %v; want the pause cut short", took)
	}
	if want := "$ uptime\r\n 12:00 up 3 days\r\n$ exit\r\n"; stdout != want {
		t.Errorf("replay printed %q; want %q", stdout, want)
	}
	if !strings.Contains(stderr, "[1/1] process 1 of ses_term: login shell as pi") || !strings.Contains(stderr, "80x24") {
		t.Errorf("notes %q", stderr)
	}

	// Only a command and a file copy: the events, unless --exec.
	stdout, stderr, err = run(t, nil, "replay", "ses_files", "--state", state)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"connected    bob@example.com", `process      #1 "cat /etc/os-release" as pi`,
		"exit         #1 status 0 after 3ms, 0B in, 12B out", "sftp         write /tmp/fw.bin (2KiB)", "ended        closed"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("events lack %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "no terminal session was recorded in ses_files (add --exec") {
		t.Errorf("notes %q", stderr)
	}
	stdout, _, err = run(t, nil, "replay", "ses_files", "--exec", "--state", state)
	if err != nil || stdout != "NAME=Debian\n" {
		t.Errorf("replay --exec = %q, %v", stdout, err)
	}
}

func TestReplayErrors(t *testing.T) {
	state := recordSessions(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"ses_nope"}, `no session "ses_nope" is recorded on this device (porthole-agent sessions lists them)`},
		{[]string{"ses_"}, `"ses_" could be any of ses_term, ses_files; give more of the id`},
		{[]string{"ses_term", "--speed", "0"}, "--speed must be more than 0"},
		{[]string{"../ses_term"}, `no session "../ses_term" is recorded`},
		{nil, "accepts 1 arg"},
	} {
		_, _, err := run(t, nil, append([]string{"replay", "--state", state}, tt.args...)...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("replay %v = %v; want %q", tt.args, err, tt.want)
		}
	}
}
