package cli

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestAgentSocketFor(t *testing.T) {
	unix := agentSocketFor("linux", "/home/ann/.config/porthole", "dev1.porthole")
	if unix != "/home/ann/.config/porthole/agent/dev1.porthole.sock" {
		t.Errorf("agentSocketFor(linux) = %q; want the socket in the config dir's agent/", unix)
	}
	const dir = `C:\Users\ann\AppData\Local\porthole`
	win := agentSocketFor("windows", dir, "dev1.acme.porthole")
	if !isPipePath(win) || !strings.HasPrefix(win, "//./pipe/porthole-") || !strings.HasSuffix(win, "-dev1.acme.porthole") {
		t.Errorf("agentSocketFor(windows) = %q; want //./pipe/porthole-TAG-dev1.acme.porthole", win)
	}
	if again := agentSocketFor("windows", strings.ToUpper(dir), "dev1.acme.porthole"); again != win {
		t.Errorf("the pipe for the same dir in other case = %q; want %q (Windows paths ignore case)", again, win)
	}
	if other := agentSocketFor("windows", `C:\Users\bob\AppData\Local\porthole`, "dev1.acme.porthole"); other == win {
		t.Errorf("two users' config dirs give the same pipe %q: pipe names are shared by the whole machine", win)
	}
	// What ssh-config writes for IdentityAgent is the proxy's default.
	if prefix := agentPipePrefix(dir); win != prefix+"dev1.acme.porthole" {
		t.Errorf("agentPipePrefix = %q does not start the default pipe %q", prefix, win)
	}
}

func TestIsPipePath(t *testing.T) {
	for _, tt := range []struct {
		path string
		want bool
	}{
		{"//./pipe/porthole-ab-dev1.porthole", true},
		{`\\.\pipe\openssh-ssh-agent`, true},
		{`\\.\PIPE\x`, true},
		{"//./pipe/", false},
		{"//./pipe/a/b", false},
		{`//server/pipe/x`, false},
		{`C:\Users\ann\agent.sock`, false},
		{"/home/ann/.config/porthole/agent/dev1.sock", false},
	} {
		if got := isPipePath(tt.path); got != tt.want {
			t.Errorf("isPipePath(%q) = %v; want %v", tt.path, got, tt.want)
		}
	}
}

func TestCheckAgentSocket(t *testing.T) {
	for _, tt := range []struct {
		goos, socket string
		ok           bool
	}{
		{"linux", "/home/ann/.config/porthole/agent/dev1.porthole.sock", true},
		{"darwin", "/Users/ann/" + strings.Repeat("x", maxSocketPath), false},
		{"windows", "//./pipe/porthole-ab-dev1.porthole", true},
		{"windows", `\\.\pipe\porthole-ab-dev1.porthole`, true},
		{"windows", `C:\Users\ann\AppData\Local\porthole\agent\dev1.porthole.sock`, false},
	} {
		err := checkAgentSocket(tt.goos, tt.socket)
		if (err == nil) != tt.ok {
			t.Errorf("checkAgentSocket(%s, %q) = %v; want ok %v", tt.goos, tt.socket, err, tt.ok)
		}
		if err != nil && tt.goos == "windows" && !strings.Contains(err.Error(), "//./pipe/NAME") {
			t.Errorf("checkAgentSocket(windows) = %v; want it to say how a pipe is named", err)
		}
	}
}

// TestAgentPipeSDDL: only the user may open a session agent's pipe.
func TestAgentPipeSDDL(t *testing.T) {
	const sid = "S-1-5-21-1-2-3-1001"
	if got, want := agentPipeSDDL(sid), "D:P(A;;GA;;;"+sid+")"; got != want {
		t.Errorf("agentPipeSDDL = %q; want %q", got, want)
	}
}

func TestPipeInUse(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"access denied", &os.PathError{Op: "open", Path: "//./pipe/x", Err: syscall.Errno(winErrorAccessDenied)}, true},
		{"already exists", &os.PathError{Op: "open", Path: "//./pipe/x", Err: syscall.Errno(winErrorAlreadyExists)}, true},
		{"bad name", &os.PathError{Op: "open", Path: "//./pipe/x", Err: syscall.Errno(123)}, false},
		{"not an errno", errors.New("no"), false},
	} {
		if got := pipeInUse(tt.err); got != tt.want {
			t.Errorf("%s: pipeInUse = %v; want %v", tt.name, got, tt.want)
		}
	}
}
