// Package apitype holds the JSON shapes of Porthole's HTTP API (/api/v1),
// shared by the server (package api), the Go client (package apiclient), the
// engineer CLI and the agent. It imports nothing of the server's, so the
// agent can use it without linking the server.
//
// Conventions: field names are snake_case; times are RFC 3339 UTC; durations
// are whole seconds in fields named *_s; errors are always
// {"error":{"code":"...","message":"..."}} with a 4xx or 5xx status.
package apitype

import "time"

// DeviceAuthScheme is the Authorization scheme of a device's own calls:
// "Device <fleet>/<device> <credential>", the credential signed for that
// one request (control.SignDeviceRequest). A refusal for the device's
// clock carries WWW-Authenticate: Device error="clock_skew".
const DeviceAuthScheme = "Device"

// Error codes used in ErrorBody.Code.
const (
	CodeBadRequest      = "bad_request"        // malformed JSON, unknown field, invalid value
	CodeTooLarge        = "too_large"          // body over the limit
	CodeUnauthenticated = "unauthenticated"    // no token, bad token, bad credentials
	CodeForbidden       = "forbidden"          // authenticated but the role does not allow it
	CodeNotFound        = "not_found"          // no such resource (or not visible to the caller)
	CodeConflict        = "conflict"           // name already taken
	CodeRateLimited     = "rate_limited"       // too many attempts
	CodeTokenExpired    = "token_expired"      // enrollment token expired
	CodeTokenUsedUp     = "token_used_up"      // enrollment token has no uses left
	CodeInternal        = "internal"           // server bug or outage; message has an ID for the log
	CodeNotReady        = "not_ready"          // /readyz: a dependency is down
	CodeMethodNotAllow  = "method_not_allowed" // wrong HTTP method for the route
	CodeDeviceOffline   = "device_offline"     // the device is not connected to the control channel
	CodeUnavailable     = "unavailable"        // a part of the server (the control channel) is down; try again
	CodeDiskFull        = "disk_full"          // the server's disk is full: nothing was changed; its operator must make room
)

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong in words a person can act on.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// LoginRequest is POST /api/v1/login.
type LoginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	TOTP     string `json:"totp"`
}

// LoginResponse carries a new bearer token; the secret is shown only here.
type LoginResponse struct {
	Token     string    `json:"token"`
	TokenID   string    `json:"token_id"`
	ExpiresAt time.Time `json:"expires_at"`
	User      User      `json:"user"`
}

// User is a person who can log in. Roles lists their fleet roles.
type User struct {
	ID        string      `json:"id"`
	Email     string      `json:"email"`
	Admin     bool        `json:"admin"`
	SSO       bool        `json:"sso,omitempty"` // signs in with single sign-on; roles and admin come from the provider's groups
	Roles     []FleetRole `json:"roles,omitempty"`
	CreatedAt time.Time   `json:"created_at"`
}

// FleetRole is one role of one user in one fleet.
type FleetRole struct {
	Fleet string `json:"fleet"` // fleet name
	Role  string `json:"role"`  // owner, operator or auditor
}

// CreateUserRequest is POST /api/v1/users (admins only). Password may be
// empty, in which case the server generates one and returns it once.
type CreateUserRequest struct {
	Email    string `json:"email"`
	Password string `json:"password,omitempty"`
	Admin    bool   `json:"admin,omitempty"`
}

// CreateUserResponse returns the new user's initial secrets, once.
type CreateUserResponse struct {
	User     User   `json:"user"`
	Password string `json:"password,omitempty"` // only when generated
	TOTPURI  string `json:"totp_uri"`           // otpauth://totp/...
}

// ResetUserRequest is POST /api/v1/users/{user}/reset: the user's new
// password, or empty to have one generated. A new TOTP secret is always
// made. The answer is a CreateUserResponse, its secrets shown once.
type ResetUserRequest struct {
	Password string `json:"password,omitempty"`
}

// Member is PUT /api/v1/fleets/{fleet}/members/{user} body and list item.
type Member struct {
	UserID string `json:"user_id,omitempty"`
	Email  string `json:"email,omitempty"`
	Role   string `json:"role"`
}

// TokenInfo describes an API token without its secret.
type TokenInfo struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	Current    bool      `json:"current,omitempty"` // the token making this request
}

