package api

import (
	"context"
	"database/sql"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/session"
	"github.com/porthole/porthole/store"
)

// reauthServer is a server on the fixture's store with its own clock that
// opens sessions, and a fleet with a device online and a new operator of
// it (a fresh user: their TOTP codes are theirs alone), logged in.
func reauthServer(t *testing.T) (*testServer, *store.Fleet, *store.Device, *store.User, string) {
	t.Helper()
	sessions, err := session.New(session.Config{Store: fx.store, ControlKey: fx.keys.Control, UserCA: fx.keys.UserCA,
		RelayAddr: "relay.example.com:443", Publish: func(string, []byte) error { return nil }})
	must(t, err)
	ts := newServer(t, Config{Sessions: sessions, RelayAddr: "relay.example.com:443", PublicURL: testPublicURL})
	fl := fx.newFleet(t)
	d := onlineDevice(t, fl)
	u := newUser(t, false)
	must(t, fx.store.SetRole(context.Background(), fl.ID, u.ID, store.RoleOperator))
	return ts, fl, d, u, ts.login(t, u).Token
}

// userEvents is the audit log of u, of the given kind. It reads from
// the first event of u's on: the fixture's log grows with every test.
func userEvents(t *testing.T, u *store.User, kind audit.Kind) []audit.Event {
	t.Helper()
	var first sql.NullInt64
	must(t, fx.store.(interface{ DB() *sql.DB }).DB().QueryRow(`SELECT MIN(seq) FROM audit_events WHERE actor_name = $1`, u.Email).Scan(&first))
	if !first.Valid {
		return nil
	}
	evs, err := fx.store.ListAudit(context.Background(), store.AuditFilter{After: first.Int64 - 1, Limit: 1 << 20})
	must(t, err)
	var out []audit.Event
	for _, e := range evs {
		if e.Kind == kind && e.Actor.Name == u.Email {
			out = append(out, e)
		}
	}
	return out
}

// TestReauth: under a reauth rule a login opens sessions within the
// window from its login's code, is refused after it (reauth_required,
// naming the rule and its window, audited as policy_refused), and again
// within the window after a fresh code at POST /api/v1/reauth.
func TestReauth(t *testing.T) {
	t.Parallel()
	ts, fl, d, u, tok := reauthServer(t)
	setPolicy(t, fl, apitype.SetFleetPolicyRequest{ReauthS: 15 * 60})
	got := decodeAs[apitype.FleetPolicy](t, do(t, fx.ts, "GET", policyPath(fl), fx.tokens["auditor"], nil), http.StatusOK)
	if got.ReauthS != 900 {
		t.Errorf("policy read back: reauth_s %d; want 900", got.ReauthS)
	}
	changed := fleetEvents(t, fl, audit.PolicyChanged)
	if len(changed) != 1 || changed[0].Detail["new"] != "second factor within 15m" {
		t.Errorf("policy_changed: %+v", changed)
	}
	path := "/api/v1/devices/" + d.ID + "/sessions"
	open := func(token string) response {
		return do(t, ts.ts, "POST", path, token, apitype.CreateSessionRequest{PublicKey: engineerPublicKey})
	}

	// Within the window of the login's code.
	ts.clock.Advance(14 * time.Minute)
	decodeAs[apitype.CreateSessionResponse](t, open(tok), http.StatusCreated)

	// After it.
	ts.clock.Advance(2 * time.Minute)
	e := open(tok).wantError(t, http.StatusForbidden, apitype.CodeReauthRequired)
	for _, want := range []string{"fleet " + fl.Name + " asks for a fresh second factor (your authenticator code or a passkey) within the last 15m", "your last was 16m ago", "porthole reauth", "owner@example.com"} {
		if !strings.Contains(e.Message, want) {
			t.Errorf("refusal %q lacks %q", e.Message, want)
		}
	}
	refused := fleetEvents(t, fl, audit.PolicyRefused)
	if len(refused) != 1 || refused[0].Detail["rule"] != "reauth" || refused[0].Detail["reauth_window"] != "15m" ||
		refused[0].Actor.Name != u.Email || refused[0].Device != d.Name {
		t.Errorf("policy_refused: %+v", refused)
	}

	// A fresh code: allowed again, for the window.
	r := decodeAs[apitype.ReauthResponse](t, do(t, ts.ts, "POST", "/api/v1/reauth", tok,
		apitype.ReauthRequest{TOTP: totpCode(t, u, ts.clock.Now())}), http.StatusOK)
	if !r.FactorAt.Equal(ts.clock.Now()) {
		t.Errorf("factor_at %v; want %v", r.FactorAt, ts.clock.Now())
	}
	if evs := userEvents(t, u, audit.ReauthSucceeded); len(evs) != 1 || evs[0].Detail["token_id"] == "" {
		t.Errorf("reauth_succeeded: %+v", evs)
	}
	decodeAs[apitype.CreateSessionResponse](t, open(tok), http.StatusCreated)
	ts.clock.Advance(16 * time.Minute)
	open(tok).wantError(t, http.StatusForbidden, apitype.CodeReauthRequired)

	// A token that never proved a factor (made other than by a login)
	// is refused too, and the rule off lets it through.
	secret, _, err := newToken(fx.store, u, ts.clock.Now().Add(time.Hour))
	must(t, err)
	e = open(secret).wantError(t, http.StatusForbidden, apitype.CodeReauthRequired)
	if !strings.Contains(e.Message, "no second factor of this login is on record") {
		t.Errorf("refusal of a token without a factor: %q", e.Message)
	}
	setPolicy(t, fl, apitype.SetFleetPolicyRequest{})
	decodeAs[apitype.CreateSessionResponse](t, open(secret), http.StatusCreated)
}

