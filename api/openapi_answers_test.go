package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/control"
)

// An exchange is one request to the fixture's server whose request and
// answer kin-openapi checks against the served document.
type exchange struct {
	name         string
	method, path string
	auth         func(method, requestURI string, body []byte) string // the Authorization header; nil: none
	body         any                                                 // nil, []byte (sent as application/octet-stream) or JSON
	header       http.Header
	status       int
	// refused: the request breaks the document, and the server refuses it
	// too: both say no to the same request.
	refused bool
}

// kin-openapi decodes text/plain answers but knows no text/html; a page is
// text all the same.
func init() { openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder) }

func bearer(token string) func(string, string, []byte) string {
	return func(string, string, []byte) string { return "Bearer " + token }
}

// schemePrefix is how the Authorization header of each of the document's
// security schemes starts, as the server reads it.
var schemePrefix = map[string]string{
	"bearer": "Bearer ",
	"owner":  apitype.OwnerScheme + " ",
	"device": apitype.DeviceAuthScheme + " ",
}

// checkScheme is kin-openapi's AuthenticationFunc: a request meets a
// security requirement of the document when it carries that scheme's
// credential, in the header the scheme names. Whether the credential is
// good is the server's to say.
func checkScheme(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if s := in.SecurityScheme; s.Type == "apiKey" && s.In == "cookie" {
		if _, err := in.RequestValidationInput.Request.Cookie(s.Name); err != nil {
			return in.NewError(fmt.Errorf("no cookie %s", s.Name))
		}
		return nil
	}
	prefix, ok := schemePrefix[in.SecuritySchemeName]
	if !ok {
		return in.NewError(fmt.Errorf("the test knows no security scheme %q", in.SecuritySchemeName))
	}
	header := "Authorization"
	if s := in.SecurityScheme; s.Type == "apiKey" {
		header = s.Name
	}
	if !strings.HasPrefix(in.RequestValidationInput.Request.Header.Get(header), prefix) {
		return in.NewError(fmt.Errorf("no %q credential in %s", prefix, header))
	}
	return nil
}

// openAPIRouter finds the document's operation of a request.
func openAPIRouter(t *testing.T) routers.Router {
	t.Helper()
	router, err := legacy.NewRouter(loadOpenAPI(t))
	if err != nil {
		t.Fatalf("kin-openapi: %v", err)
	}
	return router
}

