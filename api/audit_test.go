package api

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/auth"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/store"
	"github.com/porthole/porthole/store/storetest"
)

// auditMark is where the shared store's log stands, so that a test reads
// only what came after (other tests append at the same time).
func auditMark(t *testing.T) int64 {
	t.Helper()
	h, err := fx.store.AuditHead(context.Background())
	must(t, err)
	return h.Seq
}

// auditSince lists, as the caller with token, the events after mark that
// query selects.
func auditSince(t *testing.T, token string, mark int64, query string) []apitype.AuditEvent {
	t.Helper()
	path := fmt.Sprintf("/api/v1/audit?after=%d&limit=1000", mark)
	if query != "" {
		path += "&" + query
	}
	return decodeAs[[]apitype.AuditEvent](t, do(t, fx.ts, "GET", path, token, nil), http.StatusOK)
}

// find returns the events matching keep.
func find(evs []apitype.AuditEvent, keep func(apitype.AuditEvent) bool) []apitype.AuditEvent {
	var out []apitype.AuditEvent
	for _, e := range evs {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

func byActor(name string) func(apitype.AuditEvent) bool {
	return func(e apitype.AuditEvent) bool { return e.Actor.Name == name }
}

func eventKinds(evs []apitype.AuditEvent) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, e.Kind)
	}
	return out
}

// TestAuditLogin: a login is recorded with the token it made, a failed one
// with its reason, under the email given; the rate limit's refusals are
// not recorded one by one. Only administrators see these events of no
// fleet.
func TestAuditLogin(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{LoginFailuresPerAccount: 2})
	u := newUser(t, false)
	mark := auditMark(t)
	ts.login(t, u)
	for _, pw := range []string{"wrong password one", "wrong password two", "wrong password three"} {
		do(t, ts.ts, "POST", "/api/v1/login", "", loginBody(u, pw, totpCode(t, u, ts.clock.Now())))
	}
	do(t, ts.ts, "POST", "/api/v1/login", "", apitype.LoginRequest{Email: "ghost-" + u.Email, Password: "x", TOTP: "123456"})

	evs := auditSince(t, fx.tokens["admin"], mark, "")
	mine := find(evs, byActor(u.Email))
	if got := eventKinds(mine); !slices.Equal(got, []string{"login_succeeded", "login_failed", "login_failed"}) {
		t.Fatalf("events of %s: %v; want a login and two failures (the third was refused by the limit)", u.Email, got)
	}
	if ok := mine[0]; ok.Actor.Kind != "user" || ok.Actor.ID != u.ID || ok.Detail["remote"] == "" || ok.Fleet != "" {
		t.Errorf("login event %+v", ok)
	}
	if bad := mine[1]; bad.Actor.Kind != "anonymous" || bad.Detail["reason"] != reasonBadPassword || bad.Detail["remote"] == "" {
		t.Errorf("failed login event %+v", bad)
	}
	if ghost := find(evs, byActor("ghost-"+u.Email)); len(ghost) != 1 || ghost[0].Detail["reason"] != reasonUnknownUser {
		t.Errorf("events of an unknown email: %+v", ghost)
	}
	for _, e := range mine {
		if strings.Contains(fmt.Sprint(e.Detail), "wrong password") {
			t.Errorf("an event holds the password tried: %+v", e)
		}
	}
	// A fleet's auditor sees none of it.
	if got := find(auditSince(t, fx.tokens["auditor"], mark, ""), byActor(u.Email)); len(got) != 0 {
		t.Errorf("a fleet auditor sees login events: %+v", got)
	}
}

