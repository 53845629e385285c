package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/ssh"
)

// xssReason is what an owner or an engineer could write as a reason: the
// console shows it as these very characters and runs none of it.
const xssReason = `<img src=x onerror="window.__xss=3"><b>hums</b>`

// browserUser makes a user for the browser (with args, such as a role or
// --admin) and returns their password, first TOTP code and TOTP secret.
func browserUser(t *testing.T, srv *presenceServer, email string, grant ...string) (password, code, secret string) {
	t.Helper()
	r := MustRun(t, srv.env, "", bins.CLI, append([]string{"users", "create", email}, grant...)...)
	pw := regexp.MustCompile(`(?m)^password: (\S+)$`).FindStringSubmatch(r.Stdout)
	sec := regexp.MustCompile(`secret=([A-Z2-7]+)`).FindStringSubmatch(r.Stdout)
	if pw == nil || sec == nil {
		t.Fatalf("users create printed no password and TOTP secret:\n%s", r.Stdout)
	}
	c, err := totp.GenerateCode(sec[1], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return pw[1], c, sec[1]
}

// browserMember is browserUser with a role in fleet acme.
func browserMember(t *testing.T, srv *presenceServer, email, role string) (password, code, secret string) {
	t.Helper()
	password, code, secret = browserUser(t, srv, email)
	MustRun(t, srv.env, "", bins.CLI, "users", "grant", email, "--fleet", "acme", "--role", role)
	return password, code, secret
}

// TestConsolePages drives the console's support queue, sessions, audit log
// and enrollment tokens pages in headless Chromium against a real
// portholed and real agents (console_pages.cjs has the steps). Fleet acme
// has the four-eyes rule: bob (an operator, with the CLI) asks for two
// sessions on kitchen-amp; the browser's operator approves one (bob's
// command runs) and denies the other (bob's ssh ends), and sees no
// approve or deny for the session they asked for themselves. help-desk's
// owner asks for help: the operator's claim, made after bob took it, is
// refused in the API's words; then they close it. The sessions page tells
// why each ended and closes the open one; the audit page checks the chain
// of what it shows and catches an event altered on its way; an
// administrator walks the whole chain and gets its head; a token is made
// and revoked. Reasons holding HTML show as text; axe-core finds no
// serious or critical violation on any page, at 1100 px or 640 px.
func TestConsolePages(t *testing.T) {
	t.Parallel()
	srv, bt := newConsoleServer(t)
	const engineer, admin = "eng@example.com", "root@example.com"
	password, code, _ := browserMember(t, srv, engineer, "operator")
	adminPassword, adminCode, _ := browserUser(t, srv, admin, "--admin")
	bob := srv.member(t, "bob@example.com", "operator")

	srv.runAgent(t, srv.enroll(t, "kitchen-amp"), "")
	sock, _, _ := srv.consentDevice(t, "help-desk", "consent: manual\n")
	srv.waitPresence(t, "kitchen-amp", true, "after its agent started")
	if r := owner(t, srv, sock, "request", "--reason", xssReason, "--for", "10m"); r.Err != nil {
		t.Fatalf("porthole-agent request: %v\n%s", r.Err, r.Stderr)
	}
	MustRun(t, srv.env, "", bins.CLI, "fleets", "policy", "set", "acme", "--four-eyes", "on")
	held := func(reason, command string) *Proc {
		p := Start(t, bob, bins.CLI, "ssh", "kitchen-amp", "--reason", reason, "--", "echo", command)
		WaitFor(t, 20*time.Second, "bob's session to wait for a second engineer", func() bool {
			if p.Exited() {
				t.Fatalf("porthole ssh ended:\n%s", p.Stderr())
			}
			return strings.Contains(p.Stderr(), "porthole requests approve req_")
		})
		return p
	}
	approved := held(xssReason, "approved-ran")
	denied := held("the second one", "denied-ran")

	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}

	ps := startConsoleScript(t, srv, bt, "console_pages.cjs",
		"EMAIL="+engineer, "PASSWORD="+password, "TOTP="+code,
		"ADMIN_EMAIL="+admin, "ADMIN_PASSWORD="+adminPassword, "ADMIN_TOTP="+adminCode,
		"XSS_REASON="+xssReason, "PUBKEY="+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))))

	// The queue is on the screen: bob takes the owner's request first.
	request := ps.next(t, "QUEUE")
	MustRun(t, bob, "", bins.CLI, "requests", "claim", request)
	ps.say("taken")

	ps.next(t, "APPROVED")
	WaitFor(t, 20*time.Second, "bob's approved session to run", approved.Exited)
	if approved.Stdout() != "approved-ran\n" {
		t.Errorf("bob's approved session printed %q\n%s", approved.Stdout(), approved.Stderr())
	}
	ps.next(t, "DENIED")
	WaitFor(t, 20*time.Second, "bob's denied session to end", denied.Exited)
	if strings.Contains(denied.Stdout(), "denied-ran") {
		t.Errorf("bob's denied session ran: %q", denied.Stdout())
	}
	ps.next(t, "DONE")
	ps.wait(t)

	ps.checkShots(t, "8-queue", "9-queue-refused", "10-sessions", "11-audit", "12-audit-tampered", "13-audit-verified", "14-tokens", "15-queue-zoom-200")
}
