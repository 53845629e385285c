package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/store"
)

// callers are the roles every route is tried with. "other" owns another
// fleet: it is the cross-fleet attacker.
var callers = []string{"admin", "owner", "operator", "auditor", "other", "anonymous"}

// world is what one matrix case acts on: a fleet of its own in which the
// fixture's owner, operator and auditor have their roles, with a device, an
// enrollment token and the target user as an auditor.
type world struct {
	fleet  *store.Fleet
	device *store.Device
	etoken *store.EnrollmentToken
	spare  string // ID of a spare token of the caller, for DELETE /tokens/{id}
	// session is a connecting session on device; device is online.
	session *store.Session
	// request is an open support request from device.
	request *store.SupportRequest
	// fourEyes is a four-eyes request of a session on device that the
	// target user asked for, waiting for a second engineer.
	fourEyes *store.SupportRequest
	// victim is a user of this world alone, to delete and reset.
	victim *store.User
}

func newWorld(t *testing.T, caller *store.User) *world {
	fl := fx.newFleet(t)
	must(t, fx.store.SetRole(context.Background(), fl.ID, fx.users["target"].ID, store.RoleAuditor))
	w := &world{fleet: fl, device: fx.newDevice(t, fl), spare: "no-such-token"}
	_, w.etoken = fx.newEnrollmentToken(t, fl, 5, time.Now().Add(time.Hour))
	must(t, fx.store.SetDevicePresence(context.Background(), store.DevicePresence{DeviceID: w.device.ID, Online: true, At: time.Now()}))
	w.session = fx.newSession(t, w.device)
	fx.newRecording(t, w.session)
	w.request = &store.SupportRequest{DeviceID: w.device.ID, Kind: store.RequestSupport, Reason: "it hums", ExpiresAt: time.Now().Add(time.Hour)}
	must(t, fx.store.CreateSupportRequest(context.Background(), w.request))
	_, w.fourEyes = fx.newFourEyesSession(t, w.device, fx.users["target"])
	// Made in the store: hashing a password for every case would be slow.
	w.victim = &store.User{Email: fl.Name + "@victim.example.com", PasswordHash: "$argon2id$victim", TOTPSecret: "JBSWY3DPEHPK3PXP"}
	must(t, fx.store.CreateUser(context.Background(), w.victim))
	if caller != nil {
		_, tok, err := newToken(fx.store, caller, time.Now().Add(time.Hour))
		must(t, err)
		w.spare = tok.ID
	}
	return w
}