// TestReauthRefusals: a wrong code and a replayed one (used at login, or
// at an earlier reauth) do not re-authenticate, are audited as
// reauth_failed, and wrong ones count against the account's code limit
// shared with login.
func TestReauthRefusals(t *testing.T) {
	t.Parallel()
	ts, fl, d, u, tok := reauthServer(t)
	setPolicy(t, fl, apitype.SetFleetPolicyRequest{ReauthS: 60})
	path := "/api/v1/devices/" + d.ID + "/sessions"
	open := func() response {
		return do(t, ts.ts, "POST", path, tok, apitype.CreateSessionRequest{PublicKey: engineerPublicKey})
	}
	reauth := func(code string) response {
		return do(t, ts.ts, "POST", "/api/v1/reauth", tok, apitype.ReauthRequest{TOTP: code})
	}
	// The login's own code, replayed within its step.
	loginCode := totpCode(t, u, ts.clock.Now().Add(-30*time.Second))
	reauth(loginCode).wantError(t, http.StatusForbidden, apitype.CodeWrongCode)
	ts.clock.Advance(2 * time.Minute)
	open().wantError(t, http.StatusForbidden, apitype.CodeReauthRequired)

	good := totpCode(t, u, ts.clock.Now())
	bad := "000000"
	if bad == good {
		bad = "111111"
	}
	e := reauth(bad).wantError(t, http.StatusForbidden, apitype.CodeWrongCode)
	if !strings.Contains(e.Message, "wrong code") {
		t.Errorf("wrong code: %q", e.Message)
	}
	open().wantError(t, http.StatusForbidden, apitype.CodeReauthRequired)
	reauth("").wantError(t, http.StatusBadRequest, apitype.CodeBadRequest)

	decodeAs[apitype.ReauthResponse](t, reauth(good), http.StatusOK)
	e = reauth(good).wantError(t, http.StatusForbidden, apitype.CodeWrongCode)
	if !strings.Contains(e.Message, "already used") {
		t.Errorf("replayed code: %q", e.Message)
	}
	decodeAs[apitype.CreateSessionResponse](t, open(), http.StatusCreated)

	failed := userEvents(t, u, audit.ReauthFailed)
	var reasons []string
	for _, ev := range failed {
		reasons = append(reasons, ev.Detail["reason"])
	}
	if strings.Join(reasons, ",") != reasonReplayedTOTP+","+reasonBadTOTP+","+reasonReplayedTOTP {
		t.Errorf("reauth_failed reasons: %v", reasons)
	}

	// Guessing: wrong codes count with login's; past the limits even the
	// right code is refused, at reauth and at login.
	ts.clock.Advance(time.Minute)
	for i := 0; ; i++ {
		r := reauth(bad)
		if r.status == http.StatusTooManyRequests {
			break
		}
		r.wantError(t, http.StatusForbidden, apitype.CodeWrongCode)
		if i > 2*DefaultLoginCodeFailuresPerAccount {
			t.Fatal("wrong codes are never limited")
		}
	}
	reauth(totpCode(t, u, ts.clock.Now())).wantError(t, http.StatusTooManyRequests, apitype.CodeRateLimited)
	do(t, ts.ts, "POST", "/api/v1/login", "", loginBody(u, testPassword, totpCode(t, u, ts.clock.Now()))).
		wantError(t, http.StatusTooManyRequests, apitype.CodeRateLimited)
}