// Fleet is a group of devices.
type Fleet struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	Role      string    `json:"role,omitempty"` // the caller's role in it; "admin" for admins
}

// CreateFleetRequest is POST /api/v1/fleets (admins only).
type CreateFleetRequest struct {
	Name string `json:"name"`
}

// CreateEnrollmentTokenRequest is POST /api/v1/fleets/{fleet}/enrollment-tokens.
// Zero Uses means 1; zero TTLSeconds means 24 hours.
type CreateEnrollmentTokenRequest struct {
	Uses       int   `json:"uses,omitempty"`
	TTLSeconds int64 `json:"ttl_s,omitempty"`
}

// EnrollmentToken describes an enrollment token; Token (the secret) is set
// only in the response that created it.
type EnrollmentToken struct {
	ID        string    `json:"id"`
	Fleet     string    `json:"fleet"`
	Token     string    `json:"token,omitempty"`
	UsesLeft  int       `json:"uses_left"`
	MaxUses   int       `json:"max_uses"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// EnrollRequest is POST /api/v1/enroll, sent by the agent. The enrollment
// token authenticates it; PublicKey is the device's own key in
// authorized_keys format (ed25519).
type EnrollRequest struct {
	Token     string `json:"token"`
	Name      string `json:"name"`
	PublicKey string `json:"public_key"`
}

// EnrollResponse is everything a device needs to trust the server and be
// trusted by it.
type EnrollResponse struct {
	Device         Device `json:"device"`
	HostCert       string `json:"host_cert"`       // OpenSSH host certificate for the device key
	ControlKey     string `json:"control_key"`     // authorized_keys format ed25519 key that signs commands
	UserCA         string `json:"user_ca"`         // authorized_keys format: signs engineers' session certificates
	HostCA         string `json:"host_ca"`         // authorized_keys format: signs device and relay host keys
	TLSFingerprint string `json:"tls_fingerprint"` // "sha256:<hex>" of the server certificate's DER
	BrokerURL      string `json:"broker_url"`      // mqtts://host:port the agent idles on
	RelayAddr      string `json:"relay_addr"`      // host:port of the SSH relay
}

// Device is an enrolled device as engineers see it.
type Device struct {
	ID         string            `json:"id"`
	Fleet      string            `json:"fleet"`
	Name       string            `json:"name"`
	Labels     map[string]string `json:"labels,omitempty"`
	PublicKey  string            `json:"public_key,omitempty"`
	EnrolledAt time.Time         `json:"enrolled_at"`
	LastSeen   time.Time         `json:"last_seen,omitzero"`
	Online     bool              `json:"online"`
	// Agent is what the device's agent last reported of itself and its
	// owner's config; absent: it never did (an agent that predates the
	// report).
	Agent *DeviceAgent `json:"agent,omitempty"`
}

// DeviceAgent is what a device's agent reported as it started: the
// device's own word, for engineers' information. The device enforces its
// owner's consent and allow_ports itself, whatever this says.
type DeviceAgent struct {
	Version string `json:"version"`
	// Capabilities are what the agent understands of the server's
	// commands beyond their first fields (control.Capabilities).
	Capabilities []string  `json:"capabilities"`
	Consent      string    `json:"consent"`     // the owner's consent mode: manual, approve or auto
	AllowPorts   []int     `json:"allow_ports"` // the owner's allow_ports, sorted
	ReportedAt   time.Time `json:"reported_at"`
}

// DeviceInfo is PUT /api/v1/device/info: the calling device's agent says
// what it is and what its owner's agent.yaml allows. It replaces the last
// report; sending the same one again changes nothing.
type DeviceInfo struct {
	Version      string   `json:"version"`      // 1 to 64 printable characters, no spaces
	Capabilities []string `json:"capabilities"` // at most 32 names, each [a-z0-9-], once
	Consent      string   `json:"consent"`      // manual, approve or auto
	AllowPorts   []int    `json:"allow_ports"`  // at most 1024 ports 1-65535, each once
}

// SetLabelsRequest is PUT /api/v1/devices/{id}/labels: it replaces all labels.
type SetLabelsRequest struct {
	Labels map[string]string `json:"labels"`
}

// Session states, as in Session.State.
const (
	SessionRequested      = "requested"
	SessionWaitingConsent = "waiting_consent"
	SessionConnecting     = "connecting"
	SessionActive         = "active"
	SessionClosed         = "closed"
)

// Session is an engineer's session on a device.
type Session struct {
	ID       string `json:"id"`
	Fleet    string `json:"fleet"`
	Device   string `json:"device"`
	DeviceID string `json:"device_id"`
	User     string `json:"user"` // the engineer's email
	// State is requested, waiting_consent, connecting, active or closed.
	State string `json:"state"`
	// CloseReason says why a closed session ended: engineer_closed,
	// device_unreachable, idle_timeout, max_duration, or the device's own
	// (control.CloseReason names them all; a newer device's may be none).
	CloseReason  string    `json:"close_reason,omitempty"`
	Reason       string    `json:"reason,omitempty"`
	Ports        []int     `json:"ports,omitempty"`
	IdleTimeoutS int       `json:"idle_timeout_s"`
	MaxDurationS int       `json:"max_duration_s"`
	CreatedAt    time.Time `json:"created_at"`
	ActiveAt     time.Time `json:"active_at,omitzero"`
	ClosedAt     time.Time `json:"closed_at,omitzero"`
	LastActivity time.Time `json:"last_activity,omitzero"`
	// FourEyes: the fleet's policy needed a second engineer to approve
	// the session; it stays requested, its device not asked, until one
	// does. ApprovedBy is who did.
	FourEyes   bool   `json:"four_eyes,omitempty"`
	ApprovedBy string `json:"approved_by,omitempty"`
}

// CreateSessionRequest is POST /api/v1/devices/{id}/sessions.
type CreateSessionRequest struct {
	// PublicKey is the engineer's SSH public key (authorized_keys format)
	// that the session certificate certifies. Its private half never
	// leaves the engineer's machine.
	PublicKey string `json:"public_key"`
	// Ports are device ports the engineer wants to forward to; the device
	// grants only those in its own allow-list.
	Ports []int `json:"ports,omitempty"`
	// Reason is shown to the device's owner and kept with the session.
	Reason string `json:"reason,omitempty"`
	// IdleTimeoutS and MaxDurationS shorten the server's limits; zero
	// means the server's.
	IdleTimeoutS int `json:"idle_timeout_s,omitempty"`
	MaxDurationS int `json:"max_duration_s,omitempty"`
	// Device and Fleet name the device for POST /api/v1/sessions, which
	// finds it in the caller's fleets (Fleet: in that one only), so that
	// a client need not look it up first; POST
	// /api/v1/devices/{id}/sessions names it in its path and refuses them.
	Device string `json:"device,omitempty"`
	Fleet  string `json:"fleet,omitempty"`
}

// CreateSessionResponse is the answer to CreateSessionRequest: the session
// (connecting: the device has been asked to dial the relay) and what the
// engineer's SSH client needs to reach it.
type CreateSessionResponse struct {
	Session Session `json:"session"`
	// Certificate is the engineer's key certified by the user CA for this
	// session and device only (authorized_keys format).
	Certificate string `json:"certificate"`
	// RelayAddr is the host:port of the SSH relay (the relay's first
	// protocol) the session was placed on.
	RelayAddr string `json:"relay_addr"`
	// Relay2Addr is the host:port of the TLS port where that relay
	// serves its second protocol: the engineer dials it, not the API's
	// address, for the session's device dials it too. Empty from a
	// server that places no sessions: the API's own address then.
	Relay2Addr string `json:"relay2_addr,omitempty"`
	// HostCA is the host CA's public key (authorized_keys format): it signs
	// the relay's and every device's host key.
	HostCA string `json:"host_ca"`
	// HostPrincipals are the names the device's host certificate carries.
	HostPrincipals []string `json:"host_principals"`
	// FourEyesRequest, in a fleet whose policy needs a second engineer to
	// approve each session, is the support request they approve (POST
	// /api/v1/requests/{id}/approve); the session stays requested, its
	// device not asked, until then.
	FourEyesRequest string `json:"four_eyes_request,omitempty"`
}

// CAKeys is GET /api/v1/ca: the server's public certificate authorities,
// for clients that check hosts (the host CA) or certificates (the user CA)
// themselves, such as a stock OpenSSH set up by `porthole ssh-config`.
type CAKeys struct {
	HostCA    string `json:"host_ca"` // authorized_keys format
	UserCA    string `json:"user_ca"` // authorized_keys format
	RelayAddr string `json:"relay_addr"`
}