// snapshot is everything a case could change, to check that refused
// requests changed nothing.
func (w *world) snapshot(t *testing.T, caller *store.User) string {
	t.Helper()
	ctx := context.Background()
	type item struct {
		ID, Name, Role string
		Uses           int
		Labels         map[string]string
	}
	var state struct {
		Devices, Members, Enroll, Tokens, Sessions, Requests []item
		NewFleet, NewUser                                    bool
		Victim                                               string // its password hash; "" once deleted
		Policy                                               int64
	}
	ds, err := fx.store.ListDevices(ctx, store.DeviceFilter{FleetIDs: []string{w.fleet.ID}})
	must(t, err)
	for _, d := range ds {
		state.Devices = append(state.Devices, item{ID: d.ID, Name: d.Name, Labels: d.Labels})
	}
	ss, err := fx.store.ListSessions(ctx, store.SessionFilter{FleetIDs: []string{w.fleet.ID}})
	must(t, err)
	for _, x := range ss {
		state.Sessions = append(state.Sessions, item{ID: x.ID, Role: string(x.State)})
	}
	rs, err := fx.store.ListSupportRequests(ctx, store.SupportRequestFilter{FleetIDs: []string{w.fleet.ID}})
	must(t, err)
	for _, x := range rs {
		state.Requests = append(state.Requests, item{ID: x.ID, Role: string(x.State)})
	}
	ms, err := fx.store.FleetMembers(ctx, w.fleet.ID)
	must(t, err)
	for _, m := range ms {
		state.Members = append(state.Members, item{ID: m.UserID, Role: string(m.Role)})
	}
	ets, err := fx.store.ListEnrollmentTokens(ctx, w.fleet.ID)
	must(t, err)
	for _, et := range ets {
		state.Enroll = append(state.Enroll, item{ID: et.ID, Uses: et.UsesLeft})
	}
	if caller != nil {
		// Only this world's spare token: parallel cases add tokens of
		// their own for the same fixture users.
		ts, err := fx.store.ListTokens(ctx, caller.ID)
		must(t, err)
		for _, tok := range ts {
			if tok.ID == w.spare {
				state.Tokens = append(state.Tokens, item{ID: tok.ID})
			}
		}
	}
	pol, err := fx.store.GetFleetPolicy(ctx, w.fleet.ID)
	must(t, err)
	state.Policy = pol.Version
	_, err = fx.store.GetFleetByName(ctx, w.fleet.Name+"-new")
	state.NewFleet = err == nil
	_, err = fx.store.GetUserByEmail(ctx, w.fleet.Name+"@new.example.com")
	state.NewUser = err == nil
	if v, err := fx.store.GetUser(ctx, w.victim.ID); err == nil {
		state.Victim = v.PasswordHash
	}
	b, err := json.Marshal(state)
	must(t, err)
	return string(b)
}

// Expected statuses, by caller.
func everyone(status int) map[string]int {
	m := map[string]int{}
	for _, c := range callers {
		m[c] = status
	}
	return m
}

func loggedInUsers(status int) map[string]int {
	m := everyone(status)
	m["anonymous"] = http.StatusUnauthorized
	return m
}

func admins(status int) map[string]int {
	m := everyone(http.StatusForbidden)
	m["admin"] = status
	m["anonymous"] = http.StatusUnauthorized
	return m
}

// fleetMembers: roles at least least get status, weaker ones 403, the
// other fleet's owner 404 (it must not learn the fleet exists).
func fleetMembers(least store.Role, status int) map[string]int {
	m := map[string]int{"admin": status, "other": http.StatusNotFound, "anonymous": http.StatusUnauthorized}
	for _, r := range []store.Role{store.RoleOwner, store.RoleOperator, store.RoleAuditor} {
		m[string(r)] = http.StatusForbidden
		if rank(r) >= rank(least) {
			m[string(r)] = status
		}
	}
	return m
}

type matrixCase struct {
	method, path string // the route, as in the table
	url          func(w *world) string
	body         func(w *world) any
	want         map[string]int
	stream       bool // the answer never ends: read its status only
}

func fixed(s string) func(*world) string { return func(*world) string { return s } }