// TestReauthRoles: any logged-in user may re-authenticate their own
// login (it grants nothing by itself), an anonymous caller may not, and
// only the fleet's owners set the rule.
func TestReauthRoles(t *testing.T) {
	t.Parallel()
	fl := fx.newFleet(t)
	do(t, fx.ts, "POST", "/api/v1/reauth", "", apitype.ReauthRequest{TOTP: "123456"}).
		wantError(t, http.StatusUnauthorized, apitype.CodeUnauthenticated)
	for _, role := range []string{"operator", "auditor"} {
		do(t, fx.ts, "PUT", policyPath(fl), fx.tokens[role], apitype.SetFleetPolicyRequest{ReauthS: 600}).
			wantError(t, http.StatusForbidden, apitype.CodeForbidden)
	}
	do(t, fx.ts, "PUT", policyPath(fl), fx.tokens["other"], apitype.SetFleetPolicyRequest{ReauthS: 600}).
		wantError(t, http.StatusNotFound, apitype.CodeNotFound)
	for _, bad := range []int{1, 59, 24*60*60 + 1, -5} {
		do(t, fx.ts, "PUT", policyPath(fl), fx.tokens["owner"], apitype.SetFleetPolicyRequest{ReauthS: bad}).
			wantError(t, http.StatusBadRequest, apitype.CodeBadRequest)
	}
	if p := setPolicy(t, fl, apitype.SetFleetPolicyRequest{ReauthS: 600}); p.ReauthS != 600 {
		t.Errorf("reauth_s %d; want 600", p.ReauthS)
	}
}

// TestReauthApprover: in a four-eyes fleet with a reauth rule, the second
// engineer's approval is refused too when their login's code is older
// than the window (reauth_required, audited with the request), the
// session keeps waiting, and a fresh code lets the same approval through.
func TestReauthApprover(t *testing.T) {
	t.Parallel()
	w := fourEyesReauth(t)
	ts, fl, u, approver, approverTok, resp, approve := w.ts, w.fl, w.u, w.approver, w.approverTok, w.resp, w.approve
	e := do(t, ts.ts, "POST", approve, approverTok, nil).wantError(t, http.StatusForbidden, apitype.CodeReauthRequired)
	if !strings.Contains(e.Message, "within the last 15m to approve a session (your last was 16m ago)") {
		t.Errorf("refusal: %q", e.Message)
	}
	var refused []audit.Event
	for _, ev := range fleetEvents(t, fl, audit.PolicyRefused) {
		if ev.Actor.Name == approver.Email {
			refused = append(refused, ev)
		}
	}
	if len(refused) != 1 || refused[0].Detail["rule"] != "reauth" || refused[0].Session != resp.Session.ID ||
		refused[0].Detail["request"] != resp.FourEyesRequest || refused[0].Detail["requested_by"] != u.Email {
		t.Errorf("policy_refused: %+v", refused)
	}
	s := decodeAs[apitype.Session](t, do(t, ts.ts, "GET", "/api/v1/sessions/"+resp.Session.ID, approverTok, nil), http.StatusOK)
	if s.State != apitype.SessionRequested || s.ApprovedBy != "" {
		t.Errorf("after a refused approval the session is %+v", s)
	}

	decodeAs[apitype.ReauthResponse](t, do(t, ts.ts, "POST", "/api/v1/reauth", approverTok,
		apitype.ReauthRequest{TOTP: totpCode(t, approver, ts.clock.Now())}), http.StatusOK)
	got := decodeAs[apitype.SupportRequest](t, do(t, ts.ts, "POST", approve, approverTok, nil), http.StatusOK)
	if got.State == apitype.RequestOpen {
		t.Errorf("approved with a fresh code, the request is still %+v", got)
	}
}

