package control

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"testing"
)

// TestCloseReasonWire: the values are the words old agents send and stored
// sessions hold; none may change.
func TestCloseReasonWire(t *testing.T) {
	for _, tt := range []struct {
		r    CloseReason
		want string
	}{
		{CloseOnCommand, "closed"},
		{CloseIdleTimeout, "idle_timeout"},
		{CloseMaxDuration, "max_duration"},
		{CloseRelayUnreachable, "relay_unreachable"},
		{CloseRelayRefused, "relay_refused"},
		{CloseRelayBusy, "relay_busy"},
		{CloseRelayDisconnected, "relay_disconnected"},
		{CloseAgentStopping, "agent_stopping"},
		{CloseUnsupported, "unsupported"},
		{CloseNotRecorded, "not_recorded"},
		{CloseInterrupted, "interrupted"},
		{CloseNoConsent, "no_consent"},
		{CloseConsentExpired, "consent_expired"},
		{CloseWrongCodes, "wrong_codes"},
		{CloseRevoked, "revoked"},
		{CloseDenied, "denied"},
		{CloseConsentTimeout, "consent_timeout"},
		{CloseEngineer, "engineer_closed"},
		{CloseDeviceUnreachable, "device_unreachable"},
		{CloseControlUnavailable, "control_unavailable"},
		{CloseDeviceDisconnected, "device_disconnected"},
		{CloseDeviceClosed, "device_closed"},
		{CloseAgentOutdated, "agent_outdated"},
		{CloseFourEyesDenied, "four_eyes_denied"},
		{CloseFourEyesTimeout, "four_eyes_timeout"},
		{CloseApproverRemoved, "approver_removed"},
	} {
		if string(tt.r) != tt.want {
			t.Errorf("a close reason is %q; want %q", tt.r, tt.want)
		}
	}
}

// TestCloseReasonsComplete: CloseReasons lists every constant of type
// CloseReason in closereason.go, each once, each a word a state message
// can carry.
func TestCloseReasonsComplete(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "closereason.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	declared := map[CloseReason]string{} // value: the constant's name
	ast.Inspect(f, func(n ast.Node) bool {
		spec, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		if id, ok := spec.Type.(*ast.Ident); !ok || id.Name != "CloseReason" {
			return true
		}
		for i, name := range spec.Names {
			lit, ok := spec.Values[i].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Fatalf("%s is not a string literal", name.Name)
			}
			v, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			declared[CloseReason(v)] = name.Name
		}
		return true
	})
	if len(declared) < 20 {
		t.Fatalf("found %d CloseReason constants in closereason.go; the parse missed them", len(declared))
	}
	listed := CloseReasons()
	for r, name := range declared {
		if !slices.Contains(listed, r) {
			t.Errorf("CloseReasons() leaves out %s (%q)", name, r)
		}
	}
	seen := map[CloseReason]bool{}
	for _, r := range listed {
		if seen[r] {
			t.Errorf("CloseReasons() lists %q twice", r)
		}
		seen[r] = true
		if _, ok := declared[r]; !ok {
			t.Errorf("CloseReasons() lists %q, which closereason.go does not declare", r)
		}
		if b, err := TunnelDown("ses_1", r).Marshal(); err != nil || string(b) != "tunnel_down ses_1 "+string(r) {
			t.Errorf("TunnelDown(ses_1, %q).Marshal() = %q, %v; want %q", r, b, err, "tunnel_down ses_1 "+string(r))
		}
	}
}

func TestIsConsent(t *testing.T) {
	consent := []CloseReason{CloseNoConsent, CloseDenied, CloseConsentTimeout, CloseRevoked, CloseWrongCodes}
	for _, r := range CloseReasons() {
		if got, want := r.IsConsent(), slices.Contains(consent, r); got != want {
			t.Errorf("%s.IsConsent() = %v; want %v", r, got, want)
		}
	}
	if CloseReason("some_new_reason").IsConsent() {
		t.Errorf("an unknown reason is a consent reason")
	}
}
