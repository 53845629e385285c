package fleetpolicy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/store"
)

func TestCheck(t *testing.T) {
	for _, tt := range []struct {
		name   string
		policy *store.FleetPolicy
		ports  []int
		want   string // the refusal's words; "" allowed
	}{
		{"no policy", nil, []int{22, 80}, ""},
		{"no ports named", &store.FleetPolicy{FourEyes: true}, []int{22, 80}, ""},
		{"inside", &store.FleetPolicy{Ports: []int{22, 80}}, []int{80}, ""},
		{"no ports asked", &store.FleetPolicy{Ports: []int{}}, nil, ""},
		{"outside", &store.FleetPolicy{Ports: []int{22}}, []int{22, 80, 443, 80}, "fleet acme allows ports 22 only, not 80, 443"},
		{"none allowed", &store.FleetPolicy{Ports: []int{}}, []int{22}, "fleet acme allows no device ports (a shell and file copies only), not 22"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.policy, "acme", tt.ports)
			if tt.want == "" {
				if err != nil {
					t.Errorf("Check = %v; want allowed", err)
				}
				return
			}
			var r *Refusal
			if !errors.As(err, &r) || r.Rule != RulePorts || r.Words != tt.want {
				t.Errorf("Check = %#v; want the ports rule saying %q", err, tt.want)
			}
		})
	}
}

func TestExplain(t *testing.T) {
	r := &Refusal{Fleet: "acme", Rule: RulePorts, Words: "fleet acme allows ports 22 only, not 80"}
	for _, tt := range []struct {
		owners []string
		want   string
	}{
		{[]string{"ann@example.com"}, "fleet acme allows ports 22 only, not 80 (fleet policy, set by its owners: ann@example.com)"},
		{[]string{"ann@example.com", "bob@example.com"}, "fleet acme allows ports 22 only, not 80 (fleet policy, set by its owners: ann@example.com, bob@example.com)"},
		{nil, "fleet acme allows ports 22 only, not 80 (fleet policy, set by its owners; it has none, so ask an administrator)"},
	} {
		if got := r.Explain(tt.owners); got != tt.want {
			t.Errorf("Explain(%v) = %q; want %q", tt.owners, got, tt.want)
		}
	}
}

func TestCheckApproval(t *testing.T) {
	ses := &store.Session{UserEmail: "alice@example.com", Ports: []int{80}, MaxDuration: 2 * time.Hour, IdleTimeout: 15 * time.Minute}
	for _, tt := range []struct {
		name   string
		policy *store.FleetPolicy
		rule   string // "" allowed
	}{
		{"unchanged", &store.FleetPolicy{Ports: []int{80}, FourEyes: true}, ""},
		{"four-eyes switched off meanwhile", nil, ""},
		{"port taken away", &store.FleetPolicy{Ports: []int{22}}, RulePorts},
		{"shorter sessions", &store.FleetPolicy{MaxDuration: time.Hour}, RuleMaxDuration},
		{"shorter idle", &store.FleetPolicy{IdleTimeout: time.Minute}, RuleIdleTimeout},
		{"caps the session already fits", &store.FleetPolicy{MaxDuration: 2 * time.Hour, IdleTimeout: time.Hour}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckApproval(tt.policy, "acme", ses)
			var r *Refusal
			switch {
			case tt.rule == "" && err != nil:
				t.Errorf("CheckApproval = %v; want allowed", err)
			case tt.rule != "" && (!errors.As(err, &r) || r.Rule != tt.rule):
				t.Errorf("CheckApproval = %v; want a refusal by rule %s", err, tt.rule)
			}
		})
	}
}

func TestLimit(t *testing.T) {
	for _, tt := range []struct{ server, cap, want time.Duration }{
		{2 * time.Hour, 0, 2 * time.Hour},
		{2 * time.Hour, time.Hour, time.Hour},
		{time.Hour, 2 * time.Hour, time.Hour}, // a fleet never lengthens the server's
	} {
		if got := Limit(tt.server, tt.cap); got != tt.want {
			t.Errorf("Limit(%v, %v) = %v; want %v", tt.server, tt.cap, got, tt.want)
		}
	}
}

