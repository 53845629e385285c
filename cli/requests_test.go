package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/apitype"
)

// TestConsentWords: what the engineer reads when a device's owner did not
// let them in, or ended the session.
func TestConsentWords(t *testing.T) {
	for _, tt := range []struct{ reason, want string }{
		{"no_consent", "dev1 needs its owner's support code — ask them to run `porthole-agent request`"},
		{"denied", "the owner denied the request"},
		{"revoked", "the owner of dev1 ended this session"},
		{"consent_timeout", "the owner of dev1 did not answer in time, so the request was denied"},
		{"wrong_codes", "dev1 closed its support window after five wrong support codes; ask its owner to run `porthole-agent request` again"},
		{"consent_expired", "the owner's support window on dev1 ended, and this session with it; ask them to run `porthole-agent request` again"},
	} {
		if got := sessionEndWords(apitype.Session{State: apitype.SessionClosed, CloseReason: tt.reason}, "dev1"); got != tt.want {
			t.Errorf("%s: %q; want %q", tt.reason, got, tt.want)
		}
	}
}

// TestDataPathWords: the device's and the relay's reasons say what
// happened and what to do, not just the reason's name.
func TestDataPathWords(t *testing.T) {
	for _, reason := range []string{"relay_unreachable", "relay_refused", "relay_busy", "relay_disconnected", "device_disconnected", "agent_stopping"} {
		got := sessionEndWords(apitype.Session{State: apitype.SessionClosed, CloseReason: reason}, "dev1")
		if !strings.Contains(got, "dev1") || strings.Contains(got, "_") || !strings.Contains(got, "; ") {
			t.Errorf("%s: %q; want a sentence about dev1 that says what to do", reason, got)
		}
	}
}

// TestRequestRows: an owner's reason is shown escaped when it would drive
// the terminal; states and time left read plainly.
func TestRequestRows(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	r := apitype.SupportRequest{Kind: apitype.RequestSupport, State: apitype.RequestClaimed, ClaimedBy: "ann@example.com",
		Reason: "hums\x1b[2J", ExpiresAt: now.Add(90 * time.Minute)}
	if got := requestState(r); got != "claimed by ann@example.com" {
		t.Errorf("state %q", got)
	}
	if got := requestLeft(r, now); got == "-" {
		t.Errorf("time left %q", got)
	}
	if got := safe(r.Reason); strings.Contains(got, "\x1b") {
		t.Errorf("the reason reaches the terminal raw: %q", got)
	}
	r.State, r.CloseReason = apitype.RequestClosed, "wrong_codes"
	if got, left := requestState(r), requestLeft(r, now); got != "closed (wrong_codes)" || left != "-" {
		t.Errorf("closed: %q, %q", got, left)
	}
	if got := requestKind(apitype.SupportRequest{Kind: apitype.RequestApproval, RequestedBy: "bob@example.com"}); got != "approval (bob@example.com)" {
		t.Errorf("kind %q", got)
	}
}
