// Package fleetpolicy applies a fleet's policy (store.FleetPolicy) to
// engineers' sessions on the server: whether a request may go ahead, the
// limits it gets, what the signed open command carries for the device
// to apply itself (control.Policy), and a refusal's words, naming the
// rule and who can change it.
//
// A policy only narrows. The server's own limits and, on the device, its
// owner's agent.yaml still hold: the device grants only the ports both
// its owner and the fleet allow, and asks for the stricter of its owner's
// consent mode and the fleet's floor (auto < approve < manual).
package fleetpolicy

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/store"
)

// The rules of a policy, as refusals and audit events name them
// (Detail["rule"]).
const (
	RulePorts        = "ports"
	RuleConsentFloor = "consent_floor"
	RuleMaxDuration  = "max_duration"
	RuleIdleTimeout  = "idle_timeout"
	RuleFourEyes     = "four_eyes"
	RuleReauth       = "reauth"
)

// Refusal is what a fleet's policy refused, and why. Its Error is the
// why alone; Explain adds who can change the rule.
type Refusal struct {
	Fleet string
	Rule  string // one of the Rule constants
	Words string // "fleet acme allows ports 22 only, not 80"
}

func (r *Refusal) Error() string { return r.Words }

// Explain is the refusal for the engineer who met it: the words, the
// rule's origin and who can change it, e.g. "fleet acme allows ports 22
// only, not 80 (fleet policy, set by its owners: ann@example.com)".
func (r *Refusal) Explain(owners []string) string {
	who := "its owners: " + strings.Join(owners, ", ")
	if len(owners) == 0 {
		who = "its owners; it has none, so ask an administrator"
	}
	return fmt.Sprintf("%s (fleet policy, set by %s)", r.Words, who)
}

// Check decides whether a session asking for ports may open on a device
// of the fleet named fleet under p. A nil p allows everything.
func Check(p *store.FleetPolicy, fleet string, ports []int) error {
	if p == nil || p.Ports == nil {
		return nil
	}
	var outside []int
	for _, port := range ports {
		if !slices.Contains(p.Ports, port) && !slices.Contains(outside, port) {
			outside = append(outside, port)
		}
	}
	if len(outside) == 0 {
		return nil
	}
	words := fmt.Sprintf("fleet %s allows ports %s only, not %s", fleet, List(p.Ports), List(outside))
	if len(p.Ports) == 0 {
		words = fmt.Sprintf("fleet %s allows no device ports (a shell and file copies only), not %s", fleet, List(outside))
	}
	return &Refusal{Fleet: fleet, Rule: RulePorts, Words: words}
}

// CheckReauth decides whether a login whose last second factor was at
// factorAt (zero: never) may do action ("open a session", "approve a
// session") on a device of the fleet named fleet at now, under p's Reauth
// rule. A nil p, or one without the rule, allows every login.
func CheckReauth(p *store.FleetPolicy, fleet, action string, factorAt, now time.Time) error {
	if p == nil || p.Reauth <= 0 {
		return nil
	}
	if !factorAt.IsZero() && now.Sub(factorAt) <= p.Reauth {
		return nil
	}
	last := "no second factor of this login is on record"
	if !factorAt.IsZero() {
		last = "your last was " + Duration(max(now.Sub(factorAt).Truncate(time.Minute), time.Minute)) + " ago"
	}
	return &Refusal{Fleet: fleet, Rule: RuleReauth, Words: fmt.Sprintf(
		"fleet %s asks for a fresh second factor (your authenticator code or a passkey) within the last %s to %s (%s)", fleet, Duration(p.Reauth), action, last)}
}

// CheckApproval decides whether a session asked for under an earlier
// version of the fleet's policy may still be approved under p: its ports
// and its limits must fit p as it is now, or the engineer must ask again.
func CheckApproval(p *store.FleetPolicy, fleet string, ses *store.Session) error {
	if err := Check(p, fleet, ses.Ports); err != nil {
		r := err.(*Refusal)
		r.Words = fmt.Sprintf("the policy changed since %s asked: %s; %s must ask again", ses.UserEmail, r.Words, ses.UserEmail)
		return r
	}
	if p == nil {
		return nil
	}
	for _, c := range []struct {
		rule       string
		cap, asked time.Duration
		what       string
	}{
		{RuleMaxDuration, p.MaxDuration, ses.MaxDuration, "sessions last"},
		{RuleIdleTimeout, p.IdleTimeout, ses.IdleTimeout, "sessions may stay idle"},
	} {
		if c.cap > 0 && c.asked > c.cap {
			return &Refusal{Fleet: fleet, Rule: c.rule, Words: fmt.Sprintf("the policy changed since %s asked: fleet %s's %s at most %s now; %s must ask again",
				ses.UserEmail, fleet, c.what, Duration(c.cap), ses.UserEmail)}
		}
	}
	return nil
}

