package control

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// policyCmd is openCmd carrying a fleet's policy.
func policyCmd() Command {
	c := openCmd()
	c.Policy = &Policy{Ports: []int{22}, ConsentFloor: FloorApprove, RequestedBy: "alice@example.com", ApprovedBy: "bob@example.com"}
	return c
}

// TestPolicyRoundTrip: the policy the server signs is the one the device
// reads, with "no ports named" (null) and "no port allowed" ([]) told
// apart.
func TestPolicyRoundTrip(t *testing.T) {
	key := testKey(1)
	for _, tt := range []struct {
		name   string
		policy *Policy
	}{
		{"none", nil},
		{"every rule", policyCmd().Policy},
		{"no ports named", &Policy{ConsentFloor: FloorManual}},
		{"no port allowed", &Policy{Ports: []int{}}},
		{"approver only", &Policy{RequestedBy: "alice@example.com", ApprovedBy: "bob@example.com"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := openCmd()
			c.Policy = tt.policy
			env := mustSign(t, key, c)
			got, err := newTestVerifier(t, key, &memNonces{}).Verify(env, testNow)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !reflect.DeepEqual(got.Policy, tt.policy) {
				t.Errorf("policy = %#v; want %#v", got.Policy, tt.policy)
			}
			if tt.policy != nil && tt.policy.Ports != nil && got.Policy.Ports == nil {
				t.Errorf("ports %v came back as null: the device would take no restriction for one", tt.policy.Ports)
			}
			payload, _ := split(t, env)
			if tt.policy == nil && bytes.Contains(payload, []byte(`"policy"`)) {
				t.Errorf("a command without a policy carries the field, which agents that predate it refuse: %s", payload)
			}
		})
	}
}

// TestPolicyWidened: a policy changed on its way, to widen what the
// server allowed, is refused by the signature: the ports widened or
// named no more, the consent floor lowered or taken out, the approver
// changed.
func TestPolicyWidened(t *testing.T) {
	key := testKey(1)
	env := mustSign(t, key, policyCmd())
	payload, sig := split(t, env)
	for _, tt := range []struct{ name, from, to string }{
		{"ports widened", `"ports":[22]`, `"ports":[22,80]`},
		{"ports named no more", `"ports":[22]`, `"ports":null`},
		{"floor lowered", `"consent_floor":"approve"`, `"consent_floor":"auto"`},
		{"floor taken out", `"consent_floor":"approve",`, ``},
		{"another approver", `"approved_by":"bob@example.com"`, `"approved_by":"alice@example.com"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			forged := bytes.Replace(payload, []byte(tt.from), []byte(tt.to), 1)
			if bytes.Equal(forged, payload) {
				t.Fatalf("%s is not in the payload %s", tt.from, payload)
			}
			_, err := newTestVerifier(t, key, &memNonces{}).Verify(envelopeOf(forged, sig), testNow)
			if got := RejectReason(err); got != ReasonBadSignature {
				t.Errorf("Verify = %v; want %s", err, ReasonBadSignature)
			}
		})
	}
}

// TestPolicyFields: what Sign refuses to make, and Verify refuses when
// the control key signed it anyway.
func TestPolicyFields(t *testing.T) {
	key := testKey(1)
	for _, tt := range []struct {
		name string
		edit func(*Command)
		want string
	}{
		{"port 0", func(c *Command) { c.Policy.Ports = []int{0} }, "port 0"},
		{"port 65536", func(c *Command) { c.Policy.Ports = []int{22, 65536} }, "port 65536"},
		{"floor auto", func(c *Command) { c.Policy.ConsentFloor = "auto" }, "consent_floor"},
		{"floor unknown", func(c *Command) { c.Policy.ConsentFloor = "strict" }, "consent_floor"},
		{"approver with a space", func(c *Command) { c.Policy.ApprovedBy = "bob smith" }, "approved_by"},
		{"requester with a control character", func(c *Command) { c.Policy.RequestedBy = "alice\x1b[2J" }, "requested_by"},
		{"approver too long", func(c *Command) { c.Policy.ApprovedBy = strings.Repeat("b", 255) }, "approved_by"},
		{"policy on close", func(c *Command) { c.Type, c.Relay = TypeClose, "" }, "close command carries no policy"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := policyCmd()
			tt.edit(&c)
			if _, err := Sign(key, c); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Sign = %v; want an error about %s", err, tt.want)
			}
			c.V, c.Nonce = Version, "nonce-0123456789abcdef"
			_, err := newTestVerifier(t, key, &memNonces{}).Verify(signRaw(key, mustJSON(t, c)), testNow)
			if got := RejectReason(err); got != ReasonMalformed {
				t.Errorf("Verify = %v; want %s", err, ReasonMalformed)
			}
		})
	}
}

// commandV1 is Command as agents before the fleet policy knew it, field
// for field: what such an agent decodes a command into.
type commandV1 struct {
	V            int    `json:"v"`
	Type         string `json:"type"`
	Session      string `json:"session"`
	Fleet        string `json:"fleet"`
	Device       string `json:"device"`
	Relay        string `json:"relay,omitempty"`
	Relay2       string `json:"relay2,omitempty"`
	Ports        []int  `json:"ports,omitempty"`
	IdleTimeoutS int    `json:"idle_timeout_s,omitempty"`
	MaxDurationS int    `json:"max_duration_s,omitempty"`
	NotAfter     int64  `json:"not_after"`
	Nonce        string `json:"nonce"`
}

// TestPolicyOlderAgent: an agent that predates the fleet policy decodes
// commands strictly, so it refuses one that carries a policy (it would
// otherwise open the session without the consent floor or the ports the
// fleet asked for), and still takes one that carries none.
func TestPolicyOlderAgent(t *testing.T) {
	key := testKey(1)
	for _, tt := range []struct {
		name    string
		cmd     Command
		refused bool
	}{
		{"no policy", openCmd(), false},
		{"a policy", policyCmd(), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			payload, _ := split(t, mustSign(t, key, tt.cmd))
			var old commandV1
			err := decodeStrict(payload, &old)
			if tt.refused && (err == nil || !strings.Contains(err.Error(), `unknown field "policy"`)) {
				t.Errorf("an older agent decodes a command with a policy: %v", err)
			}
			if !tt.refused && err != nil {
				t.Errorf("an older agent refuses a command without a policy: %v", err)
			}
		})
	}
	// commandV1 is Command without Policy, or the test proves nothing.
	want := reflect.TypeFor[Command]().NumField() - 1
	if got := reflect.TypeFor[commandV1]().NumField(); got != want {
		t.Errorf("commandV1 has %d fields; Command without Policy has %d", got, want)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