// TestAuditEnrollment: an enrollment is recorded in the token's fleet with
// the new device; a refused one with its reason.
func TestAuditEnrollment(t *testing.T) {
	t.Parallel()
	fl := fx.newFleet(t)
	secret, _ := fx.newEnrollmentToken(t, fl, 1, time.Now().Add(time.Hour))
	mark := auditMark(t)
	name := fx.name("dev")
	r := do(t, fx.ts, "POST", "/api/v1/enroll", "", apitype.EnrollRequest{Token: secret, Name: name, PublicKey: newDeviceKey(t)})
	enrolled := decodeAs[apitype.EnrollResponse](t, r, http.StatusOK)
	do(t, fx.ts, "POST", "/api/v1/enroll", "", apitype.EnrollRequest{Token: secret, Name: name + "-x", PublicKey: newDeviceKey(t)})

	evs := auditSince(t, fx.tokens["auditor"], mark, "fleet="+fl.Name)
	if got := eventKinds(evs); !slices.Equal(got, []string{"device_enrolled"}) {
		t.Fatalf("fleet events %v; want device_enrolled", got)
	}
	e := evs[0]
	if e.Device != name || e.DeviceID != enrolled.Device.ID || e.Fleet != fl.Name || e.FleetID != fl.ID ||
		e.Actor.Kind != "device" || e.Actor.Name != name || !strings.HasPrefix(e.Detail["key"], "SHA256:") {
		t.Errorf("enrollment event %+v", e)
	}
	// The used-up token's refusal names no fleet (the token does not say
	// which, to the one presenting it): administrators see it.
	refused := find(auditSince(t, fx.tokens["admin"], mark, ""), func(e apitype.AuditEvent) bool {
		return e.Kind == "enrollment_refused" && e.Detail["device"] == name+"-x"
	})
	if len(refused) != 1 || refused[0].Detail["reason"] != reasonUsedUp {
		t.Errorf("refused enrollment events %+v", refused)
	}
}

