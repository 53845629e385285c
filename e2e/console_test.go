package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// xssLabel is a label value a device's operator could set: the console
// must show it as these very characters, and run none of it.
const xssLabel = `<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>`

// TestConsole drives the web console in headless Chromium (playwright-core
// with Debian's chromium, as TestConsentPage does) against a real
// portholed and a real agent: an operator of fleet acme logs in with
// password and TOTP using the keyboard alone (after a wrong password the
// page says so and selects it), sees the device online and another
// offline, never sees fleet other's device, filters by name, label and
// status, opens the device's page (with the session the admin had on it),
// and sees it go offline there, live, when its agent stops. A label
// holding HTML shows as text and runs nothing; the browser refuses a
// script's innerHTML from a string (Trusted Types); no
// Content-Security-Policy violation happens; the pages reflow at 200 %
// zoom; axe-core finds no serious or critical accessibility violation on
// any page; logging out leaves no cookie. Screenshots of each state land
// in the test's temporary directory (and in PORTHOLE_SHOTS, such as
// docs/img).
func TestConsole(t *testing.T) {
	t.Parallel()
	testConsole(t, "chromium")
}

// TestConsoleFirefox runs TestConsole's story in Debian's Firefox ESR
// (driven over WebDriver BiDi): the console must work there as well.
// Its screenshots stay in the test's directory.
func TestConsoleFirefox(t *testing.T) {
	t.Parallel()
	testConsole(t, "firefox")
}