var matrix = []matrixCase{
	// Bodies of public POSTs are empty objects: the 400 shows the route
	// answered, and nothing counts against the rate limits.
	{method: "POST", path: "/api/v1/login", url: fixed("/api/v1/login"), body: func(*world) any { return map[string]any{} },
		want: everyone(http.StatusBadRequest)},
	{method: "POST", path: "/api/v1/enroll", url: fixed("/api/v1/enroll"), body: func(*world) any { return map[string]any{} },
		want: everyone(http.StatusBadRequest)},
	{method: "POST", path: "/api/v1/console/login", url: fixed("/api/v1/console/login"), body: func(*world) any { return map[string]any{} },
		want: everyone(http.StatusBadRequest)},
	{method: "GET", path: "/console/", url: fixed("/console/"), want: everyone(http.StatusOK)},
	// A passkey sign-in begins for anyone; one without a passkey is 400.
	{method: "POST", path: "/api/v1/console/passkey-options", url: fixed("/api/v1/console/passkey-options"), body: func(*world) any { return map[string]any{} },
		want: everyone(http.StatusOK)},
	{method: "POST", path: "/api/v1/console/passkey-login", url: fixed("/api/v1/console/passkey-login"), body: func(*world) any { return map[string]any{} },
		want: everyone(http.StatusBadRequest)},
	// Single sign-on, on a server without it: the routes answer that it has none.
	{method: "GET", path: "/api/v1/sso", url: fixed("/api/v1/sso"), want: everyone(http.StatusOK)},
	{method: "GET", path: "/api/v1/sso/login", url: fixed("/api/v1/sso/login"), want: everyone(http.StatusNotFound)},
	{method: "GET", path: "/api/v1/sso/callback", url: fixed("/api/v1/sso/callback"), want: everyone(http.StatusNotFound)},
	{method: "POST", path: "/api/v1/sso/device-code", url: fixed("/api/v1/sso/device-code"), body: func(*world) any { return map[string]any{} },
		want: everyone(http.StatusNotFound)},
	{method: "POST", path: "/api/v1/sso/token", url: fixed("/api/v1/sso/token"), body: func(*world) any { return map[string]any{} },
		want: everyone(http.StatusNotFound)},
	{method: "GET", path: "/sso/device", url: fixed("/sso/device"), want: everyone(http.StatusNotFound)},
	{method: "POST", path: "/sso/device", url: fixed("/sso/device"), want: everyone(http.StatusNotFound)},
	{method: "GET", path: "/api/v1/ca", url: fixed("/api/v1/ca"), want: everyone(http.StatusOK)},
	{method: "GET", path: "/api/v1/openapi.json", url: fixed("/api/v1/openapi.json"), want: everyone(http.StatusOK)},
	{method: "GET", path: "/healthz", url: fixed("/healthz"), want: everyone(http.StatusOK)},
	{method: "GET", path: "/readyz", url: fixed("/readyz"), want: everyone(http.StatusOK)},
	{method: "GET", path: "/metrics", url: fixed("/metrics"), want: everyone(http.StatusOK)},

	{method: "GET", path: "/api/v1/device", url: fixed("/api/v1/device"), want: devicesOnly()},
	{method: "PUT", path: "/api/v1/device/info", url: fixed("/api/v1/device/info"),
		body: func(*world) any {
			return map[string]any{"version": "1.0", "capabilities": []string{"relay2", "policy"}, "consent": "manual", "allow_ports": []int{22}}
		}, want: devicesOnly()},
	{method: "POST", path: "/api/v1/device/requests", url: fixed("/api/v1/device/requests"),
		body: func(*world) any { return map[string]any{"reason": "help", "for_s": 60} }, want: devicesOnly()},
	{method: "POST", path: "/api/v1/device/requests/{id}/close", url: func(w *world) string { return "/api/v1/device/requests/" + w.request.ID + "/close" },
		body: func(*world) any { return map[string]any{"reason": "revoked"} }, want: devicesOnly()},
	{method: "PUT", path: "/api/v1/device/sessions/{id}/files/{name}",
		url: func(w *world) string {
			return "/api/v1/device/sessions/" + w.session.ID + "/files/events.jsonl?offset=0"
		},
		body: func(*world) any { return "{}\n" }, want: devicesOnly()},
	{method: "POST", path: "/api/v1/device/sessions/{id}/recording/complete",
		url:  func(w *world) string { return "/api/v1/device/sessions/" + w.session.ID + "/recording/complete" },
		body: func(*world) any { return map[string]any{"files": map[string]int{}} }, want: devicesOnly()},
	{method: "POST", path: "/api/v1/device/owner-link", url: fixed("/api/v1/device/owner-link"), want: devicesOnly()},

	{method: "GET", path: "/owner/", url: fixed("/owner/"), want: everyone(http.StatusOK)},
	{method: "GET", path: "/api/v1/owner", url: fixed("/api/v1/owner"), want: ownersOnly()},
	{method: "GET", path: "/api/v1/owner/audit", url: fixed("/api/v1/owner/audit"), want: ownersOnly()},
	{method: "GET", path: "/api/v1/owner/sessions", url: fixed("/api/v1/owner/sessions"), want: ownersOnly()},
	{method: "GET", path: "/api/v1/owner/sessions/{id}/recording",
		url: func(w *world) string { return "/api/v1/owner/sessions/" + w.session.ID + "/recording" }, want: ownersOnly()},
	{method: "GET", path: "/api/v1/owner/sessions/{id}/recording/files/{name}",
		url: func(w *world) string { return "/api/v1/owner/sessions/" + w.session.ID + "/recording/files/meta.json" }, want: ownersOnly()},

	{method: "POST", path: "/api/v1/logout", url: fixed("/api/v1/logout"), want: loggedInUsers(http.StatusNoContent)},
	{method: "GET", path: "/api/v1/me", url: fixed("/api/v1/me"), want: loggedInUsers(http.StatusOK)},
	{method: "POST", path: "/api/v1/reauth", url: fixed("/api/v1/reauth"), body: func(*world) any { return map[string]any{} },
		want: loggedInUsers(http.StatusBadRequest)},
	// The callers have no passkey, and their logins proved no second
	// factor (made as tokens, not logins): no passkey is added or
	// removed without a fresh one (reauth_required).
	{method: "POST", path: "/api/v1/reauth/passkey-options", url: fixed("/api/v1/reauth/passkey-options"), want: loggedInUsers(http.StatusNotFound)},
	{method: "GET", path: "/api/v1/passkeys", url: fixed("/api/v1/passkeys"), want: loggedInUsers(http.StatusOK)},
	{method: "POST", path: "/api/v1/passkeys/register-options", url: fixed("/api/v1/passkeys/register-options"), want: loggedInUsers(http.StatusForbidden)},
	{method: "POST", path: "/api/v1/passkeys", url: fixed("/api/v1/passkeys"), body: func(*world) any { return map[string]any{} },
		want: loggedInUsers(http.StatusBadRequest)},
	{method: "DELETE", path: "/api/v1/passkeys/{id}", url: fixed("/api/v1/passkeys/psk_none"), want: loggedInUsers(http.StatusForbidden)},
	{method: "GET", path: "/api/v1/tokens", url: fixed("/api/v1/tokens"), want: loggedInUsers(http.StatusOK)},
	{method: "DELETE", path: "/api/v1/tokens/{id}", url: func(w *world) string { return "/api/v1/tokens/" + w.spare },
		want: loggedInUsers(http.StatusNoContent)},
	{method: "GET", path: "/api/v1/fleets", url: fixed("/api/v1/fleets"), want: loggedInUsers(http.StatusOK)},
	{method: "GET", path: "/api/v1/devices", url: func(w *world) string { return "/api/v1/devices?fleet=" + w.fleet.Name },
		want: fleetMembers(store.RoleAuditor, http.StatusOK)},
	{method: "GET", path: "/api/v1/presence", url: func(w *world) string { return "/api/v1/presence?fleet=" + w.fleet.Name },
		want: fleetMembers(store.RoleAuditor, http.StatusOK), stream: true},

	{method: "POST", path: "/api/v1/fleets", url: fixed("/api/v1/fleets"),
		body: func(w *world) any { return map[string]any{"name": w.fleet.Name + "-new"} }, want: admins(http.StatusCreated)},
	{method: "GET", path: "/api/v1/users", url: fixed("/api/v1/users"), want: admins(http.StatusOK)},
	{method: "POST", path: "/api/v1/users", url: fixed("/api/v1/users"),
		body: func(w *world) any { return map[string]any{"email": w.fleet.Name + "@new.example.com"} }, want: admins(http.StatusCreated)},
	{method: "DELETE", path: "/api/v1/users/{user}", url: func(w *world) string { return "/api/v1/users/" + w.victim.ID },
		want: admins(http.StatusNoContent)},
	{method: "POST", path: "/api/v1/users/{user}/reset", url: func(w *world) string { return "/api/v1/users/" + w.victim.Email + "/reset" },
		body: func(*world) any { return map[string]any{} }, want: admins(http.StatusOK)},

	{method: "GET", path: "/api/v1/fleets/{fleet}", url: func(w *world) string { return "/api/v1/fleets/" + w.fleet.Name },
		want: fleetMembers(store.RoleAuditor, http.StatusOK)},
	{method: "GET", path: "/api/v1/fleets/{fleet}/members", url: func(w *world) string { return "/api/v1/fleets/" + w.fleet.Name + "/members" },
		want: fleetMembers(store.RoleAuditor, http.StatusOK)},
	{method: "PUT", path: "/api/v1/fleets/{fleet}/members/{user}",
		url: func(w *world) string {
			return "/api/v1/fleets/" + w.fleet.Name + "/members/" + fx.users["target"].Email
		},
		body: func(*world) any { return map[string]any{"role": "operator"} }, want: fleetMembers(store.RoleOwner, http.StatusOK)},
	{method: "DELETE", path: "/api/v1/fleets/{fleet}/members/{user}",
		url:  func(w *world) string { return "/api/v1/fleets/" + w.fleet.Name + "/members/" + fx.users["target"].ID },
		want: fleetMembers(store.RoleOwner, http.StatusNoContent)},
	{method: "GET", path: "/api/v1/fleets/{fleet}/policy", url: func(w *world) string { return "/api/v1/fleets/" + w.fleet.Name + "/policy" },
		want: fleetMembers(store.RoleAuditor, http.StatusOK)},
	{method: "PUT", path: "/api/v1/fleets/{fleet}/policy", url: func(w *world) string { return "/api/v1/fleets/" + w.fleet.Name + "/policy" },
		body: func(*world) any { return map[string]any{"ports": []int{22}, "four_eyes": true} },
		want: fleetMembers(store.RoleOwner, http.StatusOK)},
	{method: "GET", path: "/api/v1/fleets/{fleet}/enrollment-tokens",
		url:  func(w *world) string { return "/api/v1/fleets/" + w.fleet.Name + "/enrollment-tokens" },
		want: fleetMembers(store.RoleOperator, http.StatusOK)},
	{method: "POST", path: "/api/v1/fleets/{fleet}/enrollment-tokens",
		url:  func(w *world) string { return "/api/v1/fleets/" + w.fleet.Name + "/enrollment-tokens" },
		body: func(*world) any { return map[string]any{"uses": 2} }, want: fleetMembers(store.RoleOperator, http.StatusCreated)},
	{method: "DELETE", path: "/api/v1/fleets/{fleet}/enrollment-tokens/{id}",
		url:  func(w *world) string { return "/api/v1/fleets/" + w.fleet.Name + "/enrollment-tokens/" + w.etoken.ID },
		want: fleetMembers(store.RoleOperator, http.StatusNoContent)},
	{method: "GET", path: "/api/v1/devices/{id}", url: func(w *world) string { return "/api/v1/devices/" + w.device.ID },
		want: fleetMembers(store.RoleAuditor, http.StatusOK)},
	{method: "PUT", path: "/api/v1/devices/{id}/labels", url: func(w *world) string { return "/api/v1/devices/" + w.device.ID + "/labels" },
		body: func(*world) any { return map[string]any{"labels": map[string]string{"site": "lab"}} },
		want: fleetMembers(store.RoleOperator, http.StatusOK)},
	{method: "POST", path: "/api/v1/devices/{id}/sessions", url: func(w *world) string { return "/api/v1/devices/" + w.device.ID + "/sessions" },
		body: func(*world) any { return map[string]any{"public_key": engineerPublicKey} },
		want: fleetMembers(store.RoleOperator, http.StatusCreated)},
	{method: "POST", path: "/api/v1/sessions", url: fixed("/api/v1/sessions"),
		body: func(w *world) any {
			return map[string]any{"public_key": engineerPublicKey, "device": w.device.Name, "fleet": w.fleet.Name}
		},
		want: fleetMembers(store.RoleOperator, http.StatusCreated)},
	{method: "GET", path: "/api/v1/requests", url: func(w *world) string { return "/api/v1/requests?fleet=" + w.fleet.Name },
		want: fleetMembers(store.RoleAuditor, http.StatusOK)},
	{method: "GET", path: "/api/v1/requests/{id}", url: func(w *world) string { return "/api/v1/requests/" + w.request.ID },
		want: fleetMembers(store.RoleAuditor, http.StatusOK)},
	{method: "POST", path: "/api/v1/requests/{id}/claim", url: func(w *world) string { return "/api/v1/requests/" + w.request.ID + "/claim" },
		want: fleetMembers(store.RoleOperator, http.StatusOK)},
	{method: "POST", path: "/api/v1/requests/{id}/close", url: func(w *world) string { return "/api/v1/requests/" + w.request.ID + "/close" },
		want: fleetMembers(store.RoleOperator, http.StatusOK)},
	{method: "POST", path: "/api/v1/requests/{id}/approve", url: func(w *world) string { return "/api/v1/requests/" + w.fourEyes.ID + "/approve" },
		want: fleetMembers(store.RoleOperator, http.StatusOK)},
	{method: "POST", path: "/api/v1/requests/{id}/deny", url: func(w *world) string { return "/api/v1/requests/" + w.fourEyes.ID + "/deny" },
		want: fleetMembers(store.RoleOperator, http.StatusOK)},
	{method: "GET", path: "/api/v1/audit", url: func(w *world) string { return "/api/v1/audit?fleet=" + w.fleet.Name },
		want: fleetMembers(store.RoleAuditor, http.StatusOK)},
	{method: "GET", path: "/api/v1/audit/verify", url: fixed("/api/v1/audit/verify"), want: admins(http.StatusOK)},
	{method: "GET", path: "/api/v1/sessions", url: func(w *world) string { return "/api/v1/sessions?fleet=" + w.fleet.Name },
		want: fleetMembers(store.RoleAuditor, http.StatusOK)},
	{method: "GET", path: "/api/v1/sessions/{id}", url: func(w *world) string { return "/api/v1/sessions/" + w.session.ID },
		want: fleetMembers(store.RoleAuditor, http.StatusOK)},
	{method: "GET", path: "/api/v1/recordings", url: func(w *world) string { return "/api/v1/recordings?fleet=" + w.fleet.Name },
		want: fleetMembers(store.RoleAuditor, http.StatusOK)},
	{method: "GET", path: "/api/v1/sessions/{id}/recording", url: func(w *world) string { return "/api/v1/sessions/" + w.session.ID + "/recording" },
		want: fleetMembers(store.RoleAuditor, http.StatusOK)},
	{method: "GET", path: "/api/v1/sessions/{id}/recording/files/{name}",
		url:  func(w *world) string { return "/api/v1/sessions/" + w.session.ID + "/recording/files/meta.json" },
		want: fleetMembers(store.RoleAuditor, http.StatusOK)},
	{method: "DELETE", path: "/api/v1/sessions/{id}", url: func(w *world) string { return "/api/v1/sessions/" + w.session.ID },
		want: fleetMembers(store.RoleOperator, http.StatusOK)},
	{method: "DELETE", path: "/api/v1/devices/{id}", url: func(w *world) string { return "/api/v1/devices/" + w.device.ID },
		want: fleetMembers(store.RoleOwner, http.StatusNoContent)},
}

