package agentcmd

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/agent/agentowner"
	"github.com/porthole/porthole/agent/internal/agenttest"
)

// socketPath is a path for an agent's socket, short enough for one.
func socketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ph")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "agent.sock")
}

// runAgent runs `porthole-agent run` with config until the test ends, and
// waits until it takes the owner's commands.
func runAgent(t *testing.T, config string) {
	t.Helper()
	dir, brk := enrolled(t)
	states := brk.StateLog("porthole/v1/lab/dev1/state")
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &agenttest.SyncWriter{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"run", "--state", dir, "--config", writeConfig(t, config)},
			IO{In: strings.NewReader(""), Out: &strings.Builder{}, Err: stderr})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(agenttest.WaitTimeout):
			t.Error("run did not stop")
		}
	})
	stderr.WaitFor(t, "taking the owner's commands on ")
	states.Expect(t, "online")
}

var codeLine = regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}\n$`)

// TestOwnerCommands: request, status, approve, deny and revoke against a
// running agent, through its socket as named in the owner's config.
func TestOwnerCommands(t *testing.T) {
	t.Parallel()
	sock := socketPath(t)
	config := writeConfig(t, "socket: "+sock+"\n")
	runAgent(t, "log_level: warn\nsocket: "+sock+"\n")
	owner := func(args ...string) (string, string, error) {
		return run(t, nil, append(args, "--config", config)...)
	}

	out, _, err := owner("status")
	if err != nil || !strings.Contains(out, "dev1 (fleet lab), consent: manual") || !strings.Contains(out, "Support window: closed") {
		t.Fatalf("status: %q, %v", out, err)
	}
	code, stderr, err := owner("request", "--reason", "the amp hums", "--for", "30m")
	if err != nil || !codeLine.MatchString(code) {
		t.Fatalf("request: stdout %q, stderr %q, %v; want the code alone on stdout", code, stderr, err)
	}
	if !strings.Contains(stderr, "Support code for dev1") || !strings.Contains(stderr, "Five wrong codes close it") {
		t.Errorf("request's words: %q", stderr)
	}
	// The fake API here has no support queue: the owner is told.
	if !strings.Contains(stderr, "could not be told yet") {
		t.Errorf("request with a server that cannot take it: %q", stderr)
	}
	again, stderr, err := owner("request")
	if err != nil || again != code || !strings.Contains(stderr, "already open") {
		t.Errorf("request again: %q, %q, %v; want the same code", again, stderr, err)
	}
	out, _, err = owner("status", "--json")
	var st agentowner.Status
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.Window == nil || st.Window.Code+"\n" != code ||
		st.Window.Reason != "the amp hums" {
		t.Fatalf("status --json: %q, %v", out, err)
	}
	out, _, _ = owner("status")
	if !strings.Contains(out, "code "+strings.TrimSpace(code)) || !strings.Contains(out, "Sessions: none") {
		t.Errorf("status with a window: %q", out)
	}
	if _, _, err := owner("approve"); err == nil || !strings.Contains(err.Error(), "no session is waiting") {
		t.Errorf("approve with nothing waiting: %v", err)
	}
	if _, _, err := owner("deny", "ses_nothing"); err == nil || !strings.Contains(err.Error(), `called "ses_nothing"`) {
		t.Errorf("deny of an unknown session: %v", err)
	}
	out, _, err = owner("revoke")
	if err != nil || out != "ended 0 session(s) and closed the support window\n" {
		t.Errorf("revoke: %q, %v", out, err)
	}
	out, _, err = owner("revoke")
	if err != nil || !strings.Contains(out, "nothing was open") {
		t.Errorf("revoke again: %q, %v", out, err)
	}
	if _, _, err := owner("ui"); err == nil || !strings.Contains(err.Error(), "serves no local page: set local_ui") {
		t.Errorf("ui with no local_ui: %v", err)
	}
	newCode, _, err := owner("request")
	if err != nil || newCode == code {
		t.Errorf("a new window's code %q (%v); want another than %q", newCode, err, code)
	}
	if _, _, err := run(t, nil, "status", "--socket", filepath.Join(filepath.Dir(sock), "other.sock")); err == nil ||
		!strings.Contains(err.Error(), "agent is not running") {
		t.Errorf("status with no agent there: %v", err)
	}
}

// TestOwnerUI: porthole-agent ui prints a link that opens the local page
// once; the page's plain address opens nothing.
func TestOwnerUI(t *testing.T) {
	t.Parallel()
	sock := socketPath(t)
	runAgent(t, "log_level: warn\nsocket: "+sock+"\nlocal_ui: 127.0.0.1:0\n")
	link, _, err := run(t, nil, "ui", "--socket", sock)
	link = strings.TrimSpace(link)
	base, _, ok := strings.Cut(link, "/login?k=")
	if err != nil || !ok || !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("ui: %q, %v; want a login link", link, err)
	}
	fetch := func(c *http.Client, url string) (int, string) {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := fetch(http.DefaultClient, base+"/"); status != http.StatusForbidden || !strings.Contains(body, "porthole-agent ui") {
		t.Errorf("the page without the link: %d %q", status, body)
	}
	jar, _ := cookiejar.New(nil)
	if status, body := fetch(&http.Client{Jar: jar}, link); status != http.StatusOK || !strings.Contains(body, "porthole-token") {
		t.Errorf("the page from ui's link: %d %q", status, body)
	}
	if status, _ := fetch(http.DefaultClient, link); status != http.StatusForbidden {
		t.Errorf("ui's link a second time: %d; want 403", status)
	}
	out, _, err := run(t, nil, "status", "--socket", sock)
	if err != nil || !strings.Contains(out, "Local page: "+base+"/login?k=") {
		t.Errorf("status: %q, %v; want a link to the page", out, err)
	}
}

// TestRequestInAutoMode: no code, but the request is still made.
func TestRequestInAutoMode(t *testing.T) {
	t.Parallel()
	sock := socketPath(t)
	runAgent(t, "consent: auto\nsocket: "+sock+"\n")
	out, stderr, err := run(t, nil, "request", "--socket", sock)
	if err != nil || out != "" || !strings.Contains(stderr, "No code is needed") {
		t.Errorf("request in auto mode: %q, %q, %v", out, stderr, err)
	}
	if _, _, err := run(t, nil, "request", "--socket", sock, "--for", "25h"); err == nil {
		t.Error("a 25-hour window was opened")
	}
}

func TestTwoAgentsOneSocket(t *testing.T) {
	t.Parallel()
	sock := socketPath(t)
	runAgent(t, "socket: "+sock+"\n")
	dir, _ := enrolled(t)
	_, _, err := run(t, nil, "run", "--state", dir, "--config", writeConfig(t, "socket: "+sock+"\n"))
	if err == nil || !strings.Contains(err.Error(), "already serving its owner on "+sock) {
		t.Errorf("a second agent on the same socket: %v", err)
	}
}

func TestConfigKeysOfConsent(t *testing.T) {
	dir, _ := enrolled(t)
	for _, tt := range []struct{ yaml, errHas string }{
		{"consent: trusting\n", `consent "trusting" must be manual, approve or auto`},
		{"approval_timeout: 1h\n", "approval_timeout must be between"},
		{"socket: relative.sock\n", "must be an absolute path"},
		{"local_ui: 0.0.0.0:7780\n", "listens only on the device itself"},
		{"local_ui: 192.168.1.5:7780\n", "listens only on the device itself"},
	} {
		if _, _, err := run(t, nil, "run", "--state", dir, "--config", writeConfig(t, tt.yaml)); err == nil || !strings.Contains(err.Error(), tt.errHas) {
			t.Errorf("run with %q: %v; want %q", tt.yaml, err, tt.errHas)
		}
	}
}
