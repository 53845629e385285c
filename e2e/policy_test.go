package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/internal/testnet"
)

// A fleet's policy, end to end with the real binaries: its owner sets it
// with the CLI, the server refuses what it does not allow in words naming
// the rule and who can change it, the device applies what the signed open
// command carries on top of its owner's config, and a second engineer
// approves sessions under the four-eyes rule, never the one who asked.

// member makes a user with role in acme and logs them in with the CLI, in
// an environment (a config directory) of their own.
func (s *presenceServer) member(t *testing.T, email, role string) Env {
	t.Helper()
	r := MustRun(t, s.env, "", bins.CLI, "users", "create", email)
	password := regexp.MustCompile(`(?m)^password: (\S+)$`).FindStringSubmatch(r.Stdout)
	uri := regexp.MustCompile(`(?m)^totp_uri: (\S+)$`).FindStringSubmatch(r.Stdout)
	if password == nil || uri == nil {
		t.Fatalf("users create printed no password or TOTP URI:\n%s", r.Stdout)
	}
	MustRun(t, s.env, "", bins.CLI, "users", "grant", email, "--fleet", "acme", "--role", role)
	key, err := otp.NewKeyFromURL(uri[1])
	if err != nil {
		t.Fatal(err)
	}
	code, err := totp.GenerateCode(key.Secret(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	env := s.env.With("HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, "config"))
	MustRun(t, env, email+"\n"+password[1]+"\n"+code+"\n", bins.CLI, "login", s.url)
	return env
}

// agentLog is the device's own log, as its owner reads it: each line's
// event and detail.
func agentLog(t *testing.T, s *presenceServer, state string) []map[string]any {
	t.Helper()
	out := MustRun(t, s.env, "", bins.Agent, "log", "--json", "--state", state).Stdout
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("porthole-agent log --json line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	return lines
}

// logged reports whether the device's log has a line of event whose
// detail holds want.
func logged(lines []map[string]any, event, want string) bool {
	return slices.ContainsFunc(lines, func(m map[string]any) bool {
		d, _ := m["detail"].(string)
		return m["event"] == event && strings.Contains(d, want)
	})
}

// echoes checks that a forward to the device's port carries bytes there and
// back.
func echoes(t *testing.T, client *ssh.Client, port int) {
	t.Helper()
	c, err := client.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("forward to port %d, which the fleet and the owner allow: %v", port, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping\n" {
		t.Fatalf("echo through the forward: %q, %v", buf, err)
	}
}

func TestFleetPolicy(t *testing.T) {
	t.Parallel()
	srv := newPresenceServer(t, sessionConfig(t, "15m"))
	ann := srv.member(t, "ann@example.com", "owner")
	bob := srv.member(t, "bob@example.com", "operator")
	cat := srv.member(t, "cat@example.com", "operator")
	// Three ports on the device: one both the fleet and the owner allow,
	// one only the fleet, one only the owner.
	both, fleetOnly, ownerOnly := testnet.Echo(t).Port, testnet.Echo(t).Port, testnet.Echo(t).Port
	sock, _, state := srv.consentDevice(t, "dev1", fmt.Sprintf("consent: auto\nallow_ports: [%d, %d]\n", both, ownerOnly))
	policy := func(env Env, args ...string) Result {
		t.Helper()
		return Run(t, env, "", bins.CLI, append([]string{"fleets", "policy", "set", "acme"}, args...)...)
	}

	// Only its owners set it.
	if r := policy(bob, "--four-eyes", "on"); r.Err == nil || !strings.Contains(r.Stderr, "only a fleet owner can change the fleet's policy") {
		t.Fatalf("an operator set the policy: %v\n%s", r.Err, r.Stderr)
	}
	if r := policy(ann, "--ports", fmt.Sprintf("%d,%d", both, fleetOnly)); r.Err != nil {
		t.Fatalf("the owner setting the ports: %v\n%s", r.Err, r.Stderr)
	}

	// A port the fleet does not allow: refused by the server, in words
	// naming the rule and who can change it.
	listed := []int{both, fleetOnly}
	slices.Sort(listed)
	r := Run(t, bob, "", bins.CLI, "forward", "dev1", fmt.Sprintf("%d:%d", FreePort(t), ownerOnly))
	want := fmt.Sprintf("fleet acme allows ports %d, %d only, not %d (fleet policy, set by its owners: ann@example.com)", listed[0], listed[1], ownerOnly)
	if r.Err == nil || !strings.Contains(r.Stderr, want) {
		t.Errorf("porthole forward to a port the fleet does not allow: %v\n%s\nwant %q", r.Err, r.Stderr, want)
	}

	// A port the fleet allows but the owner does not: the session opens,
	// and the device refuses the forward: the owner's list wins.
	eng := newEngineer(t, srv)
	ds, err := eng.api.Devices(t.Context(), apiclient.DeviceFilter{Name: "dev1"})
	if err != nil || len(ds) != 1 {
		t.Fatalf("finding dev1: %v %v", ds, err)
	}
	resp, err := eng.api.CreateSession(t.Context(), ds[0].ID, apitype.CreateSessionRequest{
		PublicKey: string(ssh.MarshalAuthorizedKey(eng.signer.PublicKey())), Ports: []int{both, fleetOnly}, Reason: "ports"})
	if err != nil {
		t.Fatalf("a session for ports the fleet allows: %v", err)
	}
	if ses := eng.waitState(t, resp.Session.ID, apitype.SessionActive); ses.State != apitype.SessionActive {
		t.Fatalf("the session: %+v", ses)
	}
	client, _, err := eng.dialCode(t, resp, "")
	if err != nil {
		t.Fatalf("reaching dev1: %v", err)
	}
	if c, err := client.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(fleetOnly))); err == nil {
		c.Close()
		t.Errorf("a forward to port %d, which dev1's owner does not allow, went through", fleetOnly)
	} else if !strings.Contains(err.Error(), "not among the ports this device's owner allows") {
		t.Errorf("a forward to a port the owner does not allow: %v", err)
	}
	echoes(t, client, both)
	client.Close()
	if _, err := eng.api.CloseSession(t.Context(), resp.Session.ID); err != nil {
		t.Fatal(err)
	}

	// A consent floor of approve: dev1's owner chose auto, and is asked.
	if r := policy(ann, "--consent-floor", "approve"); r.Err != nil {
		t.Fatalf("setting the floor: %v\n%s", r.Err, r.Stderr)
	}
	p := Start(t, bob, bins.CLI, "ssh", "dev1", "--", "echo", "floor")
	var pending string
	WaitFor(t, 20*time.Second, "the session to wait for dev1's owner", func() bool {
		var st struct{ Pending []struct{ Session string } }
		if json.Unmarshal([]byte(owner(t, srv, sock, "status", "--json").Stdout), &st) == nil && len(st.Pending) == 1 {
			pending = st.Pending[0].Session
		}
		if p.Exited() {
			t.Fatalf("porthole ssh ended:\n%s", p.Stderr())
		}
		return pending != ""
	})
	if r := owner(t, srv, sock, "approve", pending); r.Err != nil {
		t.Fatalf("porthole-agent approve: %v\n%s", r.Err, r.Stderr)
	}
	WaitFor(t, 20*time.Second, "porthole ssh to end", p.Exited)
	if p.Stdout() != "floor\n" || !strings.Contains(p.Stderr(), "waiting for the owner of dev1 to approve") {
		t.Errorf("porthole ssh under the floor: %q\n%s", p.Stdout(), p.Stderr())
	}

	// Four-eyes: bob asks, cannot approve his own session; cat can.
	if r := policy(ann, "--consent-floor", "none", "--four-eyes", "on"); r.Err != nil {
		t.Fatalf("setting four-eyes: %v\n%s", r.Err, r.Stderr)
	}
	p = Start(t, bob, bins.CLI, "ssh", "dev1", "--", "echo", "four-eyes")
	var request string
	WaitFor(t, 20*time.Second, "porthole ssh to say what a colleague runs", func() bool {
		if m := regexp.MustCompile(`porthole requests approve (req_\S+)`).FindStringSubmatch(p.Stderr()); m != nil {
			request = m[1]
		}
		if p.Exited() {
			t.Fatalf("porthole ssh ended:\n%s", p.Stderr())
		}
		return request != ""
	})
	r = Run(t, bob, "", bins.CLI, "requests", "approve", request)
	if r.Err == nil || !strings.Contains(r.Stderr, "bob@example.com asked for session") ||
		!strings.Contains(r.Stderr, "fleet acme needs a second engineer, another of its operators or owners, to approve it (fleet policy, set by its owners: ann@example.com)") {
		t.Fatalf("bob approving his own session: %v\n%s", r.Err, r.Stderr)
	}
	if out := MustRun(t, cat, "", bins.CLI, "requests").Stdout; !strings.Contains(out, request) || !strings.Contains(out, "four-eyes (bob@example.com)") {
		t.Errorf("cat's queue does not show bob's request:\n%s", out)
	}
	if r := MustRun(t, cat, "", bins.CLI, "requests", "approve", request); !strings.Contains(r.Stderr, "approved "+request) {
		t.Errorf("cat's approval said:\n%s", r.Stderr)
	}
	WaitFor(t, 20*time.Second, "porthole ssh to end", p.Exited)
	if p.Stdout() != "four-eyes\n" || !strings.Contains(p.Stderr(), "cat@example.com approved the session") {
		t.Errorf("porthole ssh under four-eyes: %q\n%s", p.Stdout(), p.Stderr())
	}

	// Every decision is in the server's audit log with the rule that
	// made it, and both names of the four-eyes session.
	var refusedRules []string
	var approvals []map[string]string
	changes := 0
	for _, e := range allAudit(t, eng) {
		switch e.Kind {
		case "policy_changed":
			changes++
			if e.Actor.Name != "ann@example.com" {
				t.Errorf("policy_changed by %s", e.Actor.Name)
			}
		case "policy_refused":
			refusedRules = append(refusedRules, e.Detail["rule"]+" by "+e.Actor.Name)
		case "four_eyes_approved":
			approvals = append(approvals, e.Detail)
		}
	}
	if changes != 3 {
		t.Errorf("%d policy_changed events; want 3", changes)
	}
	if !slices.Equal(refusedRules, []string{"ports by bob@example.com", "four_eyes by bob@example.com"}) {
		t.Errorf("policy_refused: %v", refusedRules)
	}
	if len(approvals) != 1 || approvals[0]["requested_by"] != "bob@example.com" || approvals[0]["approved_by"] != "cat@example.com" {
		t.Errorf("four_eyes_approved: %v", approvals)
	}
	if r := MustRun(t, srv.env, "", bins.CLI, "audit", "--verify"); r.Err != nil {
		t.Errorf("the audit chain: %v", r.Err)
	}

	// And in the device's own log: the floor and why it applied, both
	// engineers' names.
	lines := agentLog(t, srv, state)
	if !logged(lines, "approval_asked", "consent floor approve (stricter than the owner's auto)") {
		t.Errorf("dev1's log does not say the floor asked its owner:\n%v", lines)
	}
	if !logged(lines, "session_admitted", "requested by bob@example.com, approved by cat@example.com (four-eyes)") {
		t.Errorf("dev1's log does not name both engineers:\n%v", lines)
	}
}