// run sends ex to the fixture's server; kin-openapi checks the request
// before it goes and the answer after it comes, against the operation the
// document has for it. It returns the answer's body.
func (ex *exchange) run(t *testing.T, router routers.Router) []byte {
	t.Helper()
	var body []byte
	contentType := ""
	switch b := ex.body.(type) {
	case nil:
	case []byte:
		body, contentType = b, "application/octet-stream"
	default:
		var err error
		body, err = json.Marshal(b)
		must(t, err)
		contentType = "application/json"
	}
	newRequest := func() *http.Request {
		req, err := http.NewRequestWithContext(t.Context(), ex.method, fx.ts.URL+ex.path, bytes.NewReader(body))
		must(t, err)
		for k, v := range ex.header {
			req.Header[k] = v
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if ex.auth != nil {
			req.Header.Set("Authorization", ex.auth(req.Method, req.URL.RequestURI(), body))
			req.Header.Set(control.ContentDigestHeader, control.FormatContentDigest(control.BodyDigest(body)))
		}
		return req
	}

	// kin-openapi reads the body it checks, so it gets a request of its own.
	req := newRequest()
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s is no operation of the document: %v", ex.method, ex.path, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: checkScheme, RejectWhenRequestBodyNotSpecified: true, MultiError: true}}
	reqErr := openapi3filter.ValidateRequest(t.Context(), in)
	switch {
	case ex.refused && reqErr == nil:
		t.Errorf("the document takes the request the server refuses")
	case !ex.refused && reqErr != nil:
		reportKin(t, "the request", reqErr)
	}

	resp, err := fx.ts.Client().Do(newRequest())
	must(t, err)
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	must(t, err)
	if resp.StatusCode != ex.status {
		t.Errorf("status = %d; want %d (body %.300s)", resp.StatusCode, ex.status, answer)
	}
	in.Options = &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	err = openapi3filter.ValidateResponse(t.Context(), &openapi3filter.ResponseValidationInput{RequestValidationInput: in,
		Status: resp.StatusCode, Header: resp.Header, Body: io.NopCloser(bytes.NewReader(answer)), Options: in.Options})
	if err != nil {
		reportKin(t, fmt.Sprintf("the answer %d %.300s", resp.StatusCode, answer), err)
	}
	return answer
}

// reportKin fails t with each of kin-openapi's findings, in its words.
func reportKin(t *testing.T, what string, err error) {
	t.Helper()
	me := openapi3.MultiError{}
	if !errors.As(err, &me) {
		me = openapi3.MultiError{err}
	}
	for _, e := range me {
		t.Errorf("kin-openapi on %s: %v", what, e)
	}
}

// TestOpenAPIAnswers: what the server really answers is what its document
// says, for lists, single resources, changes, raw answers and errors, on
// every kind of credential: kin-openapi checks each request and answer
// against the operation the document has for it.
func TestOpenAPIAnswers(t *testing.T) {
	t.Parallel()
	router := openAPIRouter(t)
	fl, empty := fx.newFleet(t), fx.newFleet(t)
	d, key := newKeyedDevice(t, fl)
	ses := fx.newSession(t, d)
	admin, owner, operator, auditor := bearer(fx.tokens["admin"]), bearer(fx.tokens["owner"]), bearer(fx.tokens["operator"]), bearer(fx.tokens["auditor"])
	device := func(method, uri string, body []byte) string {
		return deviceCred(fl.Name, d.Name, key, method, uri, body, time.Now())
	}
	spare, _, err := newToken(fx.store, fx.users["target"], time.Now().Add(time.Hour))
	must(t, err)
	spareID := decodeAs[[]apitype.TokenInfo](t, do(t, fx.ts, "GET", "/api/v1/tokens", spare, nil), http.StatusOK)[0].ID

	run := func(t *testing.T, exs []exchange) {
		t.Helper()
		for _, ex := range exs {
			t.Run(ex.name, func(t *testing.T) { ex.run(t, router) })
		}
	}
	sesFiles := "/api/v1/device/sessions/" + ses.ID + "/files/"
	recFiles := "/api/v1/sessions/" + ses.ID + "/recording/files/"
	meta := []byte(`{"session":"` + ses.ID + `","start":"2026-11-22T10:00:00Z"}`)
	enrollToken, _ := fx.newEnrollmentToken(t, fl, 1, time.Now().Add(time.Hour))
	_, unused := fx.newEnrollmentToken(t, fl, 1, time.Now().Add(time.Hour))
	gone := fx.newDevice(t, fl)
	member := "/api/v1/fleets/" + fl.Name + "/members/" + fx.users["target"].Email
	run(t, []exchange{
		// Lists, with something in them and without.
		{name: "fleets", method: "GET", path: "/api/v1/fleets", auth: admin, status: 200},
		{name: "devices", method: "GET", path: "/api/v1/devices?fleet=" + fl.Name, auth: owner, status: 200},
		{name: "no devices", method: "GET", path: "/api/v1/devices?fleet=" + empty.Name, auth: owner, status: 200},
		{name: "sessions", method: "GET", path: "/api/v1/sessions?fleet=" + fl.Name, auth: operator, status: 200},
		{name: "audit", method: "GET", path: "/api/v1/audit?limit=5", auth: auditor, status: 200},
		{name: "tokens", method: "GET", path: "/api/v1/tokens", auth: owner, status: 200},
		{name: "users", method: "GET", path: "/api/v1/users", auth: admin, status: 200},
		{name: "members", method: "GET", path: "/api/v1/fleets/" + fl.Name + "/members", auth: owner, status: 200},
		{name: "requests", method: "GET", path: "/api/v1/requests?all=true&fleet=" + fl.Name, auth: operator, status: 200},
		// Single resources.
		{name: "me", method: "GET", path: "/api/v1/me", auth: owner, status: 200},
		{name: "fleet", method: "GET", path: "/api/v1/fleets/" + fl.Name, auth: auditor, status: 200},
		{name: "device", method: "GET", path: "/api/v1/devices/" + d.ID, auth: operator, status: 200},
		{name: "session", method: "GET", path: "/api/v1/sessions/" + ses.ID, auth: operator, status: 200},
		{name: "CA keys", method: "GET", path: "/api/v1/ca", status: 200},
		{name: "audit chain", method: "GET", path: "/api/v1/audit/verify", auth: admin, status: 200},
		// Changes.
		{name: "create a fleet", method: "POST", path: "/api/v1/fleets", auth: admin, body: apitype.CreateFleetRequest{Name: fx.name("fleet")}, status: 201},
		{name: "label a device", method: "PUT", path: "/api/v1/devices/" + d.ID + "/labels", auth: owner,
			body: apitype.SetLabelsRequest{Labels: map[string]string{"room": "3"}}, status: 200},
		{name: "an enrollment token", method: "POST", path: "/api/v1/fleets/" + fl.Name + "/enrollment-tokens", auth: owner,
			body: apitype.CreateEnrollmentTokenRequest{Uses: 2}, status: 201},
		{name: "enrollment tokens", method: "GET", path: "/api/v1/fleets/" + fl.Name + "/enrollment-tokens", auth: owner, status: 200},
		{name: "revoke a token", method: "DELETE", path: "/api/v1/tokens/" + spareID, auth: bearer(spare), status: 204},
		{name: "delete an enrollment token", method: "DELETE", path: "/api/v1/fleets/" + fl.Name + "/enrollment-tokens/" + unused.ID, auth: operator, status: 204},
		{name: "add a member", method: "PUT", path: member, auth: owner, body: apitype.Member{Role: "auditor"}, status: 200},
		{name: "remove a member", method: "DELETE", path: member, auth: owner, status: 204},
		{name: "create a user", method: "POST", path: "/api/v1/users", auth: admin,
			body: apitype.CreateUserRequest{Email: fx.name("user") + "@example.com"}, status: 201},
		{name: "delete a device", method: "DELETE", path: "/api/v1/devices/" + gone.ID, auth: owner, status: 204},
		{name: "enroll", method: "POST", path: "/api/v1/enroll", body: apitype.EnrollRequest{Token: enrollToken, Name: fx.name("dev"), PublicKey: newDeviceKey(t)}, status: 200},
		// The device, for itself.
		{name: "the device", method: "GET", path: "/api/v1/device", auth: device, status: 200},
		{name: "upload meta.json", method: "PUT", path: sesFiles + "meta.json", auth: device, body: meta, status: 200},
		{name: "upload events", method: "PUT", path: sesFiles + "events.jsonl?offset=0", auth: device, body: []byte("{}\n"), status: 200},
		{name: "upload past the end", method: "PUT", path: sesFiles + "events.jsonl?offset=5", auth: device, body: []byte("late\n"), status: 409},
		{name: "upload other bytes", method: "PUT", path: sesFiles + "events.jsonl?offset=0", auth: device, body: []byte("[]\n"), status: 409},
		{name: "complete the recording", method: "POST", path: "/api/v1/device/sessions/" + ses.ID + "/recording/complete", auth: device,
			body: apitype.CompleteRecordingRequest{Files: map[string]int64{"meta.json": int64(len(meta)), "events.jsonl": 3}}, status: 200},
		{name: "recordings", method: "GET", path: "/api/v1/recordings?fleet=" + fl.Name, auth: auditor, status: 200},
		{name: "recordings of sessions", method: "GET", path: "/api/v1/recordings?session=" + ses.ID + "&session=ses_other", auth: auditor, status: 200},
		{name: "a recording", method: "GET", path: "/api/v1/sessions/" + ses.ID + "/recording", auth: auditor, status: 200},
		{name: "a recording's meta.json", method: "GET", path: recFiles + "meta.json", auth: auditor, status: 200},
		{name: "a recording's events", method: "GET", path: recFiles + "events.jsonl", auth: auditor, status: 200},
		{name: "part of a recording's file", method: "GET", path: recFiles + "meta.json", auth: auditor,
			header: http.Header{"Range": {"bytes=0-9"}}, status: 206},
		// Raw answers.
		{name: "the document", method: "GET", path: "/api/v1/openapi.json", status: 200},
		{name: "liveness", method: "GET", path: "/healthz", status: 200},
		{name: "readiness", method: "GET", path: "/readyz", status: 200},
		{name: "metrics", method: "GET", path: "/metrics", status: 200},
		{name: "the owner's page", method: "GET", path: "/owner/", status: 200},
		// Errors.
		{name: "no such device", method: "GET", path: "/api/v1/devices/nothing", auth: owner, status: 404},
		{name: "no token", method: "GET", path: "/api/v1/me", status: 401, refused: true},
		{name: "an offline device", method: "POST", path: "/api/v1/devices/" + d.ID + "/sessions", auth: operator,
			body: apitype.CreateSessionRequest{PublicKey: engineerPublicKey}, status: 409},
		{name: "not an admin", method: "POST", path: "/api/v1/fleets", auth: owner, body: apitype.CreateFleetRequest{Name: fx.name("fleet")}, status: 403},
		{name: "a field the server does not know", method: "POST", path: "/api/v1/fleets", auth: admin,
			body: map[string]string{"nme": "x"}, status: 400, refused: true},
	})

	// A support request the device asks for, in the queue.
	var sr apitype.SupportRequest
	must(t, json.Unmarshal((&exchange{name: "support request", method: "POST", path: "/api/v1/device/requests", auth: device,
		body: apitype.DeviceRequest{Reason: "the printer", ForS: 600}, status: 201}).run(t, router), &sr))
	run(t, []exchange{
		{name: "a request", method: "GET", path: "/api/v1/requests/" + sr.ID, auth: auditor, status: 200},
		{name: "claim it", method: "POST", path: "/api/v1/requests/" + sr.ID + "/claim", auth: operator, status: 200},
		{name: "the device closes it", method: "POST", path: "/api/v1/device/requests/" + sr.ID + "/close", auth: device,
			body: apitype.CloseRequest{Reason: "window_closed"}, status: 200},
		{name: "close it", method: "POST", path: "/api/v1/requests/" + sr.ID + "/close", auth: operator, status: 200},
	})

	// The fleet's policy, and what it decides.
	od := onlineDevice(t, fl)
	_, approve := fx.newFourEyesSession(t, od, fx.users["target"])
	_, deny := fx.newFourEyesSession(t, od, fx.users["target"])
	policy := "/api/v1/fleets/" + fl.Name + "/policy"
	run(t, []exchange{
		{name: "a policy never set", method: "GET", path: policy, auth: auditor, status: 200},
		{name: "set a policy with no ports", method: "PUT", path: policy, auth: owner,
			body: apitype.SetFleetPolicyRequest{Ports: ports(), MaxDurationS: 3600}, status: 200},
		{name: "set a policy", method: "PUT", path: policy, auth: owner,
			body: apitype.SetFleetPolicyRequest{Ports: ports(22), ConsentFloor: "approve", IdleTimeoutS: 600, FourEyes: true}, status: 200},
		{name: "the policy", method: "GET", path: policy, auth: auditor, status: 200},
		{name: "a stale change", method: "PUT", path: policy, auth: owner, body: map[string]any{"version": 0}, status: 409},
		{name: "a session the policy refuses", method: "POST", path: "/api/v1/devices/" + od.ID + "/sessions", auth: operator,
			body: apitype.CreateSessionRequest{PublicKey: engineerPublicKey, Ports: []int{80}}, status: 403},
		{name: "a session waiting for a second engineer", method: "POST", path: "/api/v1/devices/" + od.ID + "/sessions", auth: operator,
			body: apitype.CreateSessionRequest{PublicKey: engineerPublicKey, Ports: []int{22}}, status: 201},
		{name: "approve a session", method: "POST", path: "/api/v1/requests/" + approve.ID + "/approve", auth: operator, status: 200},
		{name: "deny a session", method: "POST", path: "/api/v1/requests/" + deny.ID + "/deny", auth: owner, status: 200},
	})

	// A person logs in and out.
	u := newUser(t, false)
	var login apitype.LoginResponse
	must(t, json.Unmarshal((&exchange{name: "log in", method: "POST", path: "/api/v1/login",
		body: loginBody(u, testPassword, totpCode(t, u, time.Now())), status: 200}).run(t, router), &login))
	// Their passkey: added (their login is fresh), listed, used to
	// re-authenticate, and removed; a sign-in with it begun.
	me, a := bearer(login.Token), newAuthenticator()
	var creation apitype.PasskeyCreationOptions
	must(t, json.Unmarshal((&exchange{name: "passkey registration options", method: "POST", path: "/api/v1/passkeys/register-options",
		auth: me, status: 200}).run(t, router), &creation))
	cred, k := a.create(t, creation)
	var pk apitype.Passkey
	must(t, json.Unmarshal((&exchange{name: "add a passkey", method: "POST", path: "/api/v1/passkeys", auth: me,
		body: apitype.RegisterPasskeyRequest{Name: "laptop", Credential: cred}, status: 201}).run(t, router), &pk))
	var request apitype.PasskeyRequestOptions
	must(t, json.Unmarshal((&exchange{name: "passkey reauth options", method: "POST", path: "/api/v1/reauth/passkey-options",
		auth: me, status: 200}).run(t, router), &request))
	run(t, []exchange{
		{name: "passkeys", method: "GET", path: "/api/v1/passkeys", auth: me, status: 200},
		{name: "reauth with a passkey", method: "POST", path: "/api/v1/reauth", auth: me,
			body: apitype.ReauthRequest{Passkey: ptr(a.get(t, request, k))}, status: 200},
		{name: "passkey sign-in options", method: "POST", path: "/api/v1/console/passkey-options", body: apitype.PasskeySignInRequest{}, status: 200},
		{name: "a passkey sign-in without its cookie", method: "POST", path: "/api/v1/console/passkey-login",
			body: apitype.PasskeyLoginRequest{Passkey: a.get(t, request, k)}, status: 401},
		{name: "remove a passkey", method: "DELETE", path: "/api/v1/passkeys/" + pk.ID, auth: me, status: 204},
		{name: "log out", method: "POST", path: "/api/v1/logout", auth: me, status: 204},
	})

	// The owner, with the link the device asks for.
	var link apitype.OwnerLink
	must(t, json.Unmarshal((&exchange{name: "owner link", method: "POST", path: "/api/v1/device/owner-link", auth: device, status: 200}).run(t, router), &link))
	ownerLink := func(string, string, []byte) string { return apitype.OwnerScheme + " " + link.Token }
	run(t, []exchange{
		{name: "owner", method: "GET", path: "/api/v1/owner", auth: ownerLink, status: 200},
		{name: "owner's audit", method: "GET", path: "/api/v1/owner/audit", auth: ownerLink, status: 200},
		{name: "owner's sessions", method: "GET", path: "/api/v1/owner/sessions", auth: ownerLink, status: 200},
		{name: "owner's recording", method: "GET", path: "/api/v1/owner/sessions/" + ses.ID + "/recording", auth: ownerLink, status: 200},
		{name: "owner's recording file", method: "GET", path: "/api/v1/owner/sessions/" + ses.ID + "/recording/files/meta.json", auth: ownerLink, status: 200},
		{name: "owner's missing file", method: "GET", path: "/api/v1/owner/sessions/" + ses.ID + "/recording/files/0001-pty.cast", auth: ownerLink, status: 404},
	})
}
