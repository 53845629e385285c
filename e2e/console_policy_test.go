package e2e

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/internal/testhydra"
	"github.com/pquerna/otp/totp"
)

// TestConsolePolicy drives the console's fleet policy page, its prompt
// for a fresh second factor, and passkeys in headless Chromium against a
// real portholed and a real agent (console_policy.cjs has the steps).
// acme's owner sets four-eyes and a 5-minute reauth window in the page (a
// port that is no port is refused before anything is sent); an operator
// of acme sees the rules but no form. bob asks for a session with the CLI
// and waits for a second engineer; the owner's login is then an hour old
// (its code's time is moved back in the database, as an hour passing
// would), so the approval is refused for the fleet's reauth rule and the
// page asks for a code; once it is sent the same approval goes through
// and bob's command runs. Then passkeys, with Chromium's virtual
// authenticator (CDP WebAuthn, CTAP2, internal, resident keys, user
// verified): the owner adds one under Your passkeys, logs out, signs in
// with it alone, approves bob's next session with it as the fresh second
// factor the reauth rule asks for, removes it, and is refused when
// signing in with it again; the audit log has each step. The server is
// reached at localhost: browsers allow no passkeys at an IP address.
// Last, single sign-on in the browser against a real provider (ory/hydra,
// internal/testhydra): "Sign in with SSO" on the login page, the
// provider's form, and back in the console as the provider's user with
// the role their group maps to. axe-core finds no serious or critical
// violation.
func TestConsolePolicy(t *testing.T) {
	t.Parallel()
	idp := testhydra.Start(t)
	const ssoUser, ssoEmail = "sso-eng", "sso-eng@example.com"
	idp.SetUser(ssoUser, testhydra.User{Email: ssoEmail, Groups: []string{"support"}})
	srv, bt := newConsoleServerWith(t, "localhost", func(data string, port int) string {
		base, err := os.ReadFile(filepath.Join(data, "portholed.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		id, secret := idp.Client(t, fmt.Sprintf("https://localhost:%d/api/v1/sso/callback", port))
		return string(base) + fmt.Sprintf("\nsso:\n  issuer: %s\n  client_id: %s\n  client_secret: %s\n  roles:\n    - {group: support, fleet: acme, role: operator}\n",
			idp.Issuer, id, secret)
	})
	const ownerEmail, operatorEmail = "ann@example.com", "eng@example.com"
	ownerPassword, ownerCode, ownerSecret := browserMember(t, srv, ownerEmail, "owner")
	opPassword, opCode, _ := browserMember(t, srv, operatorEmail, "operator")
	bob := srv.member(t, "bob@example.com", "operator")
	srv.runAgent(t, srv.enroll(t, "kitchen-amp"), "")
	srv.waitPresence(t, "kitchen-amp", true, "after its agent started")

	ps := startConsoleScript(t, srv, bt, "console_policy.cjs",
		"EMAIL="+ownerEmail, "PASSWORD="+ownerPassword, "TOTP="+ownerCode,
		"OP_EMAIL="+operatorEmail, "OP_PASSWORD="+opPassword, "OP_TOTP="+opCode,
		"SSO_USER="+ssoUser, "SSO_EMAIL="+ssoEmail)

	ps.next(t, "POLICY_SET")
	if r := MustRun(t, bob, "", bins.CLI, "fleets", "policy", "show", "acme"); !strings.Contains(r.Stdout, "four-eyes") {
		t.Errorf("the policy set in the page, read by the CLI:\n%s", r.Stdout)
	}
	held := fourEyesSession(t, bob, "approved-ran")
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

	// Passkeys: the owner signed in with one; bob's next session waits,
	// and the owner's passkey login is an hour old.
	ps.next(t, "PASSKEY_SIGNED_IN")
	passkeyStart := time.Now()
	held = fourEyesSession(t, bob, "passkey-approved-ran")
	ageLogins(t, srv, ownerEmail, time.Hour)
	ps.say("aged")
	ps.next(t, "APPROVED_WITH_PASSKEY")
	WaitFor(t, 20*time.Second, "bob's session approved with a passkey to run", held.Exited)
	if held.Stdout() != "passkey-approved-ran\n" {
		t.Errorf("bob's session approved with a passkey printed %q\n%s", held.Stdout(), held.Stderr())
	}
	t.Logf("the Go test's part of the passkey story took %v", time.Since(passkeyStart).Round(time.Millisecond))
	ps.next(t, "SSO_SIGNED_IN")
	// The provider's user is one here now, with the role their group maps to.
	r := MustRun(t, srv.env, "", bins.CLI, "users")
	if out := r.Stdout + r.Stderr; !regexp.MustCompile(regexp.QuoteMeta(ssoEmail) + `\s+no\s+acme:operator\s`).MatchString(out) {
		t.Errorf("the users after %s signed in with SSO:\n%s", ssoEmail, out)
	}
	ps.next(t, "DONE")
	ps.wait(t)
	ps.checkShots(t, "24-policy", "25-policy-operator", "26-reauth-asked", "27-passkeys", "28-reauth-passkey", "29-passkey-removed")
	// In order, among others (the policy's refusal, the approval): the
	// removed passkey's sign-in names no one, for it is no one's.
	want := []string{"passkey_registered", "token_revoked", "login_succeeded passkey", "reauth_succeeded passkey", "passkey_removed",
		"token_revoked", "login_failed passkey unknown_passkey"}
	got := auditSince(t, srv, "passkey_registered", ownerEmail, "passkey")
	for i := 0; len(want) > 0 && i < len(got); i++ {
		if got[i] == want[0] {
			want = want[1:]
		}
	}
	if len(want) > 0 {
		t.Errorf("the owner's audit events from the passkey's registration on:\n%s\nlack, in order, %v", strings.Join(got, "\n"), want)
	}
}

// fourEyesSession starts `porthole ssh` on kitchen-amp running
// echo say, as env's user, and waits until it waits for a second engineer.
func fourEyesSession(t *testing.T, env Env, say string) *Proc {
	t.Helper()
	held := Start(t, env, bins.CLI, "ssh", "kitchen-amp", "--reason", "ticket 12", "--", "echo", say)
	WaitFor(t, 20*time.Second, "bob's session to wait for a second engineer", func() bool {
		if held.Exited() {
			t.Fatalf("porthole ssh ended:\n%s", held.Stderr())
		}
		return strings.Contains(held.Stderr(), "porthole requests approve req_")
	})
	return held
}

// auditSince lists the audit events of the actors named names, from the
// first of kind from on, as "kind method reason" (the method and reason
// of those that have them), read from the server's database.
func auditSince(t *testing.T, srv *presenceServer, from string, names ...string) []string {
	t.Helper()
	rows, err := serverDB(t, srv).Query(`SELECT kind, detail, actor_name FROM audit_events
		WHERE seq >= (SELECT MIN(seq) FROM audit_events WHERE kind = $1) ORDER BY seq`, from)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var kind, detail, actor string
		if err := rows.Scan(&kind, &detail, &actor); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(names, actor) {
			continue
		}
		var d map[string]string
		if err := json.Unmarshal([]byte(detail), &d); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.TrimSpace(strings.Join(strings.Fields(kind+" "+d["method"]+" "+d["reason"]), " ")))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// serverDB opens srv's SQLite database behind the running server's back.
func serverDB(t *testing.T, srv *presenceServer) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(srv.tmp, "data", "porthole.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// ageLogins moves the time every login of email last proved its second
// factor back by d, behind the running server's back, as d passing would.
func ageLogins(t *testing.T, srv *presenceServer, email string, d time.Duration) {
	t.Helper()
	res, err := serverDB(t, srv).Exec(`UPDATE tokens SET factor_at = factor_at - $1 WHERE factor_at > 0 AND user_id = (SELECT id FROM users WHERE email = $2)`,
		d.Milliseconds(), email)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		t.Fatalf("%s has no login to age", email)
	}
}
