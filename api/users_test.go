package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/auth"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/session"
	"github.com/porthole/porthole/store"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

func TestCreateUserAPI(t *testing.T) {
	t.Parallel()
	admin := fx.tokens["admin"]
	email := fx.name("new") + "@Example.com"
	r := do(t, fx.ts, "POST", "/api/v1/users", admin, apitype.CreateUserRequest{Email: email})
	cr := decodeAs[apitype.CreateUserResponse](t, r, http.StatusCreated)
	lower := strings.ToLower(email)
	if cr.User.Email != lower || cr.User.Admin || cr.Password == "" {
		t.Fatalf("created = %+v; want a non-admin %s with a generated password", cr, lower)
	}
	uri, err := url.Parse(cr.TOTPURI)
	if err != nil || uri.Scheme != "otpauth" || uri.Host != "totp" || uri.Query().Get("secret") == "" {
		t.Errorf("totp_uri = %q; want otpauth://totp/...?secret=...", cr.TOTPURI)
	}
	// The new user can log in with what the answer gave.
	ts := newServer(t, Config{})
	u, err := fx.store.GetUserByEmail(context.Background(), lower)
	must(t, err)
	if u.TOTPSecret != uri.Query().Get("secret") {
		t.Errorf("stored TOTP secret differs from the URI's")
	}
	r = do(t, ts.ts, "POST", "/api/v1/login", "", apitype.LoginRequest{Email: lower, Password: cr.Password, TOTP: totpCode(t, u, ts.clock.Now())})
	decodeAs[apitype.LoginResponse](t, r, http.StatusOK)

	// A chosen password is not echoed.
	r = do(t, fx.ts, "POST", "/api/v1/users", admin, apitype.CreateUserRequest{Email: fx.name("chosen") + "@example.com", Password: "a long enough password", Admin: true})
	if cr := decodeAs[apitype.CreateUserResponse](t, r, http.StatusCreated); cr.Password != "" || !cr.User.Admin {
		t.Errorf("created = %+v; want an admin and no password in the answer", cr)
	}

	short := fx.name("short") + "@example.com"
	for _, tt := range []struct {
		name   string
		req    apitype.CreateUserRequest
		status int
		text   string
	}{
		{"taken email", apitype.CreateUserRequest{Email: strings.ToUpper(lower)}, 409, "a user with email " + lower + " already exists"},
		{"no email", apitype.CreateUserRequest{}, 400, "email is required"},
		{"bad email", apitype.CreateUserRequest{Email: "not-an-email"}, 400, "is not an email address"},
		{"short password", apitype.CreateUserRequest{Email: short, Password: "short"}, 400, "at least 12 characters"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, fx.ts, "POST", "/api/v1/users", admin, tt.req)
			if r.status != tt.status || !strings.Contains(r.errorBody(t).Message, tt.text) {
				t.Errorf("status %d, body %s; want %d with %q", r.status, r.body, tt.status, tt.text)
			}
		})
	}
	if _, err := fx.store.GetUserByEmail(context.Background(), short); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the user refused for a short password was stored (err %v)", err)
	}
	if got, err := fx.store.GetUserByEmail(context.Background(), lower); err != nil || got.ID != u.ID || got.PasswordHash != u.PasswordHash {
		t.Errorf("creating a taken email changed the first user: %+v, %v", got, err)
	}
}

func TestCreateUserHelper(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	email := fx.name("helper") + "@example.com"
	u, uri, err := CreateUser(ctx, fx.store, " "+strings.ToUpper(email)+" ", testPassword, true)
	must(t, err)
	if u.Email != email || !u.Admin || !strings.HasPrefix(uri, "otpauth://totp/") {
		t.Errorf("user %+v, uri %q", u, uri)
	}
	if ok, err := auth.CheckPassword(u.PasswordHash, testPassword); err != nil || !ok {
		t.Errorf("the stored hash does not check the password: %v", err)
	}
	if _, _, err := CreateUser(ctx, fx.store, email, testPassword, false); !errors.Is(err, store.ErrConflict) {
		t.Errorf("creating %s twice: err = %v; want store.ErrConflict", email, err)
	}
	if _, _, err := CreateUser(ctx, fx.store, "nobody", testPassword, false); err == nil || !strings.Contains(err.Error(), "not an email address") {
		t.Errorf("bad email: err = %v", err)
	}
}