// TestAuditSession: opening, activating and closing a session through the
// API are recorded, each by its actor, and readable by the session.
func TestAuditSession(t *testing.T) {
	t.Parallel()
	fl := fx.newFleet(t)
	d := fx.newDevice(t, fl)
	must(t, fx.store.SetDevicePresence(context.Background(), store.DevicePresence{DeviceID: d.ID, Online: true, At: time.Now()}))
	r := do(t, fx.ts, "POST", "/api/v1/devices/"+d.ID+"/sessions", fx.tokens["operator"],
		apitype.CreateSessionRequest{PublicKey: engineerPublicKey, Ports: []int{22}, Reason: "ticket 12"})
	ses := decodeAs[apitype.CreateSessionResponse](t, r, http.StatusCreated).Session
	fx.srv.sessions.HandleState(fl.Name, d.Name, control.State{Kind: control.StateTunnelUp, Session: ses.ID})
	decodeAs[apitype.Session](t, do(t, fx.ts, "DELETE", "/api/v1/sessions/"+ses.ID, fx.tokens["owner"], nil), http.StatusOK)

	evs := decodeAs[[]apitype.AuditEvent](t, do(t, fx.ts, "GET", "/api/v1/audit?session="+ses.ID, fx.tokens["auditor"], nil), http.StatusOK)
	type step struct{ kind, actor, reason string }
	var got []step
	for _, e := range evs {
		got = append(got, step{e.Kind, e.Actor.Name, e.Detail["reason"]})
		if e.Fleet != fl.Name || e.Device != d.Name || e.DeviceID != d.ID || e.Session != ses.ID {
			t.Errorf("event %s names %s/%s (%s) session %s", e.Kind, e.Fleet, e.Device, e.DeviceID, e.Session)
		}
	}
	want := []step{
		{"session_requested", "operator@example.com", "ticket 12"},
		{"session_active", d.Name + "." + fl.Name, ""},
		{"session_closed", "owner@example.com", "engineer_closed"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("session events %+v; want %+v", got, want)
	}
	// The other fleet's owner reads none of it.
	if evs := decodeAs[[]apitype.AuditEvent](t, do(t, fx.ts, "GET", "/api/v1/audit?session="+ses.ID, fx.tokens["other"], nil), http.StatusOK); len(evs) != 0 {
		t.Errorf("another fleet's owner reads %d events of the session", len(evs))
	}
}

// TestAuditDenials: reaching into another fleet is recorded in that fleet,
// for its members to see; asking more than one's role allows, and an
// administrator's route without being one, are recorded too.
func TestAuditDenials(t *testing.T) {
	t.Parallel()
	fl := fx.newFleet(t)
	d := fx.newDevice(t, fl)
	mark := auditMark(t)
	do(t, fx.ts, "GET", "/api/v1/devices/"+d.ID, fx.tokens["other"], nil).wantError(t, http.StatusNotFound, apitype.CodeNotFound)
	do(t, fx.ts, "GET", "/api/v1/devices?fleet="+fl.Name, fx.tokens["other"], nil).wantError(t, http.StatusNotFound, apitype.CodeNotFound)
	do(t, fx.ts, "DELETE", "/api/v1/devices/"+d.ID, fx.tokens["auditor"], nil).wantError(t, http.StatusForbidden, apitype.CodeForbidden)
	do(t, fx.ts, "GET", "/api/v1/audit/verify", fx.tokens["owner"], nil).wantError(t, http.StatusForbidden, apitype.CodeForbidden)

	evs := auditSince(t, fx.tokens["auditor"], mark, "fleet="+fl.Name)
	cross := find(evs, func(e apitype.AuditEvent) bool { return e.Kind == "cross_fleet_denied" })
	if len(cross) != 2 || cross[0].Actor.Name != "other@example.com" || cross[0].Detail["path"] != "/api/v1/devices/"+d.ID ||
		cross[1].Detail["route"] != "GET /api/v1/devices" {
		t.Errorf("cross-fleet denials seen by the fleet's auditor: %+v", cross)
	}
	weak := find(evs, func(e apitype.AuditEvent) bool { return e.Kind == "access_denied" })
	if len(weak) != 1 || weak[0].Actor.Name != "auditor@example.com" || weak[0].Detail["role"] != "auditor" || weak[0].Detail["needs"] != "owner" {
		t.Errorf("role denials: %+v", weak)
	}
	notAdmin := find(auditSince(t, fx.tokens["admin"], mark, ""), func(e apitype.AuditEvent) bool {
		return e.Kind == "access_denied" && e.Detail["route"] == "GET /api/v1/audit/verify"
	})
	if len(notAdmin) == 0 || notAdmin[0].Actor.Name != "owner@example.com" || notAdmin[0].Fleet != "" {
		t.Errorf("denials of an administrator's route: %+v", notAdmin)
	}
	// The intruder reads nothing of the fleet's log, and trying is one
	// more denial.
	do(t, fx.ts, "GET", "/api/v1/audit?fleet="+fl.Name, fx.tokens["other"], nil).wantError(t, http.StatusNotFound, apitype.CodeNotFound)
	for _, e := range auditSince(t, fx.tokens["other"], mark, "") {
		if e.FleetID == fl.ID {
			t.Errorf("the other fleet's owner reads %+v", e)
		}
	}
}

// TestAuditChanges: changes made through the API are recorded in their
// fleet with who made them.
func TestAuditChanges(t *testing.T) {
	t.Parallel()
	mark := auditMark(t)
	name := fx.name("fleet")
	decodeAs[apitype.Fleet](t, do(t, fx.ts, "POST", "/api/v1/fleets", fx.tokens["admin"], apitype.CreateFleetRequest{Name: name}), http.StatusCreated)
	path := "/api/v1/fleets/" + name
	decodeAs[apitype.Member](t, do(t, fx.ts, "PUT", path+"/members/auditor@example.com", fx.tokens["admin"], apitype.Member{Role: "owner"}), http.StatusOK)
	tok := decodeAs[apitype.EnrollmentToken](t, do(t, fx.ts, "POST", path+"/enrollment-tokens", fx.tokens["auditor"],
		apitype.CreateEnrollmentTokenRequest{Uses: 2}), http.StatusCreated)
	fl, err := fx.store.GetFleetByName(context.Background(), name)
	must(t, err)
	d := fx.newDevice(t, fl)
	decodeAs[apitype.Device](t, do(t, fx.ts, "PUT", "/api/v1/devices/"+d.ID+"/labels", fx.tokens["auditor"],
		apitype.SetLabelsRequest{Labels: map[string]string{"site": "lab", "floor": "2"}}), http.StatusOK)
	r := do(t, fx.ts, "DELETE", "/api/v1/devices/"+d.ID, fx.tokens["auditor"], nil)
	must(t, expectStatus(r, http.StatusNoContent))
	r = do(t, fx.ts, "DELETE", path+"/enrollment-tokens/"+tok.ID, fx.tokens["auditor"], nil)
	must(t, expectStatus(r, http.StatusNoContent))
	r = do(t, fx.ts, "DELETE", path+"/members/auditor@example.com", fx.tokens["admin"], nil)
	must(t, expectStatus(r, http.StatusNoContent))

	evs := auditSince(t, fx.tokens["admin"], mark, "fleet="+name)
	type step struct{ kind, actor, detail string }
	var got []step
	for _, e := range evs {
		detail := e.Detail["role"] + e.Detail["labels"] + e.Detail["token_id"]
		got = append(got, step{e.Kind, e.Actor.Name, detail})
		if e.FleetID != fl.ID {
			t.Errorf("%s event in fleet %q (%s); want %s", e.Kind, e.Fleet, e.FleetID, fl.ID)
		}
	}
	want := []step{
		{"fleet_created", "admin@example.com", ""},
		{"role_changed", "admin@example.com", "owner"},
		{"enrollment_token_created", "auditor@example.com", ""},
		{"labels_changed", "auditor@example.com", "floor=2,site=lab"},
		{"device_deleted", "auditor@example.com", ""},
		{"enrollment_token_deleted", "auditor@example.com", tok.ID},
		{"role_removed", "admin@example.com", ""},
	}
	if !slices.Equal(got, want) {
		t.Errorf("events\n%+v\nwant\n%+v", got, want)
	}
	// A deleted device's history can still be asked for by name.
	byName := auditSince(t, fx.tokens["admin"], mark, "fleet="+name+"&device="+d.Name)
	if got := eventKinds(byName); !slices.Equal(got, []string{"labels_changed", "device_deleted"}) {
		t.Errorf("events of the deleted device %s: %v", d.Name, got)
	}
}

func expectStatus(r response, status int) error {
	if r.status != status {
		return fmt.Errorf("status %d; want %d (body %s)", r.status, status, r.body)
	}
	return nil
}

func TestAuditListQuery(t *testing.T) {
	t.Parallel()
	for _, q := range []string{"since=yesterday", "after=-1", "after=x", "limit=0", "limit=1001", "device=dev1", "fleet=acme&device=Bad_Name"} {
		do(t, fx.ts, "GET", "/api/v1/audit?"+q, fx.tokens["admin"], nil).wantError(t, http.StatusBadRequest, apitype.CodeBadRequest)
	}
	// Without since or after: the latest events, oldest first.
	evs := decodeAs[[]apitype.AuditEvent](t, do(t, fx.ts, "GET", "/api/v1/audit?limit=3", fx.tokens["admin"], nil), http.StatusOK)
	head := auditMark(t)
	if len(evs) != 3 || evs[0].Seq >= evs[2].Seq || evs[2].Seq > head || head-evs[2].Seq > 1000 {
		t.Errorf("latest 3 events: %v (head %d)", evs, head)
	}
	since := url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339))
	if evs := decodeAs[[]apitype.AuditEvent](t, do(t, fx.ts, "GET", "/api/v1/audit?since="+since, fx.tokens["admin"], nil), http.StatusOK); len(evs) != 0 {
		t.Errorf("events from an hour ahead: %d", len(evs))
	}
}

