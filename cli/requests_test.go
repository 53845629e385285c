package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/apitype"
)

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
