package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"net/http"
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
// kitchen-amp runs a command in a terminal that prints a marker and a
// line of HTML; once the device uploaded its recording, an operator
// replays it from the sessions page (and finds it from the device's
// page): the marker plays, the HTML shows as text and runs nothing, the
// events list the process and its exit. The operator, not an
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

	// A recorded session: a command in a terminal, as `porthole ssh -t`
	// runs one.
	const marker = "replay-marker-7731"
	eng := newEngineer(t, srv)
	resp := eng.open(t, "kitchen-amp")
	ses := resp.Session.ID
	client, err := eng.dial(t, resp)
	if err != nil {
		t.Fatalf("reaching kitchen-amp: %v", err)
	}
	s, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	out, err := s.CombinedOutput("printf '\\033[1;32m%s\\033[0m\\n' " + marker + "; sleep 0.3; printf '%s\\n' '" + replayXSS + "'")
	if err != nil || !strings.Contains(string(out), marker) {
		t.Fatalf("the recorded command: %v %q", err, out)
	}
	client.Close()
	if _, err := eng.api.CloseSession(t.Context(), ses); err != nil {
		t.Logf("closing %s: %v", ses, err)
	}
	WaitFor(t, 30*time.Second, "the session's recording complete on the server", func() bool {
		r, err := eng.api.Recording(t.Context(), ses)
		return err == nil && r.Complete
	})

	ps := startConsoleScript(t, srv, bt, "console_replay.cjs",
		"EMAIL="+engineer, "PASSWORD="+password, "TOTP="+code,
		"ADMIN_EMAIL="+admin, "ADMIN_PASSWORD="+adminPassword, "ADMIN_TOTP="+adminCode,
		"SESSION="+ses, "MARKER="+marker, "XSS="+replayXSS)

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