// TestParseAuditQuery: the window both audit listings (GET /api/v1/audit
// and GET /api/v1/owner/audit) read from their query.
func TestParseAuditQuery(t *testing.T) {
	since := time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC)
	for _, tt := range []struct {
		name, query string
		want        store.AuditFilter // when ok
		ok          bool
	}{
		{"none", "", store.AuditFilter{Limit: defaultAuditLimit, Latest: true}, true},
		{"since", "since=2026-11-22T10:30:00Z", store.AuditFilter{Since: since, Limit: defaultAuditLimit}, true},
		{"after and limit", "after=42&limit=1000", store.AuditFilter{After: 42, Limit: 1000}, true},
		{"limit only", "limit=1", store.AuditFilter{Limit: 1, Latest: true}, true},
		{"before", "before=42", store.AuditFilter{Before: 42, Limit: defaultAuditLimit, Latest: true}, true},
		{"zero before", "before=0", store.AuditFilter{}, false},
		{"bad before", "before=x", store.AuditFilter{}, false},
		{"bad since", "since=yesterday", store.AuditFilter{}, false},
		{"negative after", "after=-1", store.AuditFilter{}, false},
		{"bad after", "after=x", store.AuditFilter{}, false},
		{"zero limit", "limit=0", store.AuditFilter{}, false},
		{"limit too high", "limit=1001", store.AuditFilter{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseAuditQuery(q)
			if !tt.ok {
				if err == nil {
					t.Errorf("parseAuditQuery(%q) = %+v; want an error", tt.query, got)
				}
				return
			}
			if err != nil || !got.Since.Equal(tt.want.Since) || got.After != tt.want.After || got.Before != tt.want.Before ||
				got.Limit != tt.want.Limit || got.Latest != tt.want.Latest {
				t.Errorf("parseAuditQuery(%q) = %+v, %v; want %+v", tt.query, got, err, tt.want)
			}
		})
	}
}

