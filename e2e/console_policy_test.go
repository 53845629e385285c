package e2e

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// TestConsolePolicy drives the console's fleet policy page and its prompt
// for a fresh authenticator code in headless Chromium against a real
// portholed and a real agent (console_policy.cjs has the steps). acme's
// owner sets four-eyes and a 5-minute reauth window in the page (a port
// that is no port is refused before anything is sent); an operator of
// acme sees the rules but no form. bob asks for a session with the CLI and
// waits for a second engineer; the owner's login is then an hour old (its
// code's time is moved back in the database, as an hour passing would),
// so the approval is refused for the fleet's reauth rule and the page asks
// for a code; once it is sent the same approval goes through and bob's
// command runs. axe-core finds no serious or critical violation.
func TestConsolePolicy(t *testing.T) {
	t.Parallel()
	srv, bt := newConsoleServer(t)
	const ownerEmail, operatorEmail = "ann@example.com", "eng@example.com"
	ownerPassword, ownerCode, ownerSecret := browserMember(t, srv, ownerEmail, "owner")
	opPassword, opCode, _ := browserMember(t, srv, operatorEmail, "operator")
	bob := srv.member(t, "bob@example.com", "operator")
	srv.runAgent(t, srv.enroll(t, "kitchen-amp"), "")
	srv.waitPresence(t, "kitchen-amp", true, "after its agent started")

	ps := startConsoleScript(t, srv, bt, "console_policy.cjs",
		"EMAIL="+ownerEmail, "PASSWORD="+ownerPassword, "TOTP="+ownerCode,
		"OP_EMAIL="+operatorEmail, "OP_PASSWORD="+opPassword, "OP_TOTP="+opCode)

	ps.next(t, "POLICY_SET")
	if r := MustRun(t, bob, "", bins.CLI, "fleets", "policy", "show", "acme"); !strings.Contains(r.Stdout, "four-eyes") {
		t.Errorf("the policy set in the page, read by the CLI:\n%s", r.Stdout)
	}
	held := Start(t, bob, bins.CLI, "ssh", "kitchen-amp", "--reason", "ticket 12", "--", "echo", "approved-ran")
	WaitFor(t, 20*time.Second, "bob's session to wait for a second engineer", func() bool {
		if held.Exited() {
			t.Fatalf("porthole ssh ended:\n%s", held.Stderr())
		}
		return strings.Contains(held.Stderr(), "porthole requests approve req_")
	})
	ageLogins(t, srv, ownerEmail, time.Hour)
	// The code the owner types: the next period's, since login's was used.
	next, err := totp.GenerateCode(ownerSecret, time.Now().Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ps.say(next)

	ps.next(t, "APPROVED")
	WaitFor(t, 20*time.Second, "bob's approved session to run", held.Exited)
	if held.Stdout() != "approved-ran\n" {
		t.Errorf("bob's approved session printed %q\n%s", held.Stdout(), held.Stderr())
	}
	ps.next(t, "DONE")
	ps.wait(t)
	ps.checkShots(t, "24-policy", "25-policy-operator", "26-reauth-asked")
}

// ageLogins moves the time every login of email last proved its second
// factor back by d, behind the running server's back, as d passing would.
func ageLogins(t *testing.T, srv *presenceServer, email string, d time.Duration) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(srv.tmp, "data", "porthole.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Exec(`UPDATE tokens SET factor_at = factor_at - $1 WHERE factor_at > 0 AND user_id = (SELECT id FROM users WHERE email = $2)`,
		d.Milliseconds(), email)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		t.Fatalf("%s has no login to age", email)
	}
}
