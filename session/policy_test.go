package session

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/fleetpolicy"
	"github.com/porthole/porthole/store"
)

// mkUser adds a user to the fixture's store, an operator of its fleet
// (who may approve sessions there).
func (fx *fixture) mkUser(t *testing.T, email string) *store.User {
	t.Helper()
	u := &store.User{Email: email, PasswordHash: "x", TOTPSecret: "x"}
	if err := fx.st.CreateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	if err := fx.st.SetRole(t.Context(), fx.dev.FleetID, u.ID, store.RoleOperator); err != nil {
		t.Fatal(err)
	}
	return u
}

// noCommand checks that nothing reached the device.
func (fx *fixture) noCommand(t *testing.T) {
	t.Helper()
	select {
	case c := <-fx.cmds:
		t.Fatalf("a command reached the device: %+v", c)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestPolicyOpen: the fleet's policy refuses ports it does not allow
// (recording nothing), shortens the limits, and puts in the open command
// what the device applies itself.
func TestPolicyOpen(t *testing.T) {
	fx := newFixture(t, nil)
	pol := &store.FleetPolicy{Ports: []int{22, 8080}, ConsentFloor: store.FloorApprove, MaxDuration: time.Hour,
		IdleTimeout: 10 * time.Minute, Version: 3}

	_, err := fx.m.Open(t.Context(), Request{Device: fx.dev, User: fx.user, PublicKey: newSigner(t).PublicKey(),
		Ports: []int{22, 80}, Policy: pol})
	var r *fleetpolicy.Refusal
	if !errors.As(err, &r) || r.Rule != fleetpolicy.RulePorts || r.Words != "fleet acme allows ports 22, 8080 only, not 80" {
		t.Fatalf("Open for a port the fleet does not allow = %v; want the ports rule's refusal", err)
	}
	if ss, _ := fx.st.ListSessions(t.Context(), store.SessionFilter{}); len(ss) != 0 {
		t.Errorf("a refused request recorded %d sessions", len(ss))
	}
	fx.noCommand(t)

	o := fx.open(t, func(r *Request) { r.Ports, r.Policy, r.IdleTimeout = []int{8080}, pol, 5*time.Minute })
	if o.Session.IdleTimeout != 5*time.Minute || o.Session.MaxDuration != time.Hour {
		t.Errorf("limits %v, %v; want 5m (asked) and 1h (the fleet's cap)", o.Session.IdleTimeout, o.Session.MaxDuration)
	}
	cmd := fx.cmd(t)
	want := &control.Policy{Ports: []int{22, 8080}, ConsentFloor: control.FloorApprove, RequestedBy: "ann@example.com"}
	if !reflect.DeepEqual(cmd.Policy, want) || cmd.MaxDurationS != 3600 || cmd.IdleTimeoutS != 300 {
		t.Errorf("open command: policy %+v, limits %d %d; want %+v, 3600, 300", cmd.Policy, cmd.MaxDurationS, cmd.IdleTimeoutS, want)
	}
	if o.Session.Policy != fleetpolicy.Encode(want) {
		t.Errorf("the session keeps policy %q; want what the command carried", o.Session.Policy)
	}
	evs := fx.sessionEvents(t, o.Session.ID)
	if d := evs[0].Detail; evs[0].Kind != audit.SessionRequested ||
		d["policy"] != "ports 22, 8080; consent floor approve; sessions at most 1h; idle at most 10m" || d["policy_version"] != "3" ||
		d["limits"] != "idle 5m (asked), at most 1h (fleet policy)" {
		t.Errorf("session_requested: %+v", evs[0])
	}

	// A fleet that asks nothing of the device sends no policy: agents
	// that predate it still take the session.
	fx.open(t, func(r *Request) { r.Policy = &store.FleetPolicy{MaxDuration: time.Hour, Version: 1} })
	if cmd := fx.cmd(t); cmd.Policy != nil {
		t.Errorf("a policy of limits only sent %+v", cmd.Policy)
	}
}

// TestFourEyes: a session of a four-eyes fleet waits for a second
// engineer; the one who asked cannot approve it; the approval sends the
// open command naming both, once.
func TestFourEyes(t *testing.T) {
	fx := newFixture(t, nil)
	bob, cat := fx.mkUser(t, "bob@example.com"), fx.mkUser(t, "cat@example.com")
	pol := &store.FleetPolicy{FourEyes: true, Ports: []int{22}, Version: 1}
	o := fx.open(t, func(r *Request) { r.Policy = pol })
	if o.Session.State != store.SessionRequested || !o.Session.WaitsForApproval() || o.FourEyes == nil ||
		o.FourEyes.Kind != store.RequestFourEyes || o.FourEyes.SessionID != o.Session.ID || o.FourEyes.RequestedBy != "ann@example.com" {
		t.Fatalf("four-eyes Open: session %+v, request %+v", o.Session, o.FourEyes)
	}
	if o.Certificate == nil {
		t.Error("no certificate: the engineer needs it once approved")
	}
	fx.noCommand(t)

	// The engineer who asked cannot approve their own session.
	_, err := fx.m.Approve(t.Context(), o.Session.ID, fx.user, pol)
	var r *fleetpolicy.Refusal
	if !errors.As(err, &r) || r.Rule != fleetpolicy.RuleFourEyes {
		t.Fatalf("Approve by the requester = %v; want the four-eyes rule's refusal", err)
	}
	fx.noCommand(t)

	got, err := fx.m.Approve(t.Context(), o.Session.ID, bob, pol)
	if err != nil || got.State != store.SessionConnecting || got.ApprovedEmail != "bob@example.com" {
		t.Fatalf("Approve by bob = %+v, %v", got, err)
	}
	cmd := fx.cmd(t)
	want := &control.Policy{Ports: []int{22}, RequestedBy: "ann@example.com", ApprovedBy: "bob@example.com"}
	if cmd.Type != control.TypeOpen || cmd.Session != o.Session.ID || !reflect.DeepEqual(cmd.Policy, want) {
		t.Errorf("open command %+v, policy %+v; want one naming both engineers, %+v", cmd, cmd.Policy, want)
	}
	if _, err := fx.m.Approve(t.Context(), o.Session.ID, cat, pol); !errors.Is(err, ErrNotWaiting) {
		t.Errorf("a second approval = %v; want ErrNotWaiting", err)
	}
	fx.noCommand(t)
	req, err := fx.st.GetSupportRequest(t.Context(), o.FourEyes.ID)
	if err != nil || req.State != store.RequestClosed || req.CloseReason != "approved" || req.ClosedBy != "bob@example.com" {
		t.Errorf("the four-eyes request after the approval: %+v, %v", req, err)
	}
	var kinds []audit.Kind
	for _, e := range fx.sessionEvents(t, o.Session.ID) {
		kinds = append(kinds, e.Kind)
		if e.Kind == audit.FourEyesApproved && (e.Detail["requested_by"] != "ann@example.com" || e.Detail["approved_by"] != "bob@example.com" ||
			e.Actor.Name != "bob@example.com" || e.Detail["rule"] != "four_eyes") {
			t.Errorf("four_eyes_approved: %+v", e)
		}
	}
	if !reflect.DeepEqual(kinds, []audit.Kind{audit.SessionRequested, audit.FourEyesApproved, audit.SupportRequestClosed}) {
		t.Errorf("events %v", kinds)
	}
}

// TestFourEyesDeniedAndTimedOut: a second engineer's refusal, the
// requester's giving up, and nobody's answer each close the session and
// its request, and send the device nothing.
func TestFourEyesDeniedAndTimedOut(t *testing.T) {
	fx := newFixture(t, func(c *Config) { c.FourEyesTimeout = 200 * time.Millisecond })
	bob := fx.mkUser(t, "bob@example.com")
	pol := &store.FleetPolicy{FourEyes: true, Version: 1}
	request := func(id string) *store.SupportRequest {
		rs, err := fx.st.ListSupportRequests(t.Context(), store.SupportRequestFilter{SessionID: id, Kind: store.RequestFourEyes})
		if err != nil || len(rs) != 1 {
			t.Fatalf("the four-eyes request of %s: %v %v", id, rs, err)
		}
		return rs[0]
	}

	denied := fx.open(t, func(r *Request) { r.Policy = pol })
	ses, err := fx.m.Deny(t.Context(), denied.Session.ID, bob)
	if err != nil || ses.CloseReason != string(control.CloseFourEyesDenied) {
		t.Fatalf("Deny = %+v, %v", ses, err)
	}
	if r := request(denied.Session.ID); r.CloseReason != "denied" || r.ClosedBy != "bob@example.com" {
		t.Errorf("request after the denial: %+v", r)
	}
	if _, err := fx.m.Approve(t.Context(), denied.Session.ID, bob, pol); !errors.Is(err, ErrNotWaiting) {
		t.Errorf("Approve after the denial = %v; want ErrNotWaiting", err)
	}
	evs := fx.sessionEvents(t, denied.Session.ID)
	if len(evs) < 3 || evs[1].Kind != audit.FourEyesDenied || evs[1].Detail["denied_by"] != "bob@example.com" ||
		evs[2].Kind != audit.SessionClosed || evs[2].Detail["reason"] != "four_eyes_denied" {
		t.Errorf("events of the denied session: %+v", evs)
	}

	withdrawn := fx.open(t, func(r *Request) { r.Policy = pol })
	ctx := audit.WithActor(t.Context(), audit.User(fx.user.ID, fx.user.Email))
	if ses, err := fx.m.EngineerClose(ctx, withdrawn.Session.ID); err != nil || ses.CloseReason != string(control.CloseEngineer) {
		t.Fatalf("EngineerClose while waiting = %+v, %v", ses, err)
	}
	if r := request(withdrawn.Session.ID); r.State != store.RequestClosed || r.CloseReason != "engineer_closed" || r.ClosedBy != "ann@example.com" {
		t.Errorf("request after its engineer gave up: %+v", r)
	}

	late := fx.open(t, func(r *Request) { r.Policy = pol })
	ses = fx.waitClosed(t, late.Session.ID)
	if ses.CloseReason != string(control.CloseFourEyesTimeout) {
		t.Errorf("close reason %q; want four_eyes_timeout", ses.CloseReason)
	}
	if r := request(late.Session.ID); r.State != store.RequestClosed || r.CloseReason != "four_eyes_timeout" {
		t.Errorf("request after the timeout: %+v", r)
	}
	fx.noCommand(t)
}

// TestFourEyesLimitsFromApproval: an approved session's device has the
// connect timeout, and the session its maximum length, from the approval,
// not from the request: waiting for a colleague takes nothing off them.
func TestFourEyesLimitsFromApproval(t *testing.T) {
	fx := newFixture(t, func(c *Config) { c.ConnectTimeout = 300 * time.Millisecond })
	bob := fx.mkUser(t, "bob@example.com")
	pol := &store.FleetPolicy{FourEyes: true, Version: 1}
	o := fx.open(t, func(r *Request) { r.Policy = pol })
	time.Sleep(400 * time.Millisecond) // longer than the connect timeout, waiting for bob
	if ses, _ := fx.m.Get(t.Context(), o.Session.ID); ses.State != store.SessionRequested {
		t.Fatalf("a session waiting for approval was closed by the connect timeout: %+v", ses)
	}
	if _, err := fx.m.Approve(t.Context(), o.Session.ID, bob, pol); err != nil {
		t.Fatal(err)
	}
	fx.cmd(t)
	time.Sleep(100 * time.Millisecond)
	if ses, _ := fx.m.Get(t.Context(), o.Session.ID); ses.State != store.SessionConnecting {
		t.Fatalf("closed at once after its approval: %+v", ses)
	}
	if ses := fx.waitClosed(t, o.Session.ID); ses.CloseReason != string(control.CloseDeviceUnreachable) {
		t.Errorf("close reason %q; want device_unreachable", ses.CloseReason)
	}

	// A fleet capping sessions at 1 s: the wait is longer, the session
	// still gets its second once approved, and its certificate lasts for
	// a session approved at the last moment.
	pol = &store.FleetPolicy{FourEyes: true, MaxDuration: time.Second, Version: 2}
	o = fx.open(t, func(r *Request) { r.Policy = pol })
	if end := o.Session.CreatedAt.Add(DefaultFourEyesTimeout + time.Second); o.Certificate.ValidBefore < uint64(end.Unix()) {
		t.Errorf("certificate valid before %v; a session approved at the last moment ends %v", time.Unix(int64(o.Certificate.ValidBefore), 0), end)
	}
	time.Sleep(1200 * time.Millisecond)
	if ses, _ := fx.m.Get(t.Context(), o.Session.ID); ses.State != store.SessionRequested {
		t.Fatalf("a session waiting for approval was closed by its maximum length: %+v", ses)
	}
	approved, err := fx.m.Approve(t.Context(), o.Session.ID, bob, pol)
	if err != nil {
		t.Fatal(err)
	}
	fx.cmd(t)
	fx.m.HandleState("acme", "dev1", control.State{Kind: control.StateTunnelUp, Session: o.Session.ID})
	ses := fx.waitClosed(t, o.Session.ID)
	if ses.CloseReason != string(control.CloseMaxDuration) || ses.ClosedAt.Sub(approved.ApprovedAt) < time.Second {
		t.Errorf("closed %v after its approval as %q; want max_duration, a second after it", ses.ClosedAt.Sub(approved.ApprovedAt), ses.CloseReason)
	}
}

// TestFourEyesPolicyChanged: an approval is under the policy as it is
// then: a port taken away meanwhile refuses it, and a consent floor added
// meanwhile goes to the device.
func TestFourEyesPolicyChanged(t *testing.T) {
	fx := newFixture(t, nil)
	bob := fx.mkUser(t, "bob@example.com")
	o := fx.open(t, func(r *Request) { r.Ports, r.Policy = []int{80}, &store.FleetPolicy{FourEyes: true, Version: 1} })
	_, err := fx.m.Approve(t.Context(), o.Session.ID, bob, &store.FleetPolicy{FourEyes: true, Ports: []int{22}, Version: 2})
	var r *fleetpolicy.Refusal
	if !errors.As(err, &r) || r.Rule != fleetpolicy.RulePorts {
		t.Fatalf("Approve after the port was taken away = %v; want the ports rule's refusal", err)
	}
	fx.noCommand(t)
	if _, err := fx.m.Approve(t.Context(), o.Session.ID, bob, &store.FleetPolicy{FourEyes: true, ConsentFloor: store.FloorManual, Version: 3}); err != nil {
		t.Fatal(err)
	}
	if cmd := fx.cmd(t); cmd.Policy == nil || cmd.Policy.ConsentFloor != control.FloorManual {
		t.Errorf("open command's policy %+v; want the floor set meanwhile", cmd.Policy)
	}
}

// TestAgentOutdated: a device whose agent refuses an open command
// carrying the fleet's policy as malformed ends the sessions being opened
// with such a command at once, with words; others stay.
func TestAgentOutdated(t *testing.T) {
	fx := newFixture(t, nil)
	plain := fx.open(t, nil)
	fx.cmd(t)
	floored := fx.open(t, func(r *Request) { r.Policy = &store.FleetPolicy{ConsentFloor: store.FloorApprove, Version: 1} })
	fx.cmd(t)
	fx.m.HandleState("acme", "dev1", control.State{Kind: control.StateRejected, Reason: control.ReasonReplayed})
	if ses, _ := fx.m.Get(t.Context(), floored.Session.ID); !ses.Open() {
		t.Fatalf("a rejection for another reason closed the session: %+v", ses)
	}
	fx.m.HandleState("acme", "dev2", control.State{Kind: control.StateRejected, Reason: control.ReasonMalformed})
	if ses, _ := fx.m.Get(t.Context(), floored.Session.ID); !ses.Open() {
		t.Fatalf("another device's rejection closed the session: %+v", ses)
	}
	fx.m.HandleState("acme", "dev1", control.State{Kind: control.StateRejected, Reason: control.ReasonMalformed})
	if ses := fx.waitClosed(t, floored.Session.ID); ses.CloseReason != string(control.CloseAgentOutdated) {
		t.Errorf("close reason %q; want agent_outdated", ses.CloseReason)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if ses, _ := fx.m.Wait(ctx, plain.Session.ID, store.SessionClosed); !ses.Open() {
		t.Errorf("a session without a policy was closed: %+v", ses)
	}
}

// TestAgentReportedOutdated: a device whose agent reported it cannot
// apply a fleet's policy is refused up front, in words naming its version
// and the rule, with nothing recorded or sent; one that reported the
// capability, and one that never reported (today's behaviour: asked, and
// agent_outdated if it cannot), are asked; a fleet asking nothing of the
// device takes an old agent's session.
func TestAgentReportedOutdated(t *testing.T) {
	fx := newFixture(t, nil)
	old := *fx.dev
	old.Agent = store.AgentInfo{Version: "0.9.0", Capabilities: []string{control.CapRelay2}, Consent: "auto", ReportedAt: time.Now()}
	floor := &store.FleetPolicy{ConsentFloor: store.FloorManual, Version: 1}
	for _, tt := range []struct {
		pol   *store.FleetPolicy
		rule  string
		words string
	}{
		{floor, fleetpolicy.RuleConsentFloor, "dev1 runs porthole-agent 0.9.0, which cannot apply fleet acme's consent floor; update the agent"},
		{&store.FleetPolicy{Ports: []int{22}, Version: 1}, fleetpolicy.RulePorts, "dev1 runs porthole-agent 0.9.0, which cannot apply fleet acme's port list; update the agent"},
		{&store.FleetPolicy{FourEyes: true, Version: 1}, fleetpolicy.RuleFourEyes, "dev1 runs porthole-agent 0.9.0, which cannot apply fleet acme's four-eyes approval; update the agent"},
	} {
		_, err := fx.m.Open(t.Context(), Request{Device: &old, User: fx.user, PublicKey: newSigner(t).PublicKey(), Policy: tt.pol, Ports: []int{22}})
		var r *fleetpolicy.Refusal
		if !errors.As(err, &r) || r.Rule != tt.rule || r.Words != tt.words {
			t.Errorf("Open on an old agent under %s = %v; want %q", fleetpolicy.Describe(tt.pol), err, tt.words)
		}
	}
	if ss, _ := fx.st.ListSessions(t.Context(), store.SessionFilter{}); len(ss) != 0 {
		t.Errorf("a refused request recorded %d sessions", len(ss))
	}
	fx.noCommand(t)

	// Limits only: nothing for the device to apply, so the old agent
	// takes it.
	fx.open(t, func(r *Request) { r.Device, r.Policy = &old, &store.FleetPolicy{MaxDuration: time.Hour, Version: 1} })
	if cmd := fx.cmd(t); cmd.Policy != nil {
		t.Errorf("a policy of limits only sent %+v", cmd.Policy)
	}
	// A current agent, and one that never reported, are asked.
	current := old
	current.Agent.Capabilities = control.Capabilities()
	for _, d := range []*store.Device{&current, fx.dev} {
		fx.open(t, func(r *Request) { r.Device, r.Policy = d, floor })
		if cmd := fx.cmd(t); cmd.Policy == nil || cmd.Policy.ConsentFloor != control.FloorManual {
			t.Errorf("%+v: command policy %+v; want the floor", d.Agent, cmd.Policy)
		}
	}
}

// TestFourEyesAgentReportedMeanwhile: a device whose agent reports, while
// a four-eyes session waits, that it cannot apply the policy is not asked
// on the approval: the approver reads why.
func TestFourEyesAgentReportedMeanwhile(t *testing.T) {
	fx := newFixture(t, nil)
	pol := &store.FleetPolicy{FourEyes: true, Version: 1}
	o := fx.open(t, func(r *Request) { r.Policy = pol })
	if err := fx.st.SetDeviceAgent(t.Context(), fx.dev.ID, store.AgentInfo{Version: "0.9.0", Capabilities: []string{control.CapRelay2},
		Consent: "manual", ReportedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	_, err := fx.m.Approve(t.Context(), o.Session.ID, fx.mkUser(t, "bob@example.com"), pol)
	var r *fleetpolicy.Refusal
	if !errors.As(err, &r) || r.Words != "dev1 runs porthole-agent 0.9.0, which cannot apply fleet acme's four-eyes approval; update the agent" {
		t.Fatalf("Approve = %v; want the agent's refusal", err)
	}
	fx.noCommand(t)
}