// verifyServer is a server on a store of its own, with an administrator,
// so that a test can tamper with its database.
func verifyServer(t *testing.T) (*testServer, *sql.DB, string) {
	t.Helper()
	st := storetest.OpenSQLite(t)
	ts := newServer(t, Config{Store: st})
	admin := &store.User{Email: "root@example.com", PasswordHash: "x", TOTPSecret: "x", Admin: true}
	must(t, st.CreateUser(context.Background(), admin))
	secret, hash := auth.NewSecret("pht")
	must(t, st.CreateToken(context.Background(), &store.Token{UserID: admin.ID, Hash: hash, Name: "test"}))
	for i := range 5 {
		must(t, st.AppendAudit(context.Background(), audit.Event{Kind: audit.LoginFailed, Actor: audit.Anonymous(fmt.Sprint(i))}))
	}
	return ts, st.(interface{ DB() *sql.DB }).DB(), secret
}

// TestAuditVerify: the route says ok with the head to record; after an
// edit behind the server's back, what is wrong and where; an anchor the
// chain no longer holds is found.
func TestAuditVerify(t *testing.T) {
	t.Parallel()
	ts, db, token := verifyServer(t)
	v := decodeAs[apitype.AuditVerification](t, do(t, ts.ts, "GET", "/api/v1/audit/verify", token, nil), http.StatusOK)
	if !v.OK || v.Count != 5 || v.Problem != nil {
		t.Fatalf("verification of a sound log: %+v", v)
	}
	head, err := audit.ParseHead(v.Head)
	must(t, err)
	if head.Seq != 5 {
		t.Errorf("head %s; want event 5", v.Head)
	}
	ok := decodeAs[apitype.AuditVerification](t, do(t, ts.ts, "GET", "/api/v1/audit/verify?anchor="+v.Head, token, nil), http.StatusOK)
	if !ok.OK {
		t.Errorf("the head just recorded as anchor: %+v", ok)
	}
	do(t, ts.ts, "GET", "/api/v1/audit/verify?anchor=5:nothex", token, nil).wantError(t, http.StatusBadRequest, apitype.CodeBadRequest)

	_, err = db.Exec(`UPDATE audit_events SET actor_name = 'nobody' WHERE seq = 3`)
	must(t, err)
	bad := decodeAs[apitype.AuditVerification](t, do(t, ts.ts, "GET", "/api/v1/audit/verify", token, nil), http.StatusOK)
	if bad.OK || bad.Problem == nil || bad.Problem.Kind != "edited" || bad.Problem.Seq != 3 || bad.Count != 2 {
		t.Errorf("verification after an edit: %+v", bad)
	}
	if !strings.Contains(ts.log.String(), "the audit log's chain is broken") {
		t.Error("a broken chain was not logged")
	}
}

// TestAuditRecordOutlivesTheRequest: a caller that hangs up right away
// (its request's context cancelled) does not take its event with it.
func TestAuditRecordOutlivesTheRequest(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := &call{s: fx.srv, r: httptest.NewRequest("POST", "/api/v1/login", nil), ctx: ctx}
	mark := auditMark(t)
	fx.srv.record(c, audit.Event{Kind: audit.LoginFailed, Actor: audit.Anonymous("hangup@example.com")})
	evs, err := fx.store.ListAudit(context.Background(), store.AuditFilter{After: mark, Limit: 1000})
	must(t, err)
	if !slices.ContainsFunc(evs, func(e audit.Event) bool { return e.Actor.Name == "hangup@example.com" }) {
		t.Error("the event of a cancelled request was not recorded")
	}
}
