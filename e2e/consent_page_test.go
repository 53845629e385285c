package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/apitype"
)

// pageTools finds what the page tests need: node, Debian's chromium
// (scripts/setup.sh installs them) and playwright-core (make web installs
// the web console's locked npm tree, which holds it, in web/node_modules).
// Without them the test is skipped, unless CI=true, where it must run.
func pageTools(t *testing.T) (node, chromium, nodePath string) {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	nodePath = filepath.Join(filepath.Dir(filepath.Dir(here)), "web", "node_modules")
	var missing []string
	node, err := exec.LookPath("node")
	if err != nil {
		missing = append(missing, "node")
	}
	for _, c := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(c); err == nil {
			chromium = c
			break
		}
	}
	if chromium == "" {
		missing = append(missing, "chromium (apt-get install chromium)")
	}
	if _, err := os.Stat(filepath.Join(nodePath, "playwright-core", "package.json")); err != nil {
		missing = append(missing, "playwright-core in "+nodePath+" (make web)")
	}
	if len(missing) > 0 {
		msg := "the page tests need " + strings.Join(missing, ", ")
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return node, chromium, nodePath
}

// pageURL is the agent's local page, as its owner's status tells it.
func pageURL(t *testing.T, s *presenceServer, sock string) string {
	t.Helper()
	var st struct{ Page string }
	if err := json.Unmarshal([]byte(owner(t, s, sock, "status", "--json").Stdout), &st); err != nil || st.Page == "" {
		t.Fatalf("no page in the owner's status: %v", err)
	}
	return st.Page
}

// TestConsentPage drives the owner's local page in headless Chromium:
// request support and read the code, see the engineer who used it, end the
// session; then approve an engineer in approve mode. Each state leaves a
// screenshot in the test's temporary directory (and in PORTHOLE_SHOTS, if
// set, such as docs/img).
func TestConsentPage(t *testing.T) {
	t.Parallel()
	node, chromium, nodePath := pageTools(t)
	srv := newPresenceServer(t, sessionConfig(t, "15m"))
	manualSock, _, _ := srv.consentDevice(t, "amp1", "consent: manual\nlocal_ui: 127.0.0.1:0\n")
	approveSock, _, _ := srv.consentDevice(t, "lab1", "consent: approve\nlocal_ui: 127.0.0.1:0\n")
	eng := newEngineer(t, srv)

	shots := filepath.Join(t.TempDir(), "shots")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	_, here, _, _ := runtime.Caller(0)
	cmd := exec.Command(node, filepath.Join(filepath.Dir(here), "consent_page.cjs"))
	cmd.Env = append(os.Environ(), "NODE_PATH="+nodePath, "CHROMIUM="+chromium, "SHOTS="+shots,
		"MANUAL_URL="+pageURL(t, srv, manualSock), "APPROVE_URL="+pageURL(t, srv, approveSock))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	lines := make(chan string, 1000) // never blocks the reader: the script says a few lines
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		waitErr = cmd.Wait()
		close(exited)
	}()
	var shotNames []string
	next := func(prefix string) string {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					<-exited
					t.Fatalf("the page script ended before %q: %v\n%s", prefix, waitErr, stderr.String())
				}
				if name, ok := strings.CutPrefix(l, "SHOT "); ok {
					shotNames = append(shotNames, name)
					continue
				}
				if strings.HasPrefix(l, prefix) {
					return strings.TrimSpace(strings.TrimPrefix(l, prefix))
				}
				t.Fatalf("the page script said %q; want %q", l, prefix)
			case <-time.After(60 * time.Second):
				t.Fatalf("the page script did not say %q in 60 s\n%s", prefix, stderr.String())
			}
		}
	}
	say := func(s string) { fmt.Fprintln(stdin, s) }

	// The page's code lets the engineer in.
	code := next("CODE ")
	if !supportCode.MatchString(code) {
		t.Fatalf("the page showed %q; want a support code", code)
	}
	resp := eng.open(t, "amp1")
	client, _, err := eng.dialCode(t, resp, code)
	if err != nil {
		t.Fatalf("the page's code: %v", err)
	}
	say("connected")
	// End session now: the engineer is out within a second.
	next("REVOKED")
	waited := make(chan error, 1)
	go func() { waited <- client.Wait() }()
	select {
	case <-waited:
	case <-time.After(time.Second):
		t.Error("the engineer was still connected a second after End session now")
	}
	if ses := eng.waitState(t, resp.Session.ID, apitype.SessionClosed); ses.CloseReason != "revoked" {
		t.Errorf("the session after End session now: %+v", ses)
	}

	// Approve mode: the page shows who asks, and its Approve lets them in.
	next("WAITING approve")
	resp = eng.create(t, "lab1", "ticket 42")
	say("asking")
	next("APPROVED")
	if ses := eng.waitState(t, resp.Session.ID, apitype.SessionActive); ses.State != apitype.SessionActive {
		t.Fatalf("the session approved on the page: %+v", ses)
	}
	client, _, err = eng.dialCode(t, resp, "")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	say("connected")
	next("DONE")
	stdin.Close()
	<-exited
	if waitErr != nil {
		t.Fatalf("the page script: %v\n%s", waitErr, stderr.String())
	}

	want := []string{"1-no-window", "2-support-code", "3-engineer-connected", "4-session-ended", "5-approval-asked", "6-approved-connected"}
	if strings.Join(shotNames, " ") != strings.Join(want, " ") {
		t.Errorf("screenshots %v; want %v", shotNames, want)
	}
	copyTo := os.Getenv("PORTHOLE_SHOTS")
	for _, name := range want {
		fi, err := os.Stat(filepath.Join(shots, name+".png"))
		if err != nil || fi.Size() < 1000 {
			t.Errorf("screenshot %s: %v", name, err)
			continue
		}
		if copyTo != "" {
			copyFile(t, filepath.Join(shots, name+".png"), filepath.Join(copyTo, "consent-page-"+name+".png"))
		}
	}
	t.Logf("screenshots in %s", shots)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