// TestAccessMatrix tries every route as every kind of caller, each in a
// world of its own, and checks the status; refused requests must change
// nothing. Each logged-in caller tries each route twice: with a bearer
// token, and with the web console's session cookie (and its CSRF header),
// which must get the same answers. A request that changes something with
// the cookie but without the CSRF header is refused (403 csrf) for every
// caller, and changes nothing.
func TestAccessMatrix(t *testing.T) {
	t.Parallel()
	var covered []string
	for _, mc := range matrix {
		covered = append(covered, mc.method+" "+mc.path)
	}
	for _, rt := range fx.srv.routes {
		if !slices.Contains(covered, rt.pattern()) {
			t.Errorf("route %s has no row in the access matrix", rt.pattern())
		}
	}
	for _, mc := range matrix {
		i := slices.IndexFunc(fx.srv.routes, func(rt route) bool { return rt.pattern() == mc.method+" "+mc.path })
		if i < 0 {
			t.Errorf("the access matrix has a row for %s %s, which is no route", mc.method, mc.path)
			continue
		}
		rt := fx.srv.routes[i]
		userRoute := rt.access == loggedIn || rt.access == adminOnly || rt.access == fleetRole
		for _, who := range callers {
			for _, via := range []string{"bearer", "cookie", "cookie without CSRF"} {
				if via != "bearer" && who == "anonymous" {
					continue // no login: nothing to carry
				}
				want, ok := mc.want[who]
				if via == "cookie without CSRF" {
					if !userRoute || mc.method == "GET" {
						continue
					}
					want, ok = http.StatusForbidden, true
				}
				t.Run(mc.method+" "+mc.path+" as "+who+" by "+via, func(t *testing.T) {
					t.Parallel()
					if !ok {
						t.Fatalf("no expected status for %s", who)
					}
					caller := fx.users[who]
					w := newWorld(t, caller)
					var body any
					if mc.body != nil {
						body = mc.body(w)
					}
					before := w.snapshot(t, caller)
					var r response
					switch {
					case caller == nil:
						r = doMatrix(t, mc, w, nil, body)
					case via == "bearer":
						token, _, err := newToken(fx.store, caller, time.Now().Add(time.Hour))
						must(t, err)
						r = doMatrix(t, mc, w, func(req *http.Request) { req.Header.Set("Authorization", "Bearer "+token) }, body)
					default:
						secret := newConsoleSession(t, caller)
						r = doMatrix(t, mc, w, func(req *http.Request) {
							withConsoleSession(req, secret, via == "cookie")
						}, body)
					}
					if r.status != want {
						t.Fatalf("status = %d; want %d (body %s)", r.status, want, r.body)
					}
					if r.status >= 300 {
						e := r.errorBody(t)
						if via == "cookie without CSRF" && e.Code != apitype.CodeCSRF {
							t.Errorf("code = %q; want %q", e.Code, apitype.CodeCSRF)
						}
						if after := w.snapshot(t, caller); after != before {
							t.Errorf("a refused request changed the store:\nbefore %s\nafter  %s", before, after)
						}
					}
				})
			}
		}
	}
}

// doMatrix makes mc's request in w, with auth setting its credentials; a
// stream's answer is its status and headers only.
func doMatrix(t *testing.T, mc matrixCase, w *world, auth func(*http.Request), body any) response {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req := newRequest(t, ctx, mc.method, fx.ts.URL+mc.url(w), body)
	if auth != nil {
		auth(req)
	}
	resp, err := fx.ts.Client().Do(req)
	must(t, err)
	defer resp.Body.Close()
	r := response{status: resp.StatusCode, header: resp.Header}
	if !mc.stream || resp.StatusCode != http.StatusOK {
		r.body, err = io.ReadAll(resp.Body)
		must(t, err)
	}
	return r
}

// devicesOnly: a route for devices refuses every user.
func devicesOnly() map[string]int { return everyone(http.StatusUnauthorized) }

// ownersOnly: a route for owner links refuses every user.
func ownersOnly() map[string]int { return everyone(http.StatusUnauthorized) }
