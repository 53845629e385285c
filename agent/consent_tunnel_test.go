package agent

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/porthole/porthole/agent/agentconsent"
	"github.com/porthole/porthole/agent/agentlog"
	"github.com/porthole/porthole/agent/agentowner"
	"github.com/porthole/porthole/agent/internal/agenttest"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/internal/testwait"
)

// newTestConsent is the owner's consent in mode, for device lab/dev1,
// telling no server (agentconsent's own tests try its queue), recording
// events in log (nil: none).
func newTestConsent(t *testing.T, mode agentconsent.Mode, log *agentlog.Log) *agentconsent.Consent {
	t.Helper()
	c, err := agentconsent.New(agentconsent.Options{Config: agentconsent.Config{Mode: mode}, Fleet: "lab", Device: "dev1", Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// consentTunnels is Tunnels of an enrolled device under consent c, whose
// relay dials are counted and fail.
func consentTunnels(t *testing.T, c *agentconsent.Consent) (*Tunnels, *atomic.Int32) {
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

// waitState waits until a session reported want.
func waitState(t *testing.T, st *agenttest.States, want control.State) {
	t.Helper()
	testwait.For(t, 5*time.Second, "state "+want.Kind+" "+want.Reason, func() bool {
		for _, s := range st.List() {
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
	c := newTestConsent(t, agentconsent.Manual, nil)
	tn, dials := consentTunnels(t, c)
	var st agenttest.States
	tn.Open(t.Context(), agenttest.OpenCmd("s1"), st.Report)
	waitState(t, &st, control.TunnelDown("s1", control.CloseNoConsent))
	if n := dials.Load(); n != 0 {
		t.Fatalf("the relay was dialled %d times without consent", n)
	}
	if _, _, err := c.Request("", time.Hour); err != nil {
		t.Fatal(err)
	}
	tn.Open(t.Context(), agenttest.OpenCmd("s2"), st.Report)
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
	c := newTestConsent(t, agentconsent.Approve, nil)
	tn, dials := consentTunnels(t, c)
	var st agenttest.States
	tn.Open(t.Context(), agenttest.OpenCmd("s1"), st.Report)
	waitState(t, &st, control.State{Kind: control.StateWaitingConsent, Session: "s1"})
	c.Revoke()
	tn.CloseAll(control.CloseRevoked)
	waitState(t, &st, control.TunnelDown("s1", control.CloseRevoked))

	tn.Open(t.Context(), agenttest.OpenCmd("s2"), st.Report)
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
	c := newTestConsent(t, agentconsent.Manual, nil)
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

// TestOwnerRevokeEndsSessionsAtOnce: the owner's revoke (agentowner, with
// the agent's Tunnels as its sessions) ends a session waiting for the
// owner within a second, reported as revoked.
func TestOwnerRevokeEndsSessionsAtOnce(t *testing.T) {
	t.Parallel()
	c := newTestConsent(t, agentconsent.Approve, nil)
	tn, _ := consentTunnels(t, c)
	owner, err := agentowner.New(agentowner.Options{Consent: c, Sessions: tn})
	if err != nil {
		t.Fatal(err)
	}
	var st agenttest.States
	tn.Open(t.Context(), agenttest.OpenCmd("s1"), st.Report)
	waitState(t, &st, control.State{Kind: control.StateWaitingConsent, Session: "s1"})
	start := time.Now()
	if rev := owner.Revoke(); rev.Sessions != 1 {
		t.Fatalf("revoke %+v; want one session ended", rev)
	}
	waitState(t, &st, control.TunnelDown("s1", control.CloseRevoked))
	if d := time.Since(start); d > time.Second {
		t.Errorf("the session ended %v after revoke; want within a second", d)
	}
}

// TestPolicyPortsNarrowOnly: a session reaches only the ports its command
// asked for that the fleet's policy in it also names; the owner's
// allow_ports then apply on top (agentssh TestDirectTCPIPSessionPorts),
// so a policy naming more ports than the owner allows grants nothing
// more.
func TestPolicyPortsNarrowOnly(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		policy *control.Policy
		want   []int
	}{
		{"no policy", nil, []int{22, 80, 443}},
		{"a policy that names no ports", &control.Policy{ConsentFloor: control.FloorApprove}, []int{22, 80, 443}},
		{"a policy naming some", &control.Policy{Ports: []int{80, 8080, 9090}}, []int{80}},
		{"a policy allowing none", &control.Policy{Ports: []int{}}, []int{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := agenttest.OpenCmd("s1")
			cmd.Ports, cmd.Policy = []int{22, 80, 443}, tt.policy
			if got := askedPorts(cmd); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("askedPorts = %v; want %v", got, tt.want)
			}
		})
	}

	// What the SSH server asks of a session that waits for its owner.
	c := newTestConsent(t, agentconsent.Approve, nil)
	tn, _ := consentTunnels(t, c)
	cmd := agenttest.OpenCmd("s2")
	cmd.Ports, cmd.Policy = []int{22, 80}, &control.Policy{Ports: []int{80, 443}}
	var st agenttest.States
	tn.Open(t.Context(), cmd, st.Report)
	waitState(t, &st, control.State{Kind: control.StateWaitingConsent, Session: "s2"})
	if got := tn.sessionPorts("s2"); fmt.Sprint(got) != "[80]" {
		t.Errorf("the SSH server is told the session's ports are %v; want [80]", got)
	}
	tn.CloseAll(control.CloseRevoked)
	waitState(t, &st, control.TunnelDown("s2", control.CloseRevoked))
}

// TestPolicyForgedRefused: an open command whose fleet policy was changed
// on its way to widen it (more ports, no consent floor) fails the
// signature and opens nothing; the command as signed applies its floor to
// a device whose owner chose auto.
func TestPolicyForgedRefused(t *testing.T) {
	t.Parallel()
	d := enrollDevice(t, uniqueName("dev"), nil)
	c := newTestConsent(t, agentconsent.Auto, nil)
	tn, dials := consentTunnels(t, c)
	opts := d.options(t)
	opts.Sessions = tn
	startAgent(t, opts)
	d.states.Expect(t, "online")

	cmd := d.command("floored")
	cmd.Ports, cmd.Policy = []int{22}, &control.Policy{Ports: []int{22}, ConsentFloor: control.FloorApprove, RequestedBy: "alice@example.com"}
	signed := d.sign(t, cmd)
	var env struct{ Payload, Sig string }
	if err := json.Unmarshal(signed, &env); err != nil {
		t.Fatal(err)
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	for _, edit := range [][2]string{
		{`"policy":{"ports":[22],`, `"policy":{"ports":[22,80,443],`},
		{`"consent_floor":"approve",`, ``},
	} {
		forged := strings.Replace(string(payload), edit[0], edit[1], 1)
		if forged == string(payload) {
			t.Fatalf("%s is not in the payload %s", edit[0], payload)
		}
		out, _ := json.Marshal(map[string]string{"payload": base64.StdEncoding.EncodeToString([]byte(forged)), "sig": env.Sig})
		d.broker.Publish(t, d.cmdTopic(), out)
		d.states.Expect(t, "rejected "+control.ReasonBadSignature)
	}
	d.broker.Publish(t, d.cmdTopic(), signed)
	d.states.Expect(t, "waiting_consent floored")
	if n := dials.Load(); n != 0 {
		t.Fatalf("the relay was dialled %d times", n)
	}
	if p := c.Status().Pending; len(p) != 1 || p[0].Session != "floored" {
		t.Errorf("pending for the owner: %+v; want the floored session", p)
	}
}
