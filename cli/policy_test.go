package cli

import (
	"regexp"
	"strings"
	"testing"

	"github.com/porthole/porthole/apitype"
)

// TestPolicyCommands: `porthole fleets policy show|set` against the real
// API: only the rules given change, "none" and "any" ports differ, an
// operator is refused in words that say who may, bad values are refused
// before anything is sent.
func TestPolicyCommands(t *testing.T) {
	ra, adminSecret := startRealAPI(t)
	admin := testEnv(t)
	mustRun(t, admin, adminEmail+"\n"+adminPassword+"\n"+totpCode(t, adminSecret)+"\n", "login", ra.url)
	mustRun(t, admin, "", "fleets", "create", "acme")

	r := mustRun(t, admin, "", "fleets", "policy", "show", "acme")
	if !strings.Contains(r.stdout, "fleet acme has no policy set") || !regexp.MustCompile(`ports\s+any the device's owner allows`).MatchString(r.stdout) {
		t.Errorf("policy show of a fleet without one:\n%s", r.stdout)
	}
	if r := runCLI(t, admin, "", "fleets", "policy", "set", "acme"); r.err == nil || !strings.Contains(r.err.Error(), "say what to change") {
		t.Errorf("policy set without a rule: %v", r.err)
	}

	r = mustRun(t, admin, "", "fleets", "policy", "set", "acme", "--ports", "8080,22", "--consent-floor", "approve",
		"--max-session", "1h", "--four-eyes", "on")
	if !strings.Contains(r.stderr, "set the policy of fleet acme (version 1)") || !strings.Contains(r.stderr, "22, 8080 (only those the device's owner allows too)") ||
		!regexp.MustCompile(`max session\s+1 h \(the server's: 2 h\)`).MatchString(r.stderr) {
		t.Errorf("policy set said:\n%s", r.stderr)
	}
	var p apitype.FleetPolicy
	jsonOut(t, mustRun(t, admin, "", "fleets", "policy", "show", "acme", "--json"), &p)
	if p.Ports == nil || len(*p.Ports) != 2 || (*p.Ports)[0] != 22 || p.ConsentFloor != "approve" || p.MaxDurationS != 3600 ||
		!p.FourEyes || p.Version != 1 || p.UpdatedBy != adminEmail {
		t.Errorf("policy show --json = %+v", p)
	}

	// Only the rules given change.
	p = apitype.FleetPolicy{}
	jsonOut(t, mustRun(t, admin, "", "fleets", "policy", "set", "acme", "--ports", "none", "--json"), &p)
	if p.Ports == nil || len(*p.Ports) != 0 || !p.FourEyes || p.ConsentFloor != "approve" || p.MaxDurationS != 3600 || p.Version != 2 {
		t.Errorf("after --ports none: %+v", p)
	}
	p = apitype.FleetPolicy{}
	jsonOut(t, mustRun(t, admin, "", "fleets", "policy", "set", "acme", "--ports", "any", "--consent-floor", "none",
		"--four-eyes", "off", "--max-session", "none", "--idle-timeout", "10m", "--json"), &p)
	if p.Ports != nil || p.FourEyes || p.ConsentFloor != "" || p.MaxDurationS != 0 || p.IdleTimeoutS != 600 {
		t.Errorf("after --ports any etc.: %+v", p)
	}
	p = apitype.FleetPolicy{}
	jsonOut(t, mustRun(t, admin, "", "fleets", "policy", "set", "acme", "--reauth", "15m", "--json"), &p)
	if p.ReauthS != 900 || p.IdleTimeoutS != 600 {
		t.Errorf("after --reauth 15m: %+v", p)
	}
	r = mustRun(t, admin, "", "fleets", "policy", "show", "acme")
	if !regexp.MustCompile(`reauth\s+a session needs the engineer's authenticator code within the last 15 min`).MatchString(r.stdout) {
		t.Errorf("policy show with reauth:\n%s", r.stdout)
	}
	p = apitype.FleetPolicy{}
	jsonOut(t, mustRun(t, admin, "", "fleets", "policy", "set", "acme", "--reauth", "none", "--json"), &p)
	if p.ReauthS != 0 {
		t.Errorf("after --reauth none: %+v", p)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--consent-floor", "auto"}, "asks nothing of a device"},
		{[]string{"--consent-floor", "strict"}, "use none, approve or manual"},
		{[]string{"--ports", "22,http"}, `"http" is not a port`},
		{[]string{"--ports", "0"}, `"0" is not a port`},
		{[]string{"--four-eyes", "maybe"}, "use on or off"},
		{[]string{"--max-session", "soon"}, "--max-session"},
		{[]string{"--reauth", "30s"}, "from 1m to 24h"},
		{[]string{"--reauth", "48h"}, "from 1m to 24h"},
	} {
		r := runCLI(t, admin, "", append([]string{"fleets", "policy", "set", "acme"}, tt.args...)...)
		if r.err == nil || !strings.Contains(r.err.Error(), tt.want) {
			t.Errorf("policy set %v: %v; want an error saying %q", tt.args, r.err, tt.want)
		}
	}

	// An operator reads it, and is told who may change it.
	r = mustRun(t, admin, "", "users", "create", "bob@example.com")
	password := regexp.MustCompile(`(?m)^password: (\S+)$`).FindStringSubmatch(r.stdout)
	uri := regexp.MustCompile(`(?m)^totp_uri: (\S+)$`).FindStringSubmatch(r.stdout)
	mustRun(t, admin, "", "users", "grant", "bob@example.com", "--fleet", "acme", "--role", "operator")
	bob := testEnv(t)
	mustRun(t, bob, "bob@example.com\n"+password[1]+"\n"+totpCode(t, totpSecret(t, uri[1]))+"\n", "login", ra.url)
	r = mustRun(t, bob, "", "fleets", "policy", "show", "acme")
	if !regexp.MustCompile(`idle timeout\s+10 min \(the server's: 15 min\)`).MatchString(r.stdout) || !regexp.MustCompile(`owners\s+none`).MatchString(r.stdout) {
		t.Errorf("bob's policy show:\n%s", r.stdout)
	}
	r = runCLI(t, bob, "", "fleets", "policy", "set", "acme", "--four-eyes", "on")
	if r.err == nil || !strings.Contains(r.err.Error(), "only a fleet owner can change the fleet's policy") {
		t.Errorf("bob setting the policy: %v; want refused, naming who may", r.err)
	}

	// Approving needs a request of the four-eyes kind.
	if r := runCLI(t, bob, "", "requests", "approve", "req_nothing"); r.err == nil || !strings.Contains(r.err.Error(), "no support request") {
		t.Errorf("approving a request that does not exist: %v", r.err)
	}
}
