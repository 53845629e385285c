package agent

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/internal/testwait"
)

// consentTunnels is Tunnels of an enrolled device under consent c, whose
// relay dials are counted and fail.
func consentTunnels(t *testing.T, c *Consent) (*Tunnels, *atomic.Int32) {
	t.Helper()
	d := enrollDevice(t, uniqueName("dev"), nil)
	var dials atomic.Int32
	tn, err := NewTunnels(TunnelOptions{State: d.State, Consent: c,
		NetDial: func(context.Context, string, string) (net.Conn, error) {
			dials.Add(1)
			return nil, errors.New("no relay in this test")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tn, &dials
}

func waitState(t *testing.T, st *states, want control.State) {
	t.Helper()
	testwait.For(t, 5*time.Second, "state "+want.Kind+" "+want.Reason, func() bool {
		for _, s := range st.list() {
			if s == want {
				return true
			}
		}
		return false
	})
}

// TestTunnelsNeedConsent: in manual mode with no window a verified open is
// answered tunnel_down no_consent and the relay is never dialled; with a
// window it is.
func TestTunnelsNeedConsent(t *testing.T) {
	t.Parallel()
	c, _ := newTestConsent(t, ConsentManual, nil)
	tn, dials := consentTunnels(t, c)
	var st states
	tn.Open(t.Context(), openCmd("s1"), st.report)
	waitState(t, &st, control.TunnelDown("s1", control.CloseNoConsent))
	if n := dials.Load(); n != 0 {
		t.Fatalf("the relay was dialled %d times without consent", n)
	}
	if _, _, err := c.Request("", time.Hour); err != nil {
		t.Fatal(err)
	}
	tn.Open(t.Context(), openCmd("s2"), st.report)
	waitState(t, &st, control.TunnelDown("s2", control.CloseRelayUnreachable))
	// Once by the relay's protocol, once by its WebSocket, both failing.
	if n := dials.Load(); n != 2 {
		t.Fatalf("the relay was dialled %d times with a window open; want 2 (TLS, then a WebSocket)", n)
	}
}

// TestTunnelsApproval: a session waits for the owner; a revoke while it
// waits ends it as revoked, and an approval lets it dial.
func TestTunnelsApproval(t *testing.T) {
	t.Parallel()
	c, _ := newTestConsent(t, ConsentApprove, nil)
	tn, dials := consentTunnels(t, c)
	var st states
	tn.Open(t.Context(), openCmd("s1"), st.report)
	waitState(t, &st, control.State{Kind: control.StateWaitingConsent, Session: "s1"})
	c.Revoke()
	tn.CloseAll(control.CloseRevoked)
	waitState(t, &st, control.TunnelDown("s1", control.CloseRevoked))

	tn.Open(t.Context(), openCmd("s2"), st.report)
	waitState(t, &st, control.State{Kind: control.StateWaitingConsent, Session: "s2"})
	if n := dials.Load(); n != 0 {
		t.Fatalf("the relay was dialled %d times before the owner approved", n)
	}
	if _, err := c.Answer("s2", true); err != nil {
		t.Fatal(err)
	}
	waitState(t, &st, control.TunnelDown("s2", control.CloseRelayUnreachable))
	if n := dials.Load(); n != 2 {
		t.Fatalf("dials after the approval: %d; want 2 (TLS, then a WebSocket)", n)
	}
}

// TestModeClaimsChangeNothing: a signed open command that claims another
// consent mode changes nothing. The command format has no such field, so
// the agent's strict decoder refuses the command outright; and a session
// opened next, by a plain command, still needs the owner's window.
func TestModeClaimsChangeNothing(t *testing.T) {
	t.Parallel()
	d := enrollDevice(t, uniqueName("dev"), nil)
	c, _ := newTestConsent(t, ConsentManual, nil)
	tn, dials := consentTunnels(t, c)
	opts := d.options(t)
	opts.Sessions = tn
	startAgent(t, opts)
	d.states.Expect(t, "online")

	for i, claim := range []string{`"consent":"auto"`, `"mode":"auto"`, `"consent_mode":"auto","code":""`} {
		cmd := d.command(fmt.Sprintf("claim-%d", i))
		cmd.V, cmd.Nonce = control.Version, fmt.Sprintf("nonce-for-claim-%d-xxxxxxxx", i)
		payload, err := json.Marshal(cmd)
		if err != nil {
			t.Fatal(err)
		}
		payload = append(payload[:len(payload)-1], []byte(","+claim+"}")...)
		env, _ := json.Marshal(map[string]string{
			"payload": base64.StdEncoding.EncodeToString(payload),
			"sig":     base64.StdEncoding.EncodeToString(ed25519.Sign(d.api.Keys.Control, payload)),
		})
		d.broker.Publish(t, d.cmdTopic(), env)
		d.states.Expect(t, "rejected "+control.ReasonMalformed)
	}
	d.broker.Publish(t, d.cmdTopic(), d.sign(t, d.command("plain")))
	d.states.Expect(t, "tunnel_down plain "+string(control.CloseNoConsent))
	if n := dials.Load(); n != 0 {
		t.Fatalf("the relay was dialled %d times", n)
	}
}
