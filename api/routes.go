package api

import (
	"net/http"
	"slices"
	"strings"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/store"
)

// access says who may call a route.
type access int

const (
	public     access = iota // anyone, without a token
	loggedIn                 // any logged-in user
	adminOnly                // server administrators
	fleetRole                // a role of at least route.role in the route's fleet; admins count as owners
	deviceAuth               // an enrolled device, by a credential signed with its key for each request (control.SignDeviceRequest)
	ownerAuth                // a device's owner, by an owner link's token, reading that device's records only (owner.go)
)

// route is one operation of the API. The table of them is the single
// source of both the mux's patterns and the OpenAPI document.
type route struct {
	method  string
	path    string // a http.ServeMux path pattern, {name} for wildcards
	access  access
	role    store.Role // fleetRole routes: the least role needed
	action  string     // what the route does, as in "only a fleet owner can <action>"
	summary string
	query   []param
	status  int  // success status; zero: 200, or 204 when there is no response body
	quiet   bool // log at debug level: probes and scrapes would drown the log
	ep      endpoint
}

// param is a documented query parameter.
type param struct {
	name, doc string
	repeated  bool           // it may be given more than once (session=a&session=b)
	schema    map[string]any // its JSON Schema, as its handler parses it; nil: a string
}

// Schemas of typed query parameters, as the handlers parse them.
var (
	boolParam   = map[string]any{"type": "boolean"}
	timeParam   = map[string]any{"type": "string", "format": "date-time"}
	seqParam    = map[string]any{"type": "integer", "minimum": 0}
	offsetParam = map[string]any{"type": "integer", "minimum": 0}
	limitParam  = map[string]any{"type": "integer", "minimum": 1, "maximum": maxAuditLimit}
)

func (rt *route) pattern() string { return rt.method + " " + rt.path }

func (rt *route) successStatus() int {
	switch {
	case rt.status != 0:
		return rt.status
	case rt.ep.raw == nil && rt.ep.resp == nil:
		return http.StatusNoContent
	}
	return http.StatusOK
}