func TestFleets(t *testing.T) {
	t.Parallel()
	admin := fx.tokens["admin"]
	name := fx.name("new-fleet")
	f := decodeAs[apitype.Fleet](t, do(t, fx.ts, "POST", "/api/v1/fleets", admin, apitype.CreateFleetRequest{Name: name}), http.StatusCreated)
	if f.Name != name || f.ID == "" || f.Role != "admin" {
		t.Errorf("created fleet = %+v", f)
	}
	do(t, fx.ts, "POST", "/api/v1/fleets", admin, apitype.CreateFleetRequest{Name: name}).wantError(t, 409, apitype.CodeConflict)
	e := do(t, fx.ts, "POST", "/api/v1/fleets", admin, apitype.CreateFleetRequest{Name: "Bad Name"}).wantError(t, 400, apitype.CodeBadRequest)
	if want := `fleet name "Bad Name" is not allowed: use 1 to 63 lower-case letters, digits and hyphens`; e.Message != want {
		t.Errorf("message = %q; want %q", e.Message, want)
	}
	if _, err := fx.store.GetFleetByName(context.Background(), "Bad Name"); !errors.Is(err, store.ErrNotFound) {
		t.Error("a refused fleet was stored")
	}
	e = do(t, fx.ts, "POST", "/api/v1/fleets", fx.tokens["owner"], apitype.CreateFleetRequest{Name: fx.name("x")}).wantError(t, 403, apitype.CodeForbidden)
	if want := "only an administrator can create fleets"; e.Message != want {
		t.Errorf("message = %q; want %q", e.Message, want)
	}
	// Administrators see every fleet, as admin.
	all := decodeAs[[]apitype.Fleet](t, do(t, fx.ts, "GET", "/api/v1/fleets", admin, nil), http.StatusOK)
	found := false
	for _, f := range all {
		found = found || f.Name == name
		if f.Role != "admin" {
			t.Errorf("admin's role in %s = %q; want admin", f.Name, f.Role)
		}
	}
	if !found {
		t.Errorf("admin's fleets lack %s", name)
	}
	// Members see theirs with their role.
	got := decodeAs[apitype.Fleet](t, do(t, fx.ts, "GET", "/api/v1/fleets/acme", fx.tokens["operator"], nil), http.StatusOK)
	if got.Role != "operator" {
		t.Errorf("operator's role in acme = %q", got.Role)
	}
	me := decodeAs[apitype.User](t, do(t, fx.ts, "GET", "/api/v1/me", fx.tokens["auditor"], nil), http.StatusOK)
	hasAcme := false
	for _, r := range me.Roles {
		hasAcme = hasAcme || (r.Fleet == "acme" && r.Role == "auditor")
	}
	if !hasAcme {
		t.Errorf("auditor's roles = %+v; want auditor of acme", me.Roles)
	}
}

func TestMembers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fl := fx.newFleet(t)
	u := newUser(t, false)
	base := "/api/v1/fleets/" + fl.Name + "/members/"
	owner := fx.tokens["owner"]
	role := func() store.Role {
		ms, err := fx.store.Memberships(ctx, u.ID)
		must(t, err)
		for _, m := range ms {
			if m.FleetID == fl.ID {
				return m.Role
			}
		}
		return ""
	}
	// By email, then by ID.
	m := decodeAs[apitype.Member](t, do(t, fx.ts, "PUT", base+u.Email, owner, apitype.Member{Role: "auditor"}), http.StatusOK)
	if m.UserID != u.ID || m.Email != u.Email || m.Role != "auditor" || role() != store.RoleAuditor {
		t.Fatalf("member = %+v, stored role %q", m, role())
	}
	decodeAs[apitype.Member](t, do(t, fx.ts, "PUT", base+u.ID, owner, apitype.Member{Role: "operator"}), http.StatusOK)
	if role() != store.RoleOperator {
		t.Fatalf("role = %q; want operator", role())
	}
	list := decodeAs[[]apitype.Member](t, do(t, fx.ts, "GET", "/api/v1/fleets/"+fl.Name+"/members", fx.tokens["auditor"], nil), http.StatusOK)
	if len(list) != 4 {
		t.Errorf("members = %+v; want owner, operator, auditor and the new one", list)
	}
	for _, tt := range []struct {
		name, user string
		body       any
		status     int
		text       string
	}{
		{"bad role", u.ID, apitype.Member{Role: "king"}, 400, `role "king" is not one of owner, operator or auditor`},
		{"no role", u.ID, map[string]any{}, 400, "role is required"},
		{"unknown user", "nobody@example.com", apitype.Member{Role: "owner"}, 404, `there is no user "nobody@example.com"`},
		{"body names someone else", u.ID, apitype.Member{Role: "owner", Email: "other@example.com"}, 400, "names a different user"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, fx.ts, "PUT", base+tt.user, owner, tt.body)
			if r.status != tt.status || !strings.Contains(r.errorBody(t).Message, tt.text) {
				t.Errorf("status %d, body %s; want %d with %q", r.status, r.body, tt.status, tt.text)
			}
			if role() != store.RoleOperator {
				t.Errorf("a refused change left role %q", role())
			}
		})
	}
	e := do(t, fx.ts, "PUT", base+u.ID, fx.tokens["operator"], apitype.Member{Role: "owner"}).wantError(t, 403, apitype.CodeForbidden)
	if want := "only a fleet owner can change members; you are an operator of " + fl.Name; e.Message != want {
		t.Errorf("message = %q; want %q", e.Message, want)
	}
	if r := do(t, fx.ts, "DELETE", base+u.Email, owner, nil); r.status != http.StatusNoContent {
		t.Fatalf("removing: status %d (%s)", r.status, r.body)
	}
	if role() != "" {
		t.Errorf("role after removal = %q", role())
	}
	do(t, fx.ts, "DELETE", base+u.Email, owner, nil).wantError(t, 404, apitype.CodeNotFound)
}

func TestEnrollmentTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fl := fx.newFleet(t)
	path := "/api/v1/fleets/" + fl.Name + "/enrollment-tokens"
	op := fx.tokens["operator"]
	et := decodeAs[apitype.EnrollmentToken](t, do(t, fx.ts, "POST", path, op, apitype.CreateEnrollmentTokenRequest{Uses: 10000, TTLSeconds: 60}), http.StatusCreated)
	if et.MaxUses != 10000 || time.Until(et.ExpiresAt) > time.Minute {
		t.Errorf("token = %+v; want 10000 uses for a minute", et)
	}
	for _, tt := range []struct {
		name string
		req  apitype.CreateEnrollmentTokenRequest
		text string
	}{
		{"too many uses", apitype.CreateEnrollmentTokenRequest{Uses: 10001}, "uses must be between 1 and 10000"},
		{"negative uses", apitype.CreateEnrollmentTokenRequest{Uses: -1}, "uses must be between 1 and 10000"},
		{"short ttl", apitype.CreateEnrollmentTokenRequest{TTLSeconds: 59}, "ttl_s must be between 60"},
		{"long ttl", apitype.CreateEnrollmentTokenRequest{TTLSeconds: 30*24*3600 + 1}, "ttl_s must be between 60"},
		{"overflowing ttl", apitype.CreateEnrollmentTokenRequest{TTLSeconds: 1 << 62}, "ttl_s must be between 60"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := do(t, fx.ts, "POST", path, op, tt.req).wantError(t, 400, apitype.CodeBadRequest)
			if !strings.Contains(e.Message, tt.text) {
				t.Errorf("message = %q; want it to contain %q", e.Message, tt.text)
			}
		})
	}
	list := decodeAs[[]apitype.EnrollmentToken](t, do(t, fx.ts, "GET", path, op, nil), http.StatusOK)
	if len(list) != 1 || list[0].ID != et.ID || list[0].Token != "" {
		t.Fatalf("tokens = %+v; want only %s, without its secret", list, et.ID)
	}
	// A token of another fleet cannot be deleted through this one.
	other := fx.newFleet(t)
	_, otherToken := fx.newEnrollmentToken(t, other, 1, time.Now().Add(time.Hour))
	do(t, fx.ts, "DELETE", path+"/"+otherToken.ID, op, nil).wantError(t, 404, apitype.CodeNotFound)
	if ets, err := fx.store.ListEnrollmentTokens(ctx, other.ID); err != nil || len(ets) != 1 {
		t.Errorf("the other fleet's tokens = %v, %v; want its one token intact", ets, err)
	}
	if r := do(t, fx.ts, "DELETE", path+"/"+et.ID, op, nil); r.status != http.StatusNoContent {
		t.Fatalf("deleting: status %d (%s)", r.status, r.body)
	}
	r := do(t, fx.ts, "POST", "/api/v1/enroll", "", apitype.EnrollRequest{Token: et.Token, Name: "d1", PublicKey: newDeviceKey(t)})
	r.wantError(t, 401, apitype.CodeUnauthenticated)
}