// TestReauthApproverRefusedAnyway: under a reauth rule, one who cannot
// approve anyway (the engineer who asked, or anyone once the session no
// longer waits) is told that, not asked for a fresh code first: the
// console and the CLI would have them spend a code on a refusal.
func TestReauthApproverRefusedAnyway(t *testing.T) {
	t.Parallel()
	w := fourEyesReauth(t)
	ts, tok, approverTok, resp, approve := w.ts, w.tok, w.approverTok, w.resp, w.approve

	e := do(t, ts.ts, "POST", approve, tok, nil).wantError(t, http.StatusForbidden, apitype.CodePolicy)
	if !strings.Contains(e.Message, "needs a second engineer") {
		t.Errorf("the engineer who asked approving: %q", e.Message)
	}
	do(t, ts.ts, "POST", "/api/v1/requests/"+resp.FourEyesRequest+"/deny", tok, nil)
	e = do(t, ts.ts, "POST", approve, approverTok, nil).wantError(t, http.StatusConflict, apitype.CodeConflict)
	if !strings.Contains(e.Message, "no longer waits") {
		t.Errorf("approving a withdrawn session: %q", e.Message)
	}
}

// fourEyesReauthWorld is a fleet fl with four-eyes and a 15-minute reauth
// rule: u (logged in as tok) asked for a session, resp, waiting for a
// second engineer; approver (another operator, logged in as approverTok)
// would approve it at approve, 16 minutes after both logins.
type fourEyesReauthWorld struct {
	ts               *testServer
	fl               *store.Fleet
	u, approver      *store.User
	tok, approverTok string
	resp             apitype.CreateSessionResponse
	approve          string
}

func fourEyesReauth(t *testing.T) fourEyesReauthWorld {
	t.Helper()
	var w fourEyesReauthWorld
	var d *store.Device
	w.ts, w.fl, d, w.u, w.tok = reauthServer(t)
	w.approver, w.approverTok = memberOf(t, w.ts, w.fl, false)
	setPolicy(t, w.fl, apitype.SetFleetPolicyRequest{FourEyes: true, ReauthS: 15 * 60})
	w.resp = decodeAs[apitype.CreateSessionResponse](t, do(t, w.ts.ts, "POST", "/api/v1/devices/"+d.ID+"/sessions", w.tok,
		apitype.CreateSessionRequest{PublicKey: engineerPublicKey}), http.StatusCreated)
	if w.resp.FourEyesRequest == "" {
		t.Fatalf("no four-eyes request: %+v", w.resp)
	}
	w.ts.clock.Advance(16 * time.Minute)
	w.approve = "/api/v1/requests/" + w.resp.FourEyesRequest + "/approve"
	return w
}

// memberOf makes a new user (an administrator if admin), an operator of
// fl, logged in through ts.
func memberOf(t *testing.T, ts *testServer, fl *store.Fleet, admin bool) (*store.User, string) {
	t.Helper()
	u := newUser(t, admin)
	must(t, fx.store.SetRole(context.Background(), fl.ID, u.ID, store.RoleOperator))
	return u, ts.login(t, u).Token
}