// routeTable lists every route. Paths with {fleet} take a fleet name, {id}
// and {user} an ID ({user} also an email).
func (s *Server) routeTable() []route {
	return []route{
		// Unauthenticated.
		{method: "POST", path: "/api/v1/login", access: public, summary: "Log in with email, password and TOTP code; returns a bearer token",
			ep: handle(s.login)},
		{method: "POST", path: "/api/v1/enroll", access: public, summary: "Enroll a device with an enrollment token (the token authenticates the call)",
			ep: handle(s.enroll)},
		{method: "POST", path: "/api/v1/console/login", access: public,
			summary: "Log in from a browser with email, password and a second factor (the TOTP code, or a passkey's answer to POST /api/v1/console/passkey-options with second_factor): the web console's session is set in cookies (HttpOnly, Secure, SameSite=Strict), never in the body",
			ep:      handle(s.consoleLogin)},
		{method: "POST", path: "/api/v1/console/passkey-options", access: public,
			summary: "Begin a sign-in with a passkey in the browser (second_factor: a passkey in place of the TOTP code after the password): navigator.credentials.get's options; the challenge waits on the server for 5 minutes, bound to an HttpOnly cookie of this browser, and is used once",
			ep:      handle(s.passkeySignInOptions)},
		{method: "POST", path: "/api/v1/console/passkey-login", access: public,
			summary: "Sign in with a passkey alone (its authenticator verified its user): the web console's session is set in cookies, as by POST /api/v1/console/login",
			ep:      handle(s.passkeyLogin)},
		{method: "GET", path: "/api/v1/sso", access: public, summary: "Whether this server offers single sign-on (the console shows its button by it)",
			ep: handle(s.ssoInfo)},
		{method: "GET", path: "/api/v1/sso/login", access: public, status: http.StatusSeeOther,
			summary: "Begin the web console's single sign-on: redirects to the provider (authorization code with PKCE, state and nonce), the flow sealed in a cookie",
			ep:      raw("text/html", http.HandlerFunc(s.ssoLogin))},
		{method: "GET", path: "/api/v1/sso/callback", access: public,
			summary: "Where the provider sends the browser back: checks state, code and ID token, maps the groups to fleet roles, and sets the console session's cookies or approves a `porthole login --sso`",
			query:   []param{{name: "code", doc: "the provider's authorization code"}, {name: "state", doc: "the sign-in's state"}, {name: "error", doc: "the provider's refusal"}, {name: "error_description", doc: "its words"}, {name: "scope", doc: "the scopes granted"}, {name: "iss", doc: "the provider's issuer"}},
			ep:      raw("text/html", http.HandlerFunc(s.ssoCallback))},
		{method: "POST", path: "/api/v1/sso/device-code", access: public,
			summary: "Begin `porthole login --sso` (RFC 8628 device authorization): a device code for the CLI, a user code and the page to confirm it at",
			ep:      handle(s.deviceCode)},
		{method: "POST", path: "/api/v1/sso/token", access: public,
			summary: "Poll for the login of a device code (RFC 8628): authorization_pending, slow_down, access_denied or expired_token until the engineer has signed in, then a bearer token, once",
			ep:      handle(s.deviceToken)},
		{method: "GET", path: "/sso/device", access: public, summary: "The verification page of `porthole login --sso`: shows the code, who asked and when, and a Confirm button",
			query: []param{{name: "user_code", doc: "the code porthole printed"}},
			ep:    raw("text/html", http.HandlerFunc(s.ssoDevicePage))},
		{method: "POST", path: "/sso/device", access: public, status: http.StatusSeeOther,
			summary: "Confirm a `porthole login --sso` code (form: user_code, csrf): redirects to the provider to sign in",
			ep:      raw("text/html", http.HandlerFunc(s.ssoDeviceConfirm))},
		{method: "GET", path: "/console/", access: public, summary: "The web console's pages and files (GET / is sent here)",
			ep: raw("text/html", http.HandlerFunc(s.serveConsole))},
		{method: "GET", path: "/api/v1/ca", access: public, summary: "The server's public certificate authorities (host and user CA) and the relay's address",
			ep: handle(s.caKeys)},
		{method: "GET", path: "/api/v1/openapi.json", access: public, summary: "This API's OpenAPI 3.1 document",
			ep: raw("application/json", http.HandlerFunc(s.serveOpenAPI))},
		{method: "GET", path: "/healthz", access: public, quiet: true, summary: "Liveness: answers ok while the process serves",
			ep: raw("text/plain", http.HandlerFunc(serveHealthz))},
		{method: "GET", path: "/readyz", access: public, quiet: true, summary: "Readiness: ok when the database answers, 503 otherwise",
			ep: raw("text/plain", http.HandlerFunc(s.serveReadyz))},
		{method: "GET", path: "/metrics", access: public, quiet: true, summary: "Prometheus metrics",
			ep: raw("text/plain", s.metricsHandler())},

		// Devices, each for itself.
		{method: "GET", path: "/api/v1/device", access: deviceAuth, summary: "The calling device, as the server knows it",
			ep: handle(s.whoAmI)},
		{method: "PUT", path: "/api/v1/device/info", access: deviceAuth,
			summary: "The calling device's agent says what it is (version, capabilities) and what its owner's agent.yaml allows (consent, allow_ports): information, not authority; answers the device as the server now knows it",
			ep:      handle(s.putDeviceInfo)},
		{method: "POST", path: "/api/v1/device/requests", access: deviceAuth, status: http.StatusCreated,
			summary: "Put a support request (the owner asks for help) or an approval request (a session waits for the owner) in the fleet's queue",
			ep:      handle(s.deviceRequest)},
		{method: "POST", path: "/api/v1/device/requests/{id}/close", access: deviceAuth,
			summary: "Close one of the calling device's requests, saying why", ep: handle(s.deviceCloseRequest)},
		{method: "PUT", path: "/api/v1/device/sessions/{id}/files/{name}", access: deviceAuth,
			summary: "Upload a chunk of a file of the calling device's session recording (body: the bytes): meta.json whole, other files appended at offset, the size the server holds; answers that size",
			query:   []param{{name: "offset", doc: "the byte of the file the chunk starts at (not for meta.json)", schema: offsetParam}},
			ep:      s.streamed(uploadBody, s.uploadRecordingFile)},
		{method: "POST", path: "/api/v1/device/sessions/{id}/recording/complete", access: deviceAuth,
			summary: "Say the calling device sent the whole recording of its session, with each file's size on the device", ep: handle(s.completeRecording)},
		{method: "POST", path: "/api/v1/device/owner-link", access: deviceAuth,
			summary: "A new read-only link for the calling device's owner (its audit events and recordings), replacing the last one", ep: handle(s.createOwnerLink)},

		// A device's owner, with an owner link: that device's records, read only.
		{method: "GET", path: "/owner/", access: public, summary: "The owner's page: reads the owner link's token from the URL's fragment",
			ep: raw("text/html", http.HandlerFunc(serveOwnerPage))},
		{method: "GET", path: "/api/v1/owner", access: ownerAuth, summary: "The device an owner link reads, and when the link expires",
			ep: handle(s.getOwner)},
		{method: "GET", path: "/api/v1/owner/audit", access: ownerAuth, summary: "The audit events of the owner's device and its sessions, oldest first; the latest ones unless since or after is given",
			query: []param{{name: "since", doc: "events from this RFC 3339 time on", schema: timeParam}, {name: "after", doc: "events after this sequence number", schema: seqParam},
				{name: "before", doc: "events before this sequence number", schema: seqParam},
				{name: "limit", doc: "at most this many events (default 100, at most 1000)", schema: limitParam}},
			ep: handle(s.ownerAudit)},
		{method: "GET", path: "/api/v1/owner/sessions", access: ownerAuth, summary: "The sessions on the owner's device, newest first, with what was uploaded of each",
			ep: handle(s.ownerSessions)},
		{method: "GET", path: "/api/v1/owner/sessions/{id}/recording", access: ownerAuth, summary: "The uploaded recording of a session on the owner's device: its files",
			ep: handle(s.ownerRecording)},
		{method: "GET", path: "/api/v1/owner/sessions/{id}/recording/files/{name}", access: ownerAuth, summary: "One file of the recording of a session on the owner's device (ranges allowed)",
			ep: s.streamed(recordingFileBody, s.ownerRecordingFile)},

		// Any logged-in user.
		{method: "POST", path: "/api/v1/logout", access: loggedIn, summary: "Revoke the token making this request",
			ep: handle(s.logout)},
		{method: "GET", path: "/api/v1/me", access: loggedIn, summary: "The calling user, with their fleet roles",
			ep: handle(s.me)},
		{method: "POST", path: "/api/v1/reauth", access: loggedIn,
			summary: "Prove a fresh second factor (a TOTP code, or a passkey's answer to POST /api/v1/reauth/passkey-options) for the login making the request, as fleets whose policy sets reauth ask before a session",
			ep:      handle(s.reauth)},
		{method: "POST", path: "/api/v1/reauth/passkey-options", access: loggedIn,
			summary: "Begin a re-authentication with one of the caller's passkeys: navigator.credentials.get's options, the challenge bound to this login for 5 minutes; the answer goes to POST /api/v1/reauth",
			ep:      handle(s.reauthPasskeyOptions)},
		{method: "GET", path: "/api/v1/passkeys", access: loggedIn, summary: "The caller's passkeys",
			ep: handle(s.listPasskeys)},
		{method: "POST", path: "/api/v1/passkeys/register-options", access: loggedIn,
			summary: "Begin adding a passkey (needs a second factor proved within the last 5 minutes, else reauth_required): navigator.credentials.create's options, the challenge bound to this login for 5 minutes",
			ep:      handle(s.passkeyRegisterOptions)},
		{method: "POST", path: "/api/v1/passkeys", access: loggedIn, status: http.StatusCreated,
			summary: "Add a passkey: the authenticator's answer to the options of POST /api/v1/passkeys/register-options, and its name",
			ep:      handle(s.registerPasskey)},
		{method: "DELETE", path: "/api/v1/passkeys/{id}", access: loggedIn,
			summary: "Remove one of the caller's passkeys (needs a second factor proved within the last 5 minutes, else reauth_required)",
			ep:      handle(s.deletePasskey)},
		{method: "GET", path: "/api/v1/tokens", access: loggedIn, summary: "The caller's own API tokens; the one making the request is marked current",
			ep: handle(s.listTokens)},
		{method: "DELETE", path: "/api/v1/tokens/{id}", access: loggedIn, summary: "Revoke one of the caller's own tokens",
			ep: handle(s.deleteToken)},
		{method: "GET", path: "/api/v1/fleets", access: loggedIn, summary: "Fleets the caller has a role in, with that role (administrators: every fleet, role admin)",
			ep: handle(s.listFleets)},
		{method: "GET", path: "/api/v1/devices", access: loggedIn, summary: "Devices of the fleets the caller has a role in",
			query: []param{{name: "fleet", doc: "only this fleet (by name)"}, {name: "name", doc: "only the device with this name"}},
			ep:    handle(s.listDevices)},
		{method: "GET", path: "/api/v1/presence", access: loggedIn,
			summary: "The devices of the caller's fleets as a stream of Server-Sent Events: a snapshot, then each device whose presence or labels change, that appears or that leaves the caller's reach",
			query:   []param{{name: "fleet", doc: "only this fleet (by name)"}},
			ep:      s.streamed(presenceBody, s.streamPresence)},

		{method: "GET", path: "/api/v1/requests", access: loggedIn, summary: "The support queue of the caller's fleets, newest first: requests neither closed nor expired, or all",
			query: []param{{name: "fleet", doc: "only this fleet (by name)"}, {name: "device", doc: "only this device (by name; needs fleet)"},
				{name: "session", doc: "only the approval request of this session"}, {name: "all", doc: "true: closed and expired requests too", schema: boolParam}},
			ep: handle(s.listRequests)},
		{method: "GET", path: "/api/v1/audit", access: loggedIn, summary: "The audit log of the caller's fleets (administrators: all of it), oldest first; the latest events unless since or after is given",
			query: []param{{name: "fleet", doc: "only this fleet (by name)"}, {name: "device", doc: "only this device (by name; needs fleet), deleted ones too"},
				{name: "session", doc: "only this session's events (by ID)"}, {name: "since", doc: "events from this RFC 3339 time on", schema: timeParam},
				{name: "after", doc: "events after this sequence number", schema: seqParam},
				{name: "before", doc: "events before this sequence number (with neither since nor after: the latest ones before it, the page of older events)", schema: seqParam},
				{name: "limit", doc: "at most this many events (default 100, at most 1000)", schema: limitParam}},
			ep: handle(s.listAudit)},
		{method: "GET", path: "/api/v1/sessions", access: loggedIn, summary: "Sessions in the caller's fleets, newest first",
			query: []param{{name: "fleet", doc: "only this fleet (by name)"}, {name: "device", doc: "only this device (by name; needs fleet)"}, {name: "open", doc: "true: only open sessions", schema: boolParam}},
			ep:    handle(s.listSessions)},
		{method: "GET", path: "/api/v1/recordings", access: loggedIn, summary: "Uploaded recordings of sessions in the caller's fleets, without their files, newest session first (the latest 100)",
			query: []param{{name: "fleet", doc: "only this fleet (by name)"}, {name: "device", doc: "only this device (by name; needs fleet)"},
				{name: "session", doc: "only this session's (by ID; may be repeated, up to 100)", repeated: true}},
			ep: handle(s.listRecordings)},

		// Administrators.
		{method: "POST", path: "/api/v1/fleets", access: adminOnly, action: "create fleets", summary: "Create a fleet", status: http.StatusCreated,
			ep: handle(s.createFleet)},
		{method: "GET", path: "/api/v1/audit/verify", access: adminOnly, action: "verify the audit log",
			summary: "Walk the audit log's hash chain: ok with the head to record elsewhere, or the first edited, inserted or deleted event",
			query:   []param{{name: "anchor", doc: "a head recorded earlier (SEQ:HASH) that the chain must still hold"}},
			ep:      handle(s.verifyAudit)},
		{method: "GET", path: "/api/v1/users", access: adminOnly, action: "list users", summary: "Every user (without roles)",
			ep: handle(s.listUsers)},
		{method: "POST", path: "/api/v1/users", access: adminOnly, action: "create users", status: http.StatusCreated,
			summary: "Create a user; returns the generated password (if none was given) and the TOTP secret, once",
			ep:      handle(s.createUser)},
		{method: "DELETE", path: "/api/v1/users/{user}", access: adminOnly, action: "delete users",
			summary: "Delete a user (by ID or email) with their logins and fleet roles; their open sessions are closed (user_removed). Not oneself",
			ep:      handle(s.deleteUser)},
		{method: "POST", path: "/api/v1/users/{user}/reset", access: adminOnly, action: "reset users",
			summary: "Give a user a new password (generated if none is given) and TOTP secret, returned once; their logins and open sessions end",
			ep:      handle(s.resetUser)},

		// Members of a fleet, by role.
		{method: "GET", path: "/api/v1/fleets/{fleet}", access: fleetRole, role: store.RoleAuditor, action: "see this fleet",
			summary: "One fleet, with the caller's role in it", ep: handle(s.getFleet)},
		{method: "GET", path: "/api/v1/fleets/{fleet}/members", access: fleetRole, role: store.RoleAuditor, action: "list members",
			summary: "The fleet's members and their roles", ep: handle(s.listMembers)},
		{method: "PUT", path: "/api/v1/fleets/{fleet}/members/{user}", access: fleetRole, role: store.RoleOwner, action: "change members",
			summary: "Give a user (by ID or email) a role in the fleet, or change it", ep: handle(s.putMember)},
		{method: "DELETE", path: "/api/v1/fleets/{fleet}/members/{user}", access: fleetRole, role: store.RoleOwner, action: "remove members",
			summary: "Take away a user's role in the fleet", ep: handle(s.deleteMember)},
		{method: "GET", path: "/api/v1/fleets/{fleet}/policy", access: fleetRole, role: store.RoleAuditor, action: "see the fleet's policy",
			summary: "The fleet's policy (allowed ports, consent floor, session caps, four-eyes), with who may change it", ep: handle(s.getPolicy)},
		{method: "PUT", path: "/api/v1/fleets/{fleet}/policy", access: fleetRole, role: store.RoleOwner, action: "change the fleet's policy",
			summary: "Replace the fleet's policy; with version, only over that version (409 if it changed since)", ep: handle(s.putPolicy)},
		{method: "GET", path: "/api/v1/fleets/{fleet}/enrollment-tokens", access: fleetRole, role: store.RoleOperator, action: "list enrollment tokens",
			summary: "The fleet's enrollment tokens (without their secrets)", ep: handle(s.listEnrollmentTokens)},
		{method: "POST", path: "/api/v1/fleets/{fleet}/enrollment-tokens", access: fleetRole, role: store.RoleOperator, action: "create enrollment tokens",
			summary: "Create an enrollment token; its secret is in this response only", status: http.StatusCreated,
			ep: handle(s.createEnrollmentToken)},
		{method: "DELETE", path: "/api/v1/fleets/{fleet}/enrollment-tokens/{id}", access: fleetRole, role: store.RoleOperator, action: "delete enrollment tokens",
			summary: "Delete an enrollment token", ep: handle(s.deleteEnrollmentToken)},
		{method: "GET", path: "/api/v1/devices/{id}", access: fleetRole, role: store.RoleAuditor, action: "see this device",
			summary: "One device", ep: handle(s.getDevice)},
		{method: "PUT", path: "/api/v1/devices/{id}/labels", access: fleetRole, role: store.RoleOperator, action: "change labels",
			summary: "Replace a device's labels", ep: handle(s.setLabels)},
		{method: "POST", path: "/api/v1/devices/{id}/sessions", access: fleetRole, role: store.RoleOperator, action: "open sessions",
			summary: "Open a session on an online device: returns it (connecting) with a certificate for the caller's key, bound to it", status: http.StatusCreated,
			ep: handle(s.createSession)},
		{method: "POST", path: "/api/v1/sessions", access: fleetRole, role: store.RoleOperator, action: "open sessions",
			summary: "Open a session on the online device named by device (and fleet, when several of the caller's fleets have one of that name): as POST /api/v1/devices/{id}/sessions, without looking the device up first", status: http.StatusCreated,
			ep: handle(s.createSessionByName)},
		{method: "GET", path: "/api/v1/sessions/{id}", access: fleetRole, role: store.RoleAuditor, action: "see sessions",
			summary: "One session; with wait=STATE, answers once it reaches STATE or closes, or after timeout (default 25s, at most 60s)",
			query:   []param{{name: "wait", doc: "a state to wait for: connecting, active or closed"}, {name: "timeout", doc: "how long to wait, such as 25s"}},
			ep:      handle(s.getSession)},
		{method: "DELETE", path: "/api/v1/sessions/{id}", access: fleetRole, role: store.RoleOperator, action: "close sessions",
			summary: "Close a session: the device is told and the relay cuts it; if the device had ended it first, its reason is recorded (the answer waits a few seconds, the server's close grace, for the device's word)", ep: handle(s.closeSession)},
		{method: "GET", path: "/api/v1/sessions/{id}/recording", access: fleetRole, role: store.RoleAuditor, action: "read recordings",
			summary: "What the device uploaded of a session's recording: its files and their sizes", ep: handle(s.getRecording)},
		{method: "GET", path: "/api/v1/sessions/{id}/recording/files/{name}", access: fleetRole, role: store.RoleAuditor, action: "read recordings",
			summary: "One file of a session's uploaded recording (ranges allowed)", ep: s.streamed(recordingFileBody, s.getRecordingFile)},
		{method: "GET", path: "/api/v1/requests/{id}", access: fleetRole, role: store.RoleAuditor, action: "see support requests",
			summary: "One support request, with the sessions it led to", ep: handle(s.getRequest)},
		{method: "POST", path: "/api/v1/requests/{id}/claim", access: fleetRole, role: store.RoleOperator, action: "claim support requests",
			summary: "Take a support request, so other engineers know it is being handled", ep: handle(s.claimRequest)},
		{method: "POST", path: "/api/v1/requests/{id}/close", access: fleetRole, role: store.RoleOperator, action: "close support requests",
			summary: "Close a support request (a four-eyes request that waits: refuse its session)", ep: handle(s.closeRequest)},
		{method: "POST", path: "/api/v1/requests/{id}/approve", access: fleetRole, role: store.RoleOperator, action: "approve sessions",
			summary: "Approve, as a second engineer of the fleet, the session a four-eyes request holds (never your own): its device is asked at once", ep: handle(s.approveRequest)},
		{method: "POST", path: "/api/v1/requests/{id}/deny", access: fleetRole, role: store.RoleOperator, action: "deny sessions",
			summary: "Refuse the session a four-eyes request holds; it closes as four_eyes_denied", ep: handle(s.denyRequest)},
		{method: "DELETE", path: "/api/v1/devices/{id}", access: fleetRole, role: store.RoleOwner, action: "delete devices",
			summary: "Delete a device; it must enroll again to come back", ep: handle(s.deleteDevice)},
	}
}

