package api

import (
	"context"
	"crypto/ed25519"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/session"
	"github.com/porthole/porthole/store"
)

// fleetEvents is the audit log of a fleet, of the given kind.
func fleetEvents(t *testing.T, fl *store.Fleet, kind audit.Kind) []audit.Event {
	t.Helper()
	evs, err := fx.store.ListAudit(context.Background(), store.AuditFilter{FleetIDs: []string{fl.ID}, Limit: 1000})
	must(t, err)
	var out []audit.Event
	for _, e := range evs {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func policyPath(fl *store.Fleet) string { return "/api/v1/fleets/" + fl.Name + "/policy" }

// onlineDevice is a new device of fl, online.
func onlineDevice(t *testing.T, fl *store.Fleet) *store.Device {
	t.Helper()
	d := fx.newDevice(t, fl)
	must(t, fx.store.SetDevicePresence(context.Background(), store.DevicePresence{DeviceID: d.ID, Online: true, At: time.Now()}))
	return d
}

func setPolicy(t *testing.T, fl *store.Fleet, req apitype.SetFleetPolicyRequest) apitype.FleetPolicy {
	t.Helper()
	return decodeAs[apitype.FleetPolicy](t, do(t, fx.ts, "PUT", policyPath(fl), fx.tokens["owner"], req), http.StatusOK)
}

// ports is a policy's list of ports; none is [], not null.
func ports(p ...int) *[]int {
	if p == nil {
		p = []int{}
	}
	return &p
}

// TestPolicySetAndShow: the fleet's owners set its policy, every member
// reads it with who may change it, each change is in the audit log with
// the policy before and after, and a change over a version that is no
// longer the policy's is refused.
func TestPolicySetAndShow(t *testing.T) {
	t.Parallel()
	fl := fx.newFleet(t)
	got := decodeAs[apitype.FleetPolicy](t, do(t, fx.ts, "GET", policyPath(fl), fx.tokens["auditor"], nil), http.StatusOK)
	if got.Ports != nil || got.ConsentFloor != "" || got.FourEyes || got.Version != 0 ||
		strings.Join(got.Owners, ",") != "owner@example.com" || got.ServerMaxDurationS != 7200 || got.ServerIdleTimeoutS != 900 {
		t.Errorf("a fleet that set no policy: %+v", got)
	}

	got = setPolicy(t, fl, apitype.SetFleetPolicyRequest{Ports: ports(8080, 22, 22), ConsentFloor: "approve", MaxDurationS: 3600,
		IdleTimeoutS: 600, FourEyes: true})
	if got.Ports == nil || len(*got.Ports) != 2 || (*got.Ports)[0] != 22 || got.ConsentFloor != "approve" || got.MaxDurationS != 3600 ||
		got.IdleTimeoutS != 600 || !got.FourEyes || got.Version != 1 || got.UpdatedBy != "owner@example.com" {
		t.Errorf("policy set: %+v", got)
	}
	read := decodeAs[apitype.FleetPolicy](t, do(t, fx.ts, "GET", policyPath(fl), fx.tokens["operator"], nil), http.StatusOK)
	if read.Version != 1 || read.Ports == nil || !read.FourEyes {
		t.Errorf("policy read back: %+v", read)
	}

	// No port allowed is not no port named.
	got = setPolicy(t, fl, apitype.SetFleetPolicyRequest{Ports: ports(), Version: &got.Version})
	if got.Ports == nil || len(*got.Ports) != 0 || got.FourEyes || got.Version != 2 {
		t.Errorf("policy with no ports: %+v", got)
	}
	// The same write again (a retry) answers the policy it made.
	one := int64(1)
	again := setPolicy(t, fl, apitype.SetFleetPolicyRequest{Ports: ports(), Version: &one})
	if again.Version != 2 {
		t.Errorf("a retried write: %+v; want version 2, written once", again)
	}
	stale := int64(1)
	e := do(t, fx.ts, "PUT", policyPath(fl), fx.tokens["owner"], apitype.SetFleetPolicyRequest{FourEyes: true, Version: &stale}).
		wantError(t, http.StatusConflict, apitype.CodeConflict)
	if !strings.Contains(e.Message, "changed since you read it (it is at version 2, set by owner@example.com: no ports)") {
		t.Errorf("a stale change: %q", e.Message)
	}

	changes := fleetEvents(t, fl, audit.PolicyChanged)
	if len(changes) != 2 {
		t.Fatalf("%d policy_changed events; want 2", len(changes))
	}
	if d := changes[0].Detail; d["old"] != "none" || d["new"] != "ports 22, 8080; consent floor approve; sessions at most 1h; idle at most 10m; four-eyes" ||
		d["version"] != "1" || changes[0].Actor.Name != "owner@example.com" || changes[0].Fleet != fl.Name {
		t.Errorf("first change: %+v", changes[0])
	}
	if d := changes[1].Detail; d["old"] != "ports 22, 8080; consent floor approve; sessions at most 1h; idle at most 10m; four-eyes" || d["new"] != "no ports" {
		t.Errorf("second change: %+v", changes[1])
	}

	// Only its owners change it, and the operator reads who can.
	e = do(t, fx.ts, "PUT", policyPath(fl), fx.tokens["operator"], apitype.SetFleetPolicyRequest{}).wantError(t, http.StatusForbidden, apitype.CodeForbidden)
	if e.Message != "only a fleet owner can change the fleet's policy; you are an operator of "+fl.Name {
		t.Errorf("operator's change: %q", e.Message)
	}
	for _, tt := range []struct {
		name string
		body any
		want string
	}{
		{"a floor of auto", apitype.SetFleetPolicyRequest{ConsentFloor: "auto"}, "auto asks nothing"},
		{"an unknown floor", apitype.SetFleetPolicyRequest{ConsentFloor: "strict"}, `consent_floor "strict"`},
		{"port 0", apitype.SetFleetPolicyRequest{Ports: ports(0)}, "port 0 is not a port"},
		{"a negative cap", apitype.SetFleetPolicyRequest{MaxDurationS: -1}, "cannot be negative"},
		{"an unknown field", `{"allow_ports":[22]}`, "unknown field"},
	} {
		e := do(t, fx.ts, "PUT", policyPath(fl), fx.tokens["owner"], tt.body).wantError(t, http.StatusBadRequest, apitype.CodeBadRequest)
		if !strings.Contains(e.Message, tt.want) {
			t.Errorf("%s: %q; want it to say %q", tt.name, e.Message, tt.want)
		}
	}
}

// TestPolicyPorts: a session asking for a port the fleet does not allow
// is refused in words naming the rule and who can change it, and the
// refusal is in the audit log; one within the policy opens, and its
// session_requested names the rules that applied.
func TestPolicyPorts(t *testing.T) {
	t.Parallel()
	fl := fx.newFleet(t)
	d := onlineDevice(t, fl)
	setPolicy(t, fl, apitype.SetFleetPolicyRequest{Ports: ports(22)})
	path := "/api/v1/devices/" + d.ID + "/sessions"

	e := do(t, fx.ts, "POST", path, fx.tokens["operator"], apitype.CreateSessionRequest{PublicKey: engineerPublicKey, Ports: []int{22, 80}}).
		wantError(t, http.StatusForbidden, apitype.CodePolicy)
	want := "fleet " + fl.Name + " allows ports 22 only, not 80 (fleet policy, set by its owners: owner@example.com)"
	if e.Message != want {
		t.Errorf("refusal: %q; want %q", e.Message, want)
	}
	if ss, _ := fx.store.ListSessions(context.Background(), store.SessionFilter{DeviceID: d.ID}); len(ss) != 0 {
		t.Errorf("a refused request recorded %d sessions", len(ss))
	}
	refused := fleetEvents(t, fl, audit.PolicyRefused)
	if len(refused) != 1 || refused[0].Detail["rule"] != "ports" || refused[0].Detail["ports"] != "22, 80" ||
		refused[0].Device != d.Name || refused[0].Actor.Name != "operator@example.com" ||
		refused[0].Detail["refusal"] != "fleet "+fl.Name+" allows ports 22 only, not 80" {
		t.Errorf("policy_refused events: %+v", refused)
	}

	ok := decodeAs[apitype.CreateSessionResponse](t, do(t, fx.ts, "POST", path, fx.tokens["operator"],
		apitype.CreateSessionRequest{PublicKey: engineerPublicKey, Ports: []int{22}}), http.StatusCreated)
	if ok.Session.State != apitype.SessionConnecting || ok.FourEyesRequest != "" {
		t.Errorf("a session within the policy: %+v", ok)
	}
	requested := fleetEvents(t, fl, audit.SessionRequested)
	if len(requested) != 1 || requested[0].Detail["policy"] != "ports 22" || requested[0].Detail["policy_version"] != "1" {
		t.Errorf("session_requested: %+v", requested)
	}

	// None allowed: a shell only.
	setPolicy(t, fl, apitype.SetFleetPolicyRequest{Ports: ports()})
	e = do(t, fx.ts, "POST", path, fx.tokens["operator"], apitype.CreateSessionRequest{PublicKey: engineerPublicKey, Ports: []int{22}}).
		wantError(t, http.StatusForbidden, apitype.CodePolicy)
	if !strings.HasPrefix(e.Message, "fleet "+fl.Name+" allows no device ports") {
		t.Errorf("refusal with no ports allowed: %q", e.Message)
	}
	decodeAs[apitype.CreateSessionResponse](t, do(t, fx.ts, "POST", path, fx.tokens["operator"],
		apitype.CreateSessionRequest{PublicKey: engineerPublicKey}), http.StatusCreated)
}

// TestPolicyLimits: the fleet's caps shorten the server's limits, and
// the engineer may ask for shorter still.
func TestPolicyLimits(t *testing.T) {
	t.Parallel()
	fl := fx.newFleet(t)
	d := onlineDevice(t, fl)
	setPolicy(t, fl, apitype.SetFleetPolicyRequest{MaxDurationS: 1800, IdleTimeoutS: 300})
	path := "/api/v1/devices/" + d.ID + "/sessions"
	for _, tt := range []struct {
		name            string
		idle, max       int
		wantIdle, wantM int
	}{
		{"the fleet's caps", 0, 0, 300, 1800},
		{"asking longer", 900, 7200, 300, 1800},
		{"asking shorter", 60, 600, 60, 600},
	} {
		got := decodeAs[apitype.CreateSessionResponse](t, do(t, fx.ts, "POST", path, fx.tokens["operator"],
			apitype.CreateSessionRequest{PublicKey: engineerPublicKey, IdleTimeoutS: tt.idle, MaxDurationS: tt.max}), http.StatusCreated)
		if got.Session.IdleTimeoutS != tt.wantIdle || got.Session.MaxDurationS != tt.wantM {
			t.Errorf("%s: limits %d s, %d s; want %d s, %d s", tt.name, got.Session.IdleTimeoutS, got.Session.MaxDurationS, tt.wantIdle, tt.wantM)
		}
	}
	requested := fleetEvents(t, fl, audit.SessionRequested)
	if len(requested) != 3 || requested[0].Detail["limits"] != "idle 5m (fleet policy), at most 30m (fleet policy)" ||
		requested[2].Detail["limits"] != "idle 1m (asked), at most 10m (asked)" {
		t.Errorf("session_requested: %+v", requested)
	}
}

// TestFourEyesAPI: in a four-eyes fleet a session waits for a second
// engineer; the engineer who asked cannot approve it (refused by the
// rule, in the log), an auditor cannot either; another operator or owner
// can, once; both names are in the log; a refusal closes it.
func TestFourEyesAPI(t *testing.T) {
	t.Parallel()
	fl := fx.newFleet(t)
	d := onlineDevice(t, fl)
	setPolicy(t, fl, apitype.SetFleetPolicyRequest{FourEyes: true})
	open := func() apitype.CreateSessionResponse {
		t.Helper()
		return decodeAs[apitype.CreateSessionResponse](t, do(t, fx.ts, "POST", "/api/v1/devices/"+d.ID+"/sessions", fx.tokens["operator"],
			apitype.CreateSessionRequest{PublicKey: engineerPublicKey, Reason: "ticket 9"}), http.StatusCreated)
	}
	resp := open()
	if resp.Session.State != apitype.SessionRequested || !resp.Session.FourEyes || resp.FourEyesRequest == "" || resp.Certificate == "" {
		t.Fatalf("a four-eyes session: %+v", resp)
	}
	req := decodeAs[apitype.SupportRequest](t, do(t, fx.ts, "GET", "/api/v1/requests/"+resp.FourEyesRequest, fx.tokens["auditor"], nil), http.StatusOK)
	if req.Kind != apitype.RequestFourEyes || req.Session != resp.Session.ID || req.RequestedBy != "operator@example.com" ||
		req.Reason != "ticket 9" || req.State != apitype.RequestOpen {
		t.Errorf("the four-eyes request: %+v", req)
	}
	approve := "/api/v1/requests/" + resp.FourEyesRequest + "/approve"

	e := do(t, fx.ts, "POST", approve, fx.tokens["operator"], nil).wantError(t, http.StatusForbidden, apitype.CodePolicy)
	want := "operator@example.com asked for session " + resp.Session.ID + ": fleet " + fl.Name +
		" needs a second engineer, another of its operators or owners, to approve it (fleet policy, set by its owners: owner@example.com)"
	if e.Message != want {
		t.Errorf("self-approval: %q; want %q", e.Message, want)
	}
	refused := fleetEvents(t, fl, audit.PolicyRefused)
	if len(refused) != 1 || refused[0].Detail["rule"] != "four_eyes" || refused[0].Session != resp.Session.ID ||
		refused[0].Actor.Name != "operator@example.com" {
		t.Errorf("policy_refused: %+v", refused)
	}
	do(t, fx.ts, "POST", approve, fx.tokens["auditor"], nil).wantError(t, http.StatusForbidden, apitype.CodeForbidden)
	if ses := decodeAs[apitype.Session](t, do(t, fx.ts, "GET", "/api/v1/sessions/"+resp.Session.ID, fx.tokens["auditor"], nil), http.StatusOK); ses.State != apitype.SessionRequested {
		t.Fatalf("after refused approvals the session is %s", ses.State)
	}

	req = decodeAs[apitype.SupportRequest](t, do(t, fx.ts, "POST", approve, fx.tokens["owner"], nil), http.StatusOK)
	if req.State != apitype.RequestClosed || req.CloseReason != "approved" || req.ClosedBy != "owner@example.com" {
		t.Errorf("the request after the approval: %+v", req)
	}
	ses := decodeAs[apitype.Session](t, do(t, fx.ts, "GET", "/api/v1/sessions/"+resp.Session.ID, fx.tokens["auditor"], nil), http.StatusOK)
	if ses.State != apitype.SessionConnecting || ses.ApprovedBy != "owner@example.com" {
		t.Errorf("the approved session: %+v", ses)
	}
	e = do(t, fx.ts, "POST", approve, fx.tokens["admin"], nil).wantError(t, http.StatusConflict, apitype.CodeConflict)
	if !strings.Contains(e.Message, "no longer waits for a second engineer: it is approved by owner@example.com") {
		t.Errorf("a second approval: %q", e.Message)
	}
	approved := fleetEvents(t, fl, audit.FourEyesApproved)
	if len(approved) != 1 || approved[0].Detail["requested_by"] != "operator@example.com" || approved[0].Detail["approved_by"] != "owner@example.com" ||
		approved[0].Session != resp.Session.ID || approved[0].Device != d.Name {
		t.Errorf("four_eyes_approved: %+v", approved)
	}

	// Refused by a second engineer, by deny or by closing the request.
	for _, verb := range []string{"deny", "close"} {
		r := open()
		req := decodeAs[apitype.SupportRequest](t, do(t, fx.ts, "POST", "/api/v1/requests/"+r.FourEyesRequest+"/"+verb, fx.tokens["owner"], nil), http.StatusOK)
		if req.CloseReason != "denied" || req.ClosedBy != "owner@example.com" {
			t.Errorf("%s: the request %+v", verb, req)
		}
		ses := decodeAs[apitype.Session](t, do(t, fx.ts, "GET", "/api/v1/sessions/"+r.Session.ID, fx.tokens["auditor"], nil), http.StatusOK)
		if ses.State != apitype.SessionClosed || ses.CloseReason != "four_eyes_denied" {
			t.Errorf("%s: the session %+v", verb, ses)
		}
	}
	if denied := fleetEvents(t, fl, audit.FourEyesDenied); len(denied) != 2 || denied[0].Detail["denied_by"] != "owner@example.com" {
		t.Errorf("four_eyes_denied: %+v", denied)
	}

	// Other requests are not a second engineer's to approve.
	sr := &store.SupportRequest{DeviceID: d.ID, Kind: store.RequestSupport, ExpiresAt: time.Now().Add(time.Hour)}
	must(t, fx.store.CreateSupportRequest(context.Background(), sr))
	e = do(t, fx.ts, "POST", "/api/v1/requests/"+sr.ID+"/approve", fx.tokens["owner"], nil).wantError(t, http.StatusConflict, apitype.CodeConflict)
	if !strings.Contains(e.Message, "is not one for a second engineer to approve") {
		t.Errorf("approving a support request: %q", e.Message)
	}
}

// TestPolicyInCommand: what the fleet's policy asks of the device reaches
// it in the signed open command: the ports it allows and its consent floor
// (a policy of limits alone sends none, for agents that predate it).
func TestPolicyInCommand(t *testing.T) {
	t.Parallel()
	sent := make(chan []byte, 4)
	sessions, err := session.New(session.Config{Store: fx.store, ControlKey: fx.keys.Control, UserCA: fx.keys.UserCA,
		RelayAddr: "relay.example.com:443", Publish: func(_ string, env []byte) error { sent <- env; return nil }})
	must(t, err)
	t.Cleanup(func() { sessions.Close() })
	ts := newServer(t, Config{Sessions: sessions, RelayAddr: "relay.example.com:443"})
	fl := fx.newFleet(t)
	d := onlineDevice(t, fl)
	verifier, err := control.NewVerifier(fx.keys.Control.Public().(ed25519.PublicKey), fl.Name, d.Name, deviceNonces{control.NewMemoryNonceStore(100, 0)})
	must(t, err)
	open := func() *control.Command {
		t.Helper()
		decodeAs[apitype.CreateSessionResponse](t, do(t, ts.ts, "POST", "/api/v1/devices/"+d.ID+"/sessions", fx.tokens["operator"],
			apitype.CreateSessionRequest{PublicKey: engineerPublicKey, Ports: []int{22}}), http.StatusCreated)
		cmd, err := verifier.Verify(<-sent, time.Now())
		must(t, err)
		return cmd
	}

	setPolicy(t, fl, apitype.SetFleetPolicyRequest{MaxDurationS: 600})
	if cmd := open(); cmd.Policy != nil || cmd.MaxDurationS != 600 {
		t.Errorf("a policy of limits alone: policy %+v, max %d s", cmd.Policy, cmd.MaxDurationS)
	}
	setPolicy(t, fl, apitype.SetFleetPolicyRequest{Ports: ports(22, 443), ConsentFloor: "manual"})
	cmd := open()
	if cmd.Policy == nil || cmd.Policy.ConsentFloor != control.FloorManual || len(cmd.Policy.Ports) != 2 ||
		cmd.Policy.RequestedBy != "operator@example.com" || cmd.Policy.ApprovedBy != "" {
		t.Errorf("the command's policy: %+v", cmd.Policy)
	}
}

// deviceNonces is a device's nonce memory for a test's verifier.
type deviceNonces struct{ s *control.MemoryNonceStore }

func (n deviceNonces) Remember(nonce string, forgetAfter, now time.Time) (bool, error) {
	return n.s.RememberFor("device", nonce, forgetAfter, now)
}