// openAs opens a session on d through ts as the holder of tok.
func openAs(t *testing.T, ts *testServer, d *store.Device, tok string) apitype.Session {
	t.Helper()
	return decodeAs[apitype.CreateSessionResponse](t, do(t, ts.ts, "POST", "/api/v1/devices/"+d.ID+"/sessions", tok,
		apitype.CreateSessionRequest{PublicKey: engineerPublicKey}), http.StatusCreated).Session
}

// closedFor says whether session id is closed for reason.
func closedFor(t *testing.T, id string, reason control.CloseReason) bool {
	t.Helper()
	s, err := fx.store.GetSession(context.Background(), id)
	must(t, err)
	return s.State == store.SessionClosed && s.CloseReason == string(reason)
}

// TestDeleteUser: an administrator deletes an engineer who left: their
// logins stop working at once, their open session is closed as
// user_removed, and the audit log says who did it. Nobody deletes their
// own account, and an operator deletes no one.
func TestDeleteUser(t *testing.T) {
	t.Parallel()
	ts, _, d, u, tok := reauthServer(t)
	ses := openAs(t, ts, d, tok)

	do(t, ts.ts, "DELETE", "/api/v1/users/"+u.Email, fx.tokens["operator"], nil).wantError(t, http.StatusForbidden, apitype.CodeForbidden)
	do(t, ts.ts, "DELETE", "/api/v1/users/"+fx.users["admin"].ID, fx.tokens["admin"], nil).
		wantError(t, http.StatusConflict, apitype.CodeConflict)
	if r := do(t, ts.ts, "DELETE", "/api/v1/users/"+u.Email, fx.tokens["admin"], nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	do(t, ts.ts, "GET", "/api/v1/me", tok, nil).wantError(t, http.StatusUnauthorized, apitype.CodeUnauthenticated)
	if !closedFor(t, ses.ID, control.CloseUserRemoved) {
		t.Errorf("the deleted user's session is not closed as user_removed")
	}
	evs := userEvents(t, fx.users["admin"], audit.UserDeleted)
	found := false
	for _, e := range evs {
		found = found || (e.Detail["user"] == u.Email && e.Detail["user_id"] == u.ID)
	}
	if !found {
		t.Errorf("no user_deleted event for %s: %+v", u.Email, evs)
	}
	do(t, ts.ts, "DELETE", "/api/v1/users/"+u.Email, fx.tokens["admin"], nil).wantError(t, http.StatusNotFound, apitype.CodeNotFound)
}

// TestResetUser: an administrator resets an engineer who lost their
// authenticator: the answer holds a new password and TOTP secret once,
// every old login ends, the open session too (whoever held the old
// secrets may have made it), and the new secrets log in.
func TestResetUser(t *testing.T) {
	t.Parallel()
	ts, _, d, u, tok := reauthServer(t)
	second := ts.login(t, u).Token
	ses := openAs(t, ts, d, tok)

	do(t, ts.ts, "POST", "/api/v1/users/"+u.Email+"/reset", tok, apitype.ResetUserRequest{}).
		wantError(t, http.StatusForbidden, apitype.CodeForbidden)
	do(t, ts.ts, "POST", "/api/v1/users/"+u.Email+"/reset", fx.tokens["admin"], apitype.ResetUserRequest{Password: "short"}).
		wantError(t, http.StatusBadRequest, apitype.CodeBadRequest)
	got := decodeAs[apitype.CreateUserResponse](t, do(t, ts.ts, "POST", "/api/v1/users/"+u.Email+"/reset", fx.tokens["admin"],
		apitype.ResetUserRequest{}), http.StatusOK)
	if got.Password == "" || !strings.HasPrefix(got.TOTPURI, "otpauth://totp/") || got.User.Email != u.Email {
		t.Fatalf("reset answer: %+v", got)
	}
	for _, old := range []string{tok, second} {
		do(t, ts.ts, "GET", "/api/v1/me", old, nil).wantError(t, http.StatusUnauthorized, apitype.CodeUnauthenticated)
	}
	if !closedFor(t, ses.ID, control.CloseUserRemoved) {
		t.Errorf("the reset user's session is not closed as user_removed")
	}
	key, err := otp.NewKeyFromURL(got.TOTPURI)
	must(t, err)
	code, err := totp.GenerateCode(key.Secret(), ts.clock.Now())
	must(t, err)
	do(t, ts.ts, "POST", "/api/v1/login", "", loginBody(u, testPassword, code)).wantError(t, http.StatusUnauthorized, apitype.CodeUnauthenticated)
	decodeAs[apitype.LoginResponse](t, do(t, ts.ts, "POST", "/api/v1/login", "", loginBody(u, got.Password, code)), http.StatusOK)
	if evs := userEvents(t, fx.users["admin"], audit.UserReset); len(evs) == 0 {
		t.Errorf("no user_reset event")
	}
}

// TestRoleLossCutsSessions: losing the role in a fleet, or becoming its
// auditor, closes the user's open sessions on that fleet's devices as
// user_removed, and only those.
func TestRoleLossCutsSessions(t *testing.T) {
	t.Parallel()
	ts, fl, d, u, tok := reauthServer(t)
	other := fx.newFleet(t)
	must(t, fx.store.SetRole(context.Background(), other.ID, u.ID, store.RoleOperator))
	elsewhere := openAs(t, ts, onlineDevice(t, other), tok)

	here := openAs(t, ts, d, tok)
	decodeAs[apitype.Member](t, do(t, ts.ts, "PUT", "/api/v1/fleets/"+fl.Name+"/members/"+u.Email, fx.tokens["admin"],
		apitype.Member{Role: "auditor"}), http.StatusOK)
	if !closedFor(t, here.ID, control.CloseUserRemoved) {
		t.Errorf("made an auditor, the user's session there stays open")
	}
	must(t, fx.store.SetRole(context.Background(), fl.ID, u.ID, store.RoleOperator))
	again := openAs(t, ts, d, tok)
	if r := do(t, ts.ts, "DELETE", "/api/v1/fleets/"+fl.Name+"/members/"+u.Email, fx.tokens["admin"], nil); r.status != http.StatusNoContent {
		t.Fatalf("removing the role: %d %s", r.status, r.body)
	}
	if !closedFor(t, again.ID, control.CloseUserRemoved) {
		t.Errorf("removed from the fleet, the user's session there stays open")
	}
	s, err := fx.store.GetSession(context.Background(), elsewhere.ID)
	must(t, err)
	if !s.Open() {
		t.Errorf("the session in another fleet closed too: %+v", s)
	}
}

// TestApproverRemovedCutsApprovals: in a four-eyes fleet, the sessions a
// second engineer approved end as approver_removed when that engineer
// loses their access (role taken away, or account deleted), and only
// those: the session's own engineer keeps the ones someone else approved.
// (store's ApprovalRacesRemoval covers a removal at the very moment of an
// approval.)
func TestApproverRemovedCutsApprovals(t *testing.T) {
	t.Parallel()
	ts, fl, d, u, tok := reauthServer(t)
	setPolicy(t, fl, apitype.SetFleetPolicyRequest{FourEyes: true})
	approvedBy := func(token string) apitype.Session {
		t.Helper()
		resp := decodeAs[apitype.CreateSessionResponse](t, do(t, ts.ts, "POST", "/api/v1/devices/"+d.ID+"/sessions", fx.tokens["operator"],
			apitype.CreateSessionRequest{PublicKey: engineerPublicKey, Reason: "ticket 12"}), http.StatusCreated)
		decodeAs[apitype.SupportRequest](t, do(t, ts.ts, "POST", "/api/v1/requests/"+resp.FourEyesRequest+"/approve", token, nil), http.StatusOK)
		return resp.Session
	}
	byOwner, byU := approvedBy(fx.tokens["owner"]), approvedBy(tok)
	if r := do(t, ts.ts, "DELETE", "/api/v1/fleets/"+fl.Name+"/members/"+u.Email, fx.tokens["admin"], nil); r.status != http.StatusNoContent {
		t.Fatalf("removing the approver's role: %d %s", r.status, r.body)
	}
	if !closedFor(t, byU.ID, control.CloseApproverRemoved) {
		t.Errorf("the session the removed engineer approved is not closed as approver_removed: %+v", reread(t, byU.ID))
	}
	if s := reread(t, byOwner.ID); !s.Open() {
		t.Errorf("a session someone else approved closed too: %+v", s)
	}

	must(t, fx.store.SetRole(context.Background(), fl.ID, u.ID, store.RoleOperator))
	again := approvedBy(tok)
	if r := do(t, ts.ts, "DELETE", "/api/v1/users/"+u.Email, fx.tokens["admin"], nil); r.status != http.StatusNoContent {
		t.Fatalf("deleting the approver: %d %s", r.status, r.body)
	}
	if !closedFor(t, again.ID, control.CloseApproverRemoved) {
		t.Errorf("the session a deleted engineer approved is not closed as approver_removed: %+v", reread(t, again.ID))
	}
	if s := reread(t, byOwner.ID); !s.Open() {
		t.Errorf("a session someone else approved closed with the deletion: %+v", s)
	}
}

// roleTakenOnApproval is a store whose ApproveSession sees the approver's
// role taken away a moment before it records the approval: the race the
// API's own role check cannot see.
type roleTakenOnApproval struct {
	store.Store
	fleetID string
}

func (s roleTakenOnApproval) ApproveSession(ctx context.Context, id, userID, email, policy string, at time.Time) (*store.Session, bool, error) {
	if err := s.Store.RemoveRole(store.WithoutAudit(ctx), s.fleetID, userID); err != nil {
		return nil, false, err
	}
	return s.Store.ApproveSession(ctx, id, userID, email, policy, at)
}

// TestApprovalAfterRoleTaken: an approver whose role goes between the
// API's check and the store's write is refused in words (403), and the
// session still waits.
func TestApprovalAfterRoleTaken(t *testing.T) {
	t.Parallel()
	fl := fx.newFleet(t)
	d := onlineDevice(t, fl)
	setPolicy(t, fl, apitype.SetFleetPolicyRequest{FourEyes: true})
	st := roleTakenOnApproval{Store: fx.store, fleetID: fl.ID}
	sessions, err := session.New(session.Config{Store: st, ControlKey: fx.keys.Control, UserCA: fx.keys.UserCA,
		RelayAddr: "relay.example.com:443", Publish: func(string, []byte) error { return nil }})
	must(t, err)
	ts := newServer(t, Config{Store: st, Sessions: sessions, RelayAddr: "relay.example.com:443", PublicURL: testPublicURL})
	u := newUser(t, false)
	must(t, fx.store.SetRole(context.Background(), fl.ID, u.ID, store.RoleOperator))
	resp := decodeAs[apitype.CreateSessionResponse](t, do(t, ts.ts, "POST", "/api/v1/devices/"+d.ID+"/sessions", fx.tokens["operator"],
		apitype.CreateSessionRequest{PublicKey: engineerPublicKey}), http.StatusCreated)
	e := do(t, ts.ts, "POST", "/api/v1/requests/"+resp.FourEyesRequest+"/approve", ts.login(t, u).Token, nil).
		wantError(t, http.StatusForbidden, apitype.CodeForbidden)
	if !strings.Contains(e.Message, "you may no longer approve sessions of fleet "+fl.Name) {
		t.Errorf("the refusal: %q", e.Message)
	}
	if s := reread(t, resp.Session.ID); !s.WaitsForApproval() {
		t.Errorf("after a refused approval the session is %+v", s)
	}
}

// reread is session id as the store has it now.
func reread(t *testing.T, id string) *store.Session {
	t.Helper()
	s, err := fx.store.GetSession(context.Background(), id)
	must(t, err)
	return s
}

// TestResetSSOUser: a user who signs in with single sign-on has no
// password here, and a reset must not give them one (a way in past the
// provider): it is refused in words, and nothing changes.
func TestResetSSOUser(t *testing.T) {
	t.Parallel()
	u := &store.User{Email: fx.name("sso") + "@example.com", SSOSubject: "https://idp.example.com " + fx.name("sub")}
	must(t, fx.store.CreateUser(context.Background(), u))
	e := do(t, fx.ts, "POST", "/api/v1/users/"+u.Email+"/reset", fx.tokens["admin"], apitype.ResetUserRequest{}).
		wantError(t, http.StatusConflict, apitype.CodeConflict)
	if !strings.Contains(e.Message, "signs in with single sign-on") {
		t.Errorf("refusal: %q", e.Message)
	}
	got, err := fx.store.GetUser(context.Background(), u.ID)
	must(t, err)
	if got.PasswordHash != "" || got.TOTPSecret != "" {
		t.Errorf("a refused reset gave the SSO user secrets: %+v", got)
	}
}