// newMux registers every route, and a fallback that answers unknown paths
// and wrong methods in the API's JSON error form.
func (s *Server) newMux() *http.ServeMux {
	mux := http.NewServeMux()
	for i := range s.routes {
		rt := &s.routes[i]
		mux.Handle(rt.pattern(), s.serveRoute(rt))
	}
	mux.Handle(fallbackPattern, s.fallback(mux))
	return mux
}

// serveRoute authenticates and authorizes a call to rt as far as the route
// table says, then runs its endpoint. Fleet roles are checked by the
// handler, which knows the fleet.
func (s *Server) serveRoute(rt *route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := infoFrom(r.Context())
		ri.route, ri.quiet = rt.pattern(), rt.quiet
		if rt.ep.raw != nil {
			rt.ep.raw.ServeHTTP(w, r)
			return
		}
		c := &call{s: s, w: w, r: r, ctx: r.Context(), route: rt}
		out, err := c.run()
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if rt.ep.resp == nil {
			w.WriteHeader(rt.successStatus())
			return
		}
		writeJSON(w, rt.successStatus(), out)
	})
}

func (c *call) run() (any, error) {
	switch c.route.access {
	case public:
	case deviceAuth:
		if err := c.authenticateDevice(); err != nil {
			return nil, err
		}
	case ownerAuth:
		if err := c.authenticateOwner(); err != nil {
			return nil, err
		}
	default:
		if err := c.authenticate(); err != nil {
			return nil, err
		}
	}
	if c.route.access == adminOnly && !c.user.Admin {
		c.auditDenied(nil, "")
		return nil, forbidden("only an administrator can %s", c.route.action)
	}
	if err := c.checkQuery(); err != nil {
		return nil, err
	}
	return c.route.ep.serve(c)
}