// TestCommand: the open command carries a policy only when the device has
// something to apply, so that older agents keep taking the sessions of
// fleets that ask nothing of them.
func TestCommand(t *testing.T) {
	for _, tt := range []struct {
		name     string
		policy   *store.FleetPolicy
		approver string
		want     *control.Policy
	}{
		{"no policy", nil, "", nil},
		{"limits only", &store.FleetPolicy{MaxDuration: time.Hour, IdleTimeout: time.Minute}, "", nil},
		{"four-eyes, not yet approved", &store.FleetPolicy{FourEyes: true}, "", nil},
		{"four-eyes approved", &store.FleetPolicy{FourEyes: true}, "bob@example.com",
			&control.Policy{RequestedBy: "alice@example.com", ApprovedBy: "bob@example.com"}},
		{"ports", &store.FleetPolicy{Ports: []int{22}}, "", &control.Policy{Ports: []int{22}, RequestedBy: "alice@example.com"}},
		{"no ports", &store.FleetPolicy{Ports: []int{}}, "", &control.Policy{Ports: []int{}, RequestedBy: "alice@example.com"}},
		{"floor", &store.FleetPolicy{ConsentFloor: store.FloorManual}, "",
			&control.Policy{ConsentFloor: control.FloorManual, RequestedBy: "alice@example.com"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := Command(tt.policy, "alice@example.com", tt.approver)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Command = %#v; want %#v", got, tt.want)
			}
			if got != nil && (got.Ports == nil) != (tt.want.Ports == nil) {
				t.Errorf("ports %#v; want %#v (null and [] differ)", got.Ports, tt.want.Ports)
			}
		})
	}
	if got := Encode(Command(&store.FleetPolicy{Ports: []int{}}, "a@example.com", "")); got != `{"ports":[],"requested_by":"a@example.com"}` {
		t.Errorf("Encode = %s", got)
	}
	if Encode(nil) != "" {
		t.Errorf("Encode(nil) is not empty")
	}
}

func TestDescribe(t *testing.T) {
	for _, tt := range []struct {
		policy *store.FleetPolicy
		want   string
	}{
		{nil, "none"},
		{&store.FleetPolicy{}, "none"},
		{&store.FleetPolicy{Ports: []int{8080, 22}, ConsentFloor: store.FloorApprove, MaxDuration: time.Hour,
			IdleTimeout: 90 * time.Minute, FourEyes: true}, "ports 22, 8080; consent floor approve; sessions at most 1h; idle at most 90m; four-eyes"},
		{&store.FleetPolicy{Ports: []int{}, IdleTimeout: 45 * time.Second}, "no ports; idle at most 45s"},
	} {
		if got := Describe(tt.policy); got != tt.want {
			t.Errorf("Describe(%+v) = %q; want %q", tt.policy, got, tt.want)
		}
	}
}

func TestCheckReauth(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	p := &store.FleetPolicy{Reauth: 15 * time.Minute}
	for _, tt := range []struct {
		name     string
		policy   *store.FleetPolicy
		factorAt time.Time
		want     string // the refusal's words; "" allowed
	}{
		{"no policy", nil, time.Time{}, ""},
		{"no rule", &store.FleetPolicy{FourEyes: true}, time.Time{}, ""},
		{"within", p, now.Add(-14 * time.Minute), ""},
		{"at the edge", p, now.Add(-15 * time.Minute), ""},
		{"after", p, now.Add(-2 * time.Hour), "fleet acme asks for a fresh second factor (your authenticator code or a passkey) within the last 15m to open a session (your last was 2h ago)"},
		{"just after", p, now.Add(-15*time.Minute - time.Second), "fleet acme asks for a fresh second factor (your authenticator code or a passkey) within the last 15m to open a session (your last was 15m ago)"},
		{"never", p, time.Time{}, "fleet acme asks for a fresh second factor (your authenticator code or a passkey) within the last 15m to open a session (no second factor of this login is on record)"},
	} {
		err := CheckReauth(tt.policy, "acme", "open a session", tt.factorAt, now)
		got := ""
		if err != nil {
			r, ok := errors.AsType[*Refusal](err)
			if !ok || r.Rule != RuleReauth || r.Fleet != "acme" {
				t.Errorf("%s: %#v", tt.name, err)
			}
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("%s: %q; want %q", tt.name, got, tt.want)
		}
	}
	if err := CheckReauth(p, "acme", "approve a session", time.Time{}, now); err == nil || !strings.Contains(err.Error(), "to approve a session (") {
		t.Errorf("approving: %v", err)
	}
	if d := Describe(&store.FleetPolicy{FourEyes: true, Reauth: time.Hour}); d != "four-eyes; second factor within 1h" {
		t.Errorf("Describe: %q", d)
	}
}
