package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/humanize"
)

// TestCloseWordsEveryReason: every reason a session can close for has
// words of its own, a sentence that says what happened rather than the
// reason's name, and the table has no words for a reason control does not
// name.
func TestCloseWordsEveryReason(t *testing.T) {
	reasons := control.CloseReasons()
	for _, r := range reasons {
		t.Run(string(r), func(t *testing.T) {
			if _, ok := closeWords[r]; !ok {
				t.Fatalf("closeWords has no words for %q", r)
			}
			s := apitype.Session{Fleet: "acme", State: apitype.SessionClosed, CloseReason: string(r), IdleTimeoutS: 900, MaxDurationS: 7200}
			got := sessionEndWords(s, "dev1")
			named := "(" + strings.ReplaceAll(string(r), "_", " ") + ")"
			if got == "" || strings.Contains(got, "_") || strings.Contains(got, "%!") || strings.HasSuffix(got, named) {
				t.Errorf("sessionEndWords(%s) = %q; want a sentence of its own", r, got)
			}
		})
	}
	if len(closeWords) != len(reasons) {
		t.Errorf("closeWords has words for %d reasons; control names %d", len(closeWords), len(reasons))
	}
}

// TestCloseWordsUnknown: a reason this CLI does not know (a newer agent's)
// is named as given, in a plain sentence about the device.
func TestCloseWordsUnknown(t *testing.T) {
	for _, tt := range []struct{ reason, want string }{
		{"", "the session on dev1 closed"},
		{"battery_low", "dev1 closed the session (battery low)"},
		{"Odd.Word-9", "dev1 closed the session (Odd.Word-9)"},
		{"bell\a", `dev1 closed the session ("bell\a")`}, // a control character never reaches the terminal raw
	} {
		if got := sessionEndWords(apitype.Session{State: apitype.SessionClosed, CloseReason: tt.reason}, "dev1"); got != tt.want {
			t.Errorf("sessionEndWords(%q) = %q; want %q", tt.reason, got, tt.want)
		}
	}
}

// TestCloseWordsSession: the words that read the session say its limits,
// how long the device had, and where to look.
func TestCloseWordsSession(t *testing.T) {
	created := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	s := apitype.Session{Fleet: "acme", State: apitype.SessionClosed, IdleTimeoutS: 900, MaxDurationS: 7200,
		CreatedAt: created, ClosedAt: created.Add(30 * time.Second)}
	for _, tt := range []struct {
		reason control.CloseReason
		has    string
	}{
		{control.CloseIdleTimeout, humanize.Duration(15 * time.Minute)},
		{control.CloseMaxDuration, humanize.Duration(2 * time.Hour)},
		{control.CloseDeviceUnreachable, "within " + humanize.Duration(30*time.Second)},
		{control.CloseEngineer, "porthole sessions --device dev1.acme"},
		{control.CloseOnCommand, "porthole sessions --device dev1.acme"},
		{control.CloseRelayRefused, "porthole audit --device dev1.acme"},
	} {
		s.CloseReason = string(tt.reason)
		if got := sessionEndWords(s, "dev1"); !strings.Contains(got, tt.has) {
			t.Errorf("sessionEndWords(%s) = %q; want it to say %q", tt.reason, got, tt.has)
		}
	}
}

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
