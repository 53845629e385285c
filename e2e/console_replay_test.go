package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/apitype"
)

// replayXSS is what a device's terminal printed in a recorded session:
// the replay shows it as these very characters and runs none of it.
const replayXSS = `<img src=x onerror="window.__xss=5"><script>window.__xss=6</script>`

// TestConsoleReplay drives the console's replay and its users and fleet
// roles page in headless Chromium against a real portholed and a real
// agent (console_replay.cjs has the steps). An engineer's session on
// kitchen-amp runs two commands in terminals: one prints a red word, a
// marker, a line of HTML and escape sequences a page could be tricked by
// (hyperlinks, a clipboard write, a title, DCS), the other a full-screen
// program's screen. Once the device uploaded its recording (and the test
// put a hostile cast and a file that is none beside it, as a compromised
// device could), an operator replays it from the sessions page, in
// xterm.js on a page of its own: the word is drawn red, the HTML shows as
// text and runs nothing, the links are text that opens nothing, the
// clipboard and the title are untouched; the events list the processes
// and their exit, and each shows the terminal at its moment (the
// full-screen program's end); the slider's keys seek; the hostile cast
// plays with no CSP violation and fetches nothing, and the file that is
// no cast is said to be none. The device's page links to the replay, and
// the replay's first address leads to it. The operator, not an
// administrator, has no Users page, and opening it shows the API's
// refusal. An administrator creates a user (the password and TOTP secret
// shown once, which the test logs in with), is refused a second user of
// that email in the API's words, gives the user a role in acme, changes
// it and removes it. axe-core finds no serious or critical violation.
func TestConsoleReplay(t *testing.T) {
	t.Parallel()
	srv, bt := newConsoleServer(t)
	const engineer, admin = "eng@example.com", "root@example.com"
	password, code, _ := browserMember(t, srv, engineer, "operator")
	adminPassword, adminCode, _ := browserUser(t, srv, admin, "--admin")

	srv.runAgent(t, srv.enroll(t, "kitchen-amp"), "")
	srv.waitPresence(t, "kitchen-amp", true, "after its agent started")

	// A recorded session: two commands in terminals, as `porthole ssh -t`
	// runs them. The first prints a red word and a coloured marker, a line
	// of HTML, two hyperlinks (OSC 8: https: and javascript:), a clipboard
	// write (OSC 52), a title (OSC 0) and a status request (DCS); the
	// second a line, then a full-screen program's screen (the alternate
	// screen, text placed by cursor moves) that it never leaves.
	const marker = "replay-marker-7731"
	eng := newEngineer(t, srv)
	resp := eng.open(t, "kitchen-amp")
	ses := resp.Session.ID
	client, err := eng.dial(t, resp)
	if err != nil {
		t.Fatalf("reaching kitchen-amp: %v", err)
	}
	for _, c := range []struct{ command, want string }{
		{`printf '\033[31mRED\033[0m \033[1;32m%s\033[0m\n' ` + marker + `; sleep 0.3; printf '%s\n' '` + replayXSS + `'; ` +
			`printf '\033]8;;https://example.com/osc8\007link-https\033]8;;\007 \033]8;;javascript:window.__xss=7\007link-js\033]8;;\007\n'; ` +
			`printf '\033]52;c;cmVwbGF5LXB3bmVk\007\033]0;replay-pwned-title\007\033P1$qm\033\\'`, marker},
		{`printf 'normal-screen-text\n'; sleep 0.3; printf '\033[?1049h\033[H\033[2J\033[5;10Hfull-screen\033[1;1H\033[7mtop-left\033[0m'`, "full-screen"},
	} {
		s, err := client.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
			t.Fatal(err)
		}
		if out, err := s.CombinedOutput(c.command); err != nil || !strings.Contains(string(out), c.want) {
			t.Fatalf("the recorded command %s: %v %q", c.command, err, out)
		}
	}
	client.Close()
	if _, err := eng.api.CloseSession(t.Context(), ses); err != nil {
		t.Logf("closing %s: %v", ses, err)
	}
	WaitFor(t, 30*time.Second, "the session's recording complete on the server", func() bool {
		r, err := eng.api.Recording(t.Context(), ses)
		return err == nil && r.Complete
	})

	// Two more files beside the session's recording, as a compromised
	// device could upload them (the page script adds them to the list the
	// API answers): a hostile cast, and one that is not a cast at all.
	dirs, err := filepath.Glob(filepath.Join(filepath.Dir(srv.config), "recordings", "*", ses))
	if err != nil || len(dirs) != 1 {
		t.Fatalf("the recording's directory on the server: %v %v", dirs, err)
	}
	const hostile, broken = "0003-pty.cast", "0004-exec.cast"
	for name, data := range map[string]string{hostile: hostileCast(), broken: "{not json\n[0.1, \"o\", \"x\"]\n"} {
		if err := os.WriteFile(filepath.Join(dirs[0], name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	ps := startConsoleScript(t, srv, bt, "console_replay.cjs",
		"EMAIL="+engineer, "PASSWORD="+password, "TOTP="+code,
		"ADMIN_EMAIL="+admin, "ADMIN_PASSWORD="+adminPassword, "ADMIN_TOTP="+adminCode,
		"SESSION="+ses, "MARKER="+marker, "XSS="+replayXSS, "HOSTILE="+hostile, "BROKEN="+broken)

	// The user the administrator made: what the page showed once logs in.
	created := strings.Fields(ps.next(t, "CREATED"))
	if len(created) != 3 {
		t.Fatalf("CREATED %v", created)
	}
	if st := loginStatus(t, srv, created[0], created[1], created[2]); st != http.StatusOK {
		t.Errorf("logging in as the user the console created: %d", st)
	}
	ps.say("logged-in")

	// The role the page set, as the API tells it.
	ps.next(t, "ROLE")
	ms, err := eng.api.Members(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	found := ""
	for _, m := range ms {
		if m.Email == created[0] {
			found = m.Role
		}
	}
	if found != "operator" {
		t.Errorf("%s's role in acme is %q after the page changed it; want operator (%+v)", created[0], found, ms)
	}
	ps.say("checked")

	// The secrets the reset showed log in; once deleted, they do not.
	reset := strings.Fields(ps.next(t, "RESET"))
	if len(reset) != 3 || reset[2] == created[2] {
		t.Fatalf("RESET %v", reset)
	}
	if st := loginStatus(t, srv, reset[0], reset[1], reset[2]); st != http.StatusOK {
		t.Errorf("logging in with the secrets of the reset: %d", st)
	}
	ps.say("logged-in")
	ps.next(t, "DELETED")
	if r := MustRun(t, srv.env, "", bins.CLI, "users"); strings.Contains(r.Stdout, reset[0]) {
		t.Errorf("the user the console deleted is still listed:\n%s", r.Stdout)
	}
	ps.say("checked")
	ps.next(t, "DONE")
	ps.wait(t)

	ps.checkShots(t, "16-replay", "17-replay-zoom-200", "18-users-refused", "19-users-created", "20-fleet-roles")
}

// hostileCast is a recording no recorder of ours writes: a terminal of
// 100000×100000; every sequence a page could be tricked by (clipboard
// writes, hyperlinks to javascript: and https:, titles, an inline image,
// status and size reports, mouse reporting, DCS); HTML; lines that are no
// JSON or no event; a resize past any screen; and a 10 MB line. It ends
// resized to 100×30, with the line "hostile-end".
func hostileCast() string {
	var b strings.Builder
	line := func(v any) {
		j, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		b.Write(j)
		b.WriteByte('\n')
	}
	o := func(t float64, data string) { line([]any{t, "o", data}) }
	line(map[string]any{"version": 2, "width": 100000, "height": 100000, "timestamp": 1})
	o(0.1, "\x1b]52;c;"+base64.StdEncoding.EncodeToString([]byte("hostile-clipboard"))+"\a\x1b]52;p;aG9zdGlsZQ==\x1b\\"+
		"\x1b]0;hostile-title\a\x1b]2;hostile-title-2\x1b\\")
	o(0.2, "\x1b]8;;javascript:window.__xss=8\ajs-link\x1b]8;;\a \x1b]8;;https://example.com/hostile\ahttps-link\x1b]8;;\a\r\n")
	o(0.3, "\x1bP1$qm\x1b\\\x1bPq#0;2;0;0;0#1~~\x1b\\\x1b]1337;File=inline=1:aGVsbG8=\a"+
		"<img src=x onerror=window.__xss=9><script>window.__xss=10</script>\r\n")
	o(0.4, "\x1b[6n\x1b[c\x1b[>c\x1b]11;?\a\x1b[21t\x1b[8;9999;9999t\x1b[?1000h")
	b.WriteString("{not json\n[0.5, \"o\"\n[0.5, 5, \"x\"]\n")
	line([]any{0.5, "r", "999999x999999"})
	o(0.6, strings.Repeat("A", 10<<20))
	line([]any{0.65, "r", "100x30"})
	o(0.7, "\r\nhostile-end\r\n")
	return b.String()
}

// loginStatus logs in to srv's API with email, password and the TOTP
// code of secret for the next period (one a login earlier in this period
// did not use), and returns the answer's status.
func loginStatus(t *testing.T, srv *presenceServer, email, password, secret string) int {
	t.Helper()
	code, err := totp.GenerateCode(secret, time.Now().Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(apitype.LoginRequest{Email: email, Password: password, TOTP: code})
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 10 * time.Second}
	lr, err := c.Post(srv.url+"/api/v1/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	lr.Body.Close()
	return lr.StatusCode
}