// CheckAgent decides, before the device is asked, whether device d's
// agent can apply what its open command carries of the fleet's policy
// (cp, as Command makes it): an agent that reported no capability for it
// would refuse the command (commands are decoded strictly), so the
// session is refused now, in words that name the agent's version and the
// rule it cannot apply. A device that never reported (an agent that
// predates the report) is asked as before: it ends as agent_outdated if
// it cannot. What a device reports only ever refuses more: an agent that
// claims a capability it lacks still refuses the command itself, and one
// that has it applies its owner's config on top.
func CheckAgent(d *store.Device, cp *control.Policy) error {
	if !d.Agent.Reported() || len(control.Lacks(d.Agent.Capabilities, (&control.Command{Policy: cp}).Needs())) == 0 {
		return nil
	}
	rule, what := RuleFourEyes, "four-eyes approval"
	switch {
	case cp.ConsentFloor != "":
		rule, what = RuleConsentFloor, "consent floor"
	case cp.Ports != nil:
		rule, what = RulePorts, "port list"
	}
	return &Refusal{Fleet: d.FleetName, Rule: rule, Words: fmt.Sprintf("%s runs porthole-agent %s, which cannot apply fleet %s's %s; update the agent",
		d.Name, d.Agent.Version, d.FleetName, what)}
}

// Limit is the server's limit, shortened to the fleet's cap when the
// fleet sets a shorter one (cap zero: none).
func Limit(server, cap time.Duration) time.Duration {
	if cap > 0 && cap < server {
		return cap
	}
	return server
}

// Command is what of p the open command carries for the device to apply:
// the ports the fleet allows, its consent floor, and who asked and who
// approved (four-eyes); nil when p asks nothing of the device, so that
// agents that predate control.Policy still take the fleet's sessions.
func Command(p *store.FleetPolicy, requestedBy, approvedBy string) *control.Policy {
	if p == nil {
		p = &store.FleetPolicy{}
	}
	if p.Ports == nil && p.ConsentFloor == store.FloorNone && approvedBy == "" {
		return nil
	}
	return &control.Policy{Ports: slices.Clone(p.Ports), ConsentFloor: p.ConsentFloor,
		RequestedBy: requestedBy, ApprovedBy: approvedBy}
}

// Encode is cp as sessions keep it (store.Session.Policy): JSON, or ""
// for nil.
func Encode(cp *control.Policy) string {
	if cp == nil {
		return ""
	}
	b, err := json.Marshal(cp)
	if err != nil {
		panic(err) // ints and strings always encode
	}
	return string(b)
}

// Describe says what p decides, for people and the audit log: "ports 22,
// 8080; consent floor approve; sessions at most 1h; idle at most 10m;
// four-eyes", or "none".
func Describe(p *store.FleetPolicy) string {
	if p == nil {
		return "none"
	}
	var rules []string
	if p.Ports != nil {
		if len(p.Ports) == 0 {
			rules = append(rules, "no ports")
		} else {
			rules = append(rules, "ports "+List(p.Ports))
		}
	}
	if p.ConsentFloor != store.FloorNone {
		rules = append(rules, "consent floor "+p.ConsentFloor)
	}
	if p.MaxDuration > 0 {
		rules = append(rules, "sessions at most "+Duration(p.MaxDuration))
	}
	if p.IdleTimeout > 0 {
		rules = append(rules, "idle at most "+Duration(p.IdleTimeout))
	}
	if p.FourEyes {
		rules = append(rules, "four-eyes")
	}
	if p.Reauth > 0 {
		rules = append(rules, "second factor within "+Duration(p.Reauth))
	}
	if len(rules) == 0 {
		return "none"
	}
	return strings.Join(rules, "; ")
}

// List writes ports as "22, 8080", sorted, each once.
func List(ports []int) string {
	ps := slices.Clone(ports)
	slices.Sort(ps)
	ps = slices.Compact(ps)
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ", ")
}

// Duration writes d for people: 1h, 90m, 45s.
func Duration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return d.Round(time.Second).String()
}
