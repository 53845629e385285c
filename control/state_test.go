package control

import (
	"strings"
	"testing"
)

func TestStateRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		s    State
		want string
	}{
		{State{Kind: StateOnline}, "online"},
		{State{Kind: StateOffline}, "offline"},
		{State{Kind: StateTunnelUp, Session: "s-1"}, "tunnel_up s-1"},
		{State{Kind: StateTunnelDown, Session: "0f2c.A_9", Reason: "idle_timeout"}, "tunnel_down 0f2c.A_9 idle_timeout"},
		{State{Kind: StateRejected, Reason: ReasonReplayed}, "rejected replayed"},
		{State{Kind: StateWaitingConsent, Session: "ses_1"}, "waiting_consent ses_1"},
		{State{Kind: StateTunnelUp, Session: strings.Repeat("s", 64)}, "tunnel_up " + strings.Repeat("s", 64)},
	} {
		b, err := tt.s.Marshal()
		if err != nil || string(b) != tt.want {
			t.Errorf("%+v.Marshal() = %q, %v; want %q", tt.s, b, err, tt.want)
			continue
		}
		if got, err := ParseState(b); err != nil || got != tt.s {
			t.Errorf("ParseState(%q) = %+v, %v; want %+v", b, got, err, tt.s)
		}
	}
}

func TestParseStateRefuses(t *testing.T) {
	long := strings.Repeat("s", 65)
	for _, msg := range []string{
		"", " ", "ONLINE", "online ", " online", "online extra", "offline\n", "reboot",
		"tunnel_up", "tunnel_up ", "tunnel_up a b", "tunnel_up  s1", "tunnel_up s/1", "tunnel_up +", "tunnel_up s\x00",
		"tunnel_down s1", "tunnel_down s1 idle timeout", "tunnel_down s1 reason\r",
		"rejected", "rejected bad/reason", "rejected a b",
		"waiting_consent", "waiting_consent s1 300", "waiting_consent s/1",
		"tunnel_up " + long, "tunnel_down s " + long, strings.Repeat("x", 1<<16),
	} {
		if got, err := ParseState([]byte(msg)); err == nil {
			t.Errorf("ParseState(%q) = %+v; want an error", msg, got)
		}
	}
}

func TestStateMarshalRefuses(t *testing.T) {
	for _, s := range []State{
		{},
		{Kind: "reboot"},
		{Kind: StateOnline, Session: "s1"},
		{Kind: StateOffline, Reason: "r"},
		{Kind: StateTunnelUp},
		{Kind: StateTunnelUp, Session: "s1", Reason: "r"},
		{Kind: StateTunnelUp, Session: "s 1"},
		{Kind: StateTunnelDown, Session: "s1"},
		{Kind: StateTunnelDown, Session: "s1", Reason: "a\nb"},
		{Kind: StateRejected, Session: "s1", Reason: "expired"},
		{Kind: StateRejected, Reason: strings.Repeat("r", 65)},
	} {
		if b, err := s.Marshal(); err == nil {
			t.Errorf("%+v.Marshal() = %q; want an error", s, b)
		}
	}
}

// TestRejectReasonsAreTokens: every reason Verify gives fits in a
// "rejected <reason>" state message.
func TestRejectReasonsAreTokens(t *testing.T) {
	for _, r := range []string{
		ReasonTooLarge, ReasonMalformed, ReasonBadSignature, ReasonWrongVersion, ReasonUnknownType,
		ReasonWrongFleet, ReasonWrongDevice, ReasonExpired, ReasonTooFarAhead, ReasonReplayed, ReasonInternal,
	} {
		if _, err := (State{Kind: StateRejected, Reason: r}).Marshal(); err != nil {
			t.Errorf("reason %q: %v", r, err)
		}
	}
}