func testConsole(t *testing.T, browser string) {
	srv, bt := newConsoleServer(t)
	if browser == "firefox" {
		bt.useFirefox(t)
	}

	// An operator of acme, who has never logged in: the browser's TOTP
	// code is the first of theirs.
	const engineer = "eng@example.com"
	r := MustRun(t, srv.env, "", bins.CLI, "users", "create", engineer)
	password := regexp.MustCompile(`(?m)^password: (\S+)$`).FindStringSubmatch(r.Stdout)
	secret := regexp.MustCompile(`secret=([A-Z2-7]+)`).FindStringSubmatch(r.Stdout)
	if password == nil || secret == nil {
		t.Fatalf("users create printed no password and TOTP secret:\n%s", r.Stdout)
	}
	MustRun(t, srv.env, "", bins.CLI, "users", "grant", engineer, "--fleet", "acme", "--role", "operator")

	// acme: kitchen-amp runs; field-cam-7 never connected. other: a
	// device the engineer must never see.
	amp := srv.runAgent(t, srv.enroll(t, "kitchen-amp"), "")
	srv.enroll(t, "field-cam-7")
	MustRun(t, srv.env, "", bins.CLI, "devices", "label", "field-cam-7", "site=lab", "--fleet", "acme")
	MustRun(t, srv.env, "", bins.CLI, "devices", "label", "kitchen-amp", "site=home", "note="+xssLabel, "--fleet", "acme")
	MustRun(t, srv.env, "", bins.CLI, "fleets", "create", "other")
	r = MustRun(t, srv.env, "", bins.CLI, "enroll-token", "create", "--fleet", "other")
	otherToken := regexp.MustCompile(`--token (\S+)`).FindStringSubmatch(r.Stdout + r.Stderr)
	if otherToken == nil {
		t.Fatalf("no token for fleet other:\n%s%s", r.Stdout, r.Stderr)
	}
	MustRun(t, srv.env, "", bins.Agent, "enroll", "--server", srv.url, "--token", otherToken[1],
		"--fingerprint", srv.fp, "--name", "secret-box", "--state", filepath.Join(srv.tmp, "secret-box"))
	srv.waitPresence(t, "kitchen-amp", true, "after its agent started")
	// A session on kitchen-amp, ended by its engineer, for its page to list.
	MustRun(t, srv.env, "", bins.CLI, "ssh", "kitchen-amp", "--reason", "ticket 4711: the amplifier hums", "--", "true")

	code, err := totp.GenerateCode(secret[1], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ps := startConsoleScript(t, srv, bt, "console.cjs",
		"EMAIL="+engineer, "PASSWORD="+password[1], "TOTP="+code, "XSS_LABEL="+xssLabel)

	ps.next(t, "ONLINE")
	// The device's page is open: stop the agent (as its owner would, or a
	// power cut), and the page must say so by itself.
	stopped := time.Now()
	amp.Stop(t)
	ps.say("stopped")
	ps.next(t, "OFFLINE")
	t.Logf("the page showed kitchen-amp offline %v after its agent was stopped", time.Since(stopped).Round(time.Millisecond))
	ps.next(t, "DONE")
	ps.wait(t)

	ps.checkShots(t, "1-login", "2-devices", "3-filtered", "4-device", "5-device-offline", "6-zoom-200", "7-logged-out")
}

// consoleBuilt reports whether srv's portholed has its console's script
// (the build embeds what `make web` left in web/static/js).
func consoleBuilt(t *testing.T, srv *presenceServer) bool {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 10 * time.Second}
	resp, err := c.Get(srv.url + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

// browserTools are the programs a console test drives a browser with:
// Chromium, unless firefox is set (useFirefox).
type browserTools struct{ node, chromium, firefox, nodePath string }

// useFirefox has the console scripts drive Debian's Firefox ESR instead
// of Chromium; the test is skipped (failed under CI) without it.
func (bt *browserTools) useFirefox(t *testing.T) {
	t.Helper()
	for _, f := range []string{"/usr/bin/firefox-esr", "/usr/bin/firefox"} {
		if _, err := os.Stat(f); err == nil {
			bt.firefox = f
			return
		}
	}
	msg := "this test needs Firefox (apt-get install firefox-esr; scripts/setup.sh does)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// newConsoleServer is a presenceServer whose portholed serves the web
// console, and the browser tools; the test is skipped (failed under CI)
// when the console was not built.
func newConsoleServer(t *testing.T) (*presenceServer, browserTools) {
	t.Helper()
	return newConsoleServerAt(t, "127.0.0.1")
}

// newConsoleServerAt is newConsoleServer reached at host: localhost for a
// test of passkeys, which browsers allow at a host name only.
func newConsoleServerAt(t *testing.T, host string) (*presenceServer, browserTools) {
	t.Helper()
	return newConsoleServerWith(t, host, nil)
}

// newConsoleServerWith is newConsoleServerAt whose server runs the
// configuration config makes (as newPresenceServerAt's config).
func newConsoleServerWith(t *testing.T, host string, config func(data string, apiPort int) string) (*presenceServer, browserTools) {
	t.Helper()
	node, chromium, nodePath := pageTools(t)
	srv := newPresenceServerAt(t, host, "", config)
	if !consoleBuilt(t, srv) {
		msg := "this portholed has no web console: run `make web` (make test does) before go test"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return srv, browserTools{node: node, chromium: chromium, nodePath: nodePath}
}

// startConsoleScript starts the console script name of this directory
// against srv, with the environment every one of them takes (SERVER,
// CHROMIUM, AXE, SHOTS: a directory of the test's) and env.
func startConsoleScript(t *testing.T, srv *presenceServer, bt browserTools, name string, env ...string) *pageScript {
	t.Helper()
	shots := filepath.Join(t.TempDir(), "shots")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	_, here, _, _ := runtime.Caller(0)
	base := []string{"NODE_PATH=" + bt.nodePath, "CHROMIUM=" + bt.chromium, "SHOTS=" + shots, "SERVER=" + srv.url,
		"AXE=" + filepath.Join(bt.nodePath, "axe-core", "axe.min.js")}
	if bt.firefox != "" {
		base = append(base, "BROWSER=firefox", "FIREFOX="+bt.firefox)
	}
	ps := startPageScript(t, bt.node, filepath.Join(filepath.Dir(here), name), append(base, env...)...)
	ps.shotDir = shots
	// docs/img holds Chromium's pictures; another browser's stay here.
	ps.keepShots = bt.firefox != ""
	return ps
}

// checkShots checks that the script took the screenshots want, in order,
// copies them into PORTHOLE_SHOTS (such as docs/img) as console-<name>.png
// when it is set, and logs what the script said.
func (ps *pageScript) checkShots(t *testing.T, want ...string) {
	t.Helper()
	if strings.Join(ps.shots, " ") != strings.Join(want, " ") {
		t.Errorf("screenshots %v; want %v", ps.shots, want)
	}
	copyTo := os.Getenv("PORTHOLE_SHOTS")
	if ps.keepShots {
		copyTo = ""
	}
	for _, name := range want {
		fi, err := os.Stat(filepath.Join(ps.shotDir, name+".png"))
		if err != nil || fi.Size() < 1000 {
			t.Errorf("screenshot %s: %v", name, err)
			continue
		}
		if copyTo != "" {
			copyFile(t, filepath.Join(ps.shotDir, name+".png"), filepath.Join(copyTo, "console-"+name+".png"))
		}
	}
	t.Logf("screenshots in %s; the page script said:\n%s", ps.shotDir, ps.stderr)
}

// pageScript is a node script that drives a browser and talks with the
// test over stdio: it prints "SHOT name" after each screenshot and other
// lines the test waits for, and reads a line each time it waits for the
// test.
type pageScript struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *syncBuffer
	exited chan struct{}
	err    error // cmd.Wait's, once exited is closed
	shots  []string
	// shotDir holds the screenshots (startConsoleScript); keepShots: they
	// are not copied to PORTHOLE_SHOTS.
	shotDir   string
	keepShots bool
}

// browsers holds a place for each browser a page script runs: two at
// once. A browser is the heaviest thing an e2e test starts; more than two
// at once on a 2-core machine (and the console tests run in parallel)
// starve each other past their pages' timeouts.
var browsers = make(chan struct{}, 2)

func startPageScript(t *testing.T, node, script string, env ...string) *pageScript {
	t.Helper()
	browsers <- struct{}{}
	ps := &pageScript{cmd: exec.Command(node, script), lines: make(chan string, 1000), stderr: &syncBuffer{}, exited: make(chan struct{})}
	started := false
	defer func() {
		if !started {
			<-browsers
		}
	}()
	ps.cmd.Env = append(os.Environ(), env...)
	ps.cmd.Stderr = ps.stderr
	var err error
	if ps.stdin, err = ps.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := ps.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := ps.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started = true
	t.Cleanup(func() {
		_ = ps.cmd.Process.Kill()
		<-ps.exited
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			ps.lines <- sc.Text()
		}
		close(ps.lines)
		ps.err = ps.cmd.Wait()
		<-browsers
		close(ps.exited)
	}()
	return ps
}

// next waits for the line starting with prefix (screenshots noted on the
// way) and returns the rest of it.
func (ps *pageScript) next(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-ps.lines:
			if !ok {
				<-ps.exited
				t.Fatalf("the page script ended before %q: %v\n%s", prefix, ps.err, ps.stderr)
			}
			if name, ok := strings.CutPrefix(l, "SHOT "); ok {
				ps.shots = append(ps.shots, name)
				continue
			}
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return strings.TrimSpace(rest)
			}
			t.Fatalf("the page script said %q; want %q\n%s", l, prefix, ps.stderr)
		case <-timeout:
			t.Fatalf("the page script did not say %q in 60 s\n%s", prefix, ps.stderr)
		}
	}
}

func (ps *pageScript) say(s string) { fmt.Fprintln(ps.stdin, s) }

// wait waits for the script to exit, which must be a success.
func (ps *pageScript) wait(t *testing.T) {
	t.Helper()
	ps.stdin.Close()
	select {
	case <-ps.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("the page script did not exit\n%s", ps.stderr)
	}
	if ps.err != nil {
		t.Fatalf("the page script: %v\n%s", ps.err, ps.stderr)
	}
}