// checkQuery refuses query parameters the route does not document: a
// misspelt filter must not silently match everything.
func (c *call) checkQuery() error {
	var known []string
	for _, p := range c.route.query {
		known = append(known, p.name)
	}
	for k := range c.r.URL.Query() {
		if slices.Contains(known, k) {
			continue
		}
		if len(known) == 0 {
			return badRequest("%s takes no query parameters; remove %q", c.route.path, k)
		}
		return badRequest("unknown query parameter %q; %s takes %s", k, c.route.path, strings.Join(known, ", "))
	}
	return nil
}

// fallbackPattern matches what no route does.
const fallbackPattern = "/"

// fallback answers requests no route matched: 405 with Allow when the path
// exists under other methods, else 404.
func (s *Server) fallback(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.redirectRoot(w, r) {
			return
		}
		var allow []string
		for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, p := mux.Handler(probe); p != fallbackPattern {
				allow = append(allow, m)
			}
		}
		if len(allow) == 0 {
			s.writeError(w, r, notFound("%s %s", noRouteMessage, r.URL.Path))
			return
		}
		err := errorf(http.StatusMethodNotAllowed, apitype.CodeMethodNotAllow,
			"%s %s does not take %s; it takes %s", noRoutePath, r.URL.Path, r.Method, strings.Join(allow, ", "))
		err.header = http.Header{"Allow": {strings.Join(allow, ", ")}}
		s.writeError(w, r, err)
	})
}

// The fallback's messages, which tests tell apart from handlers' own 404s.
const (
	noRouteMessage = "this server has no API path"
	noRoutePath    = "the API path"
)
