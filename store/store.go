// Package store defines Porthole's persistent state: one interface that the
// server's roles use, implemented on SQLite (store/sqlitestore) and
// PostgreSQL (store/pgstore) over one shared SQL layer (store/sqlstore).
//
// Every method that changes more than one row does so in one transaction.
// Times are UTC; a zero time.Time means "never" or "none".
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors callers branch on with errors.Is.
var (
	// ErrNotFound: no row matched.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a unique name or key is already taken.
	ErrConflict = errors.New("store: already exists")
	// ErrTokenUsedUp: an enrollment token has no uses left.
	ErrTokenUsedUp = errors.New("store: enrollment token used up")
	// ErrTokenExpired: an enrollment token is past its expiry.
	ErrTokenExpired = errors.New("store: enrollment token expired")
	// ErrDiskFull: the database could not write because its disk is full.
	// Nothing of the failed write was kept (the database rolled it back);
	// what was written before is whole.
	ErrDiskFull = errors.New("store: the database's disk is full")
	// ErrNotAdmin: the administrator a change was made on behalf of is no
	// longer one (deleted, or made an engineer, meanwhile).
	ErrNotAdmin = errors.New("store: the acting user is no longer an administrator")
	// ErrMayNotApprove: the engineer approving a session is no longer one
	// who may (deleted, or without an operator or owner role in the
	// session's fleet, meanwhile).
	ErrMayNotApprove = errors.New("store: the approver may no longer approve sessions of this fleet")
)

// Role is a user's role in one fleet.
type Role string

// Fleet roles, from most to least powerful.
const (
	RoleOwner    Role = "owner"    // manages members, devices and everything an operator can do
	RoleOperator Role = "operator" // enrolls devices, opens sessions
	RoleAuditor  Role = "auditor"  // reads devices, sessions and the audit log
)

// Valid reports whether r is one of the defined roles.
func (r Role) Valid() bool {
	return r == RoleOwner || r == RoleOperator || r == RoleAuditor
}

// Fleet is a group of devices and the people who may reach them.
type Fleet struct {
	ID        string
	Name      string // [a-z0-9-]{1,63}, unique
	CreatedAt time.Time
}

// User is an engineer or administrator who logs in with a password and TOTP.
type User struct {
	ID           string
	Email        string // unique, lower case
	PasswordHash string // PHC-encoded argon2id
	TOTPSecret   string // base32
	// TOTPLastStep is the last TOTP time step accepted, so the same code
	// can never be used twice.
	TOTPLastStep int64
	Admin        bool // server-wide administrator: creates fleets and users
	CreatedAt    time.Time
	// SSOSubject names the single sign-on identity of a user made by an
	// SSO login: the provider's issuer URL, a space, and its subject.
	// Such a user has no password or TOTP secret, and their fleet roles
	// and Admin come only from the provider's groups (SyncSSOUser).
	// Empty: a local user.
	SSOSubject string
}

// Membership gives a user a role in a fleet.
type Membership struct {
	FleetID   string
	FleetName string
	UserID    string
	Email     string
	Role      Role
}

// Token is a bearer token for the API. Only the hash of its secret is kept.
type Token struct {
	ID         string
	UserID     string
	Hash       string // hex SHA-256 of the secret
	Name       string // what created it: "login from 127.0.0.1", "dev"
	CreatedAt  time.Time
	ExpiresAt  time.Time
	LastUsedAt time.Time
	// FactorAt is when the login holding this token last proved a second
	// factor (a TOTP code): at login and at each re-authentication. Zero:
	// never (tokens from before it was recorded). A fleet policy's Reauth
	// rule is checked against it.
	FactorAt time.Time
	// SSORefresh is the provider's refresh token of an SSO login, sealed
	// (encrypted and authenticated) by the API with a key the database
	// does not hold. Empty: not an SSO login, or one the provider gave no
	// refresh token (it then expires with the provider's ID token).
	SSORefresh string
	// SSORefreshAt is when the login's refresh token is next due to be
	// used, to learn whether the provider still knows the user.
	SSORefreshAt time.Time
	// PasskeyID is the passkey the login was signed in with, or empty:
	// removing that passkey ends the login (DeletePasskey).
	PasskeyID string
}

// DeviceGrant is one `porthole login --sso` waiting for its engineer to
// sign in in a browser (RFC 8628's device authorization grant, served by
// portholed to its own CLI). Only the hashes of its two codes are kept.
type DeviceGrant struct {
	ID         string
	DeviceHash string // hex SHA-256 of the device code the CLI polls with
	UserHash   string // hex SHA-256 of the user code, as normalized
	Requester  string // who asked: the CLI's address and host name, shown on the verification page
	CreatedAt  time.Time
	ExpiresAt  time.Time
	PolledAt   time.Time  // the CLI's last poll; zero: none yet
	State      GrantState //
	UserID     string     // who signed in, once approved
	// Approved login: the provider's sealed refresh token, when it is due,
	// and when the Porthole login made of it must expire at the latest.
	SSORefresh   string
	SSORefreshAt time.Time
	LoginExpires time.Time
}

// GrantState is where a DeviceGrant stands.
type GrantState string

// Device grant states: pending until someone signs in in the browser, then
// approved or denied; used once the CLI collected its login.
const (
	GrantPending  GrantState = "pending"
	GrantApproved GrantState = "approved"
	GrantDenied   GrantState = "denied"
	GrantUsed     GrantState = "used"
)

// EnrollmentToken lets devices join one fleet. Only its hash is kept.
type EnrollmentToken struct {
	ID        string
	FleetID   string
	Hash      string // hex SHA-256 of the secret
	UsesLeft  int    // decremented at each enrollment; 0 means used up
	MaxUses   int
	CreatedBy string // user ID
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Device is an enrolled device.
type Device struct {
	ID         string
	FleetID    string
	FleetName  string // filled on reads
	Name       string // [a-z0-9-]{1,63}, unique within the fleet
	PublicKey  string // authorized_keys format, the device's own ed25519 key
	HostCert   string // authorized_keys format OpenSSH host certificate
	Labels     map[string]string
	EnrolledAt time.Time
	LastSeen   time.Time // zero: never connected
	Online     bool
	// Agent is what the device's agent last reported of itself and its
	// owner's config; its zero value: never (an agent that predates the
	// report).
	Agent AgentInfo
}

// AgentInfo is what a device's agent reports about itself and its owner's
// agent.yaml as it starts (SetDeviceAgent): the device's word, signed
// with its key. It is for engineers to read, and lets the server refuse
// up front a session whose command the agent could not take; it grants
// nothing, since the device enforces its owner's config itself.
type AgentInfo struct {
	Version string // the agent's version, as porthole-agent version says it
	// Capabilities are what it understands of the open command
	// (control.Capabilities).
	Capabilities []string
	Consent      string // the owner's consent mode: manual, approve or auto
	AllowPorts   []int  // the owner's allow_ports
	ReportedAt   time.Time
}

// Reported reports whether the agent ever reported.
func (a AgentInfo) Reported() bool { return !a.ReportedAt.IsZero() }

// DeviceFilter narrows ListDevices. Empty fields match everything.
type DeviceFilter struct {
	FleetIDs  []string // nil: all fleets; empty non-nil: none
	FleetName string
	Name      string
}

// DevicePresence is a change in a device's connection: it came online or
// went offline at At.
type DevicePresence struct {
	DeviceID string
	Online   bool
	At       time.Time
}

// SessionState is where a session is in its life:
// requested → connecting → active → closed (waiting_consent comes with
// the owner's consent modes). Closed is final.
type SessionState string

// The states of a session.
const (
	SessionRequested      SessionState = "requested"
	SessionWaitingConsent SessionState = "waiting_consent"
	SessionConnecting     SessionState = "connecting"
	SessionActive         SessionState = "active"
	SessionClosed         SessionState = "closed"
)

// OpenSessionStates are every state but closed.
var OpenSessionStates = []SessionState{SessionRequested, SessionWaitingConsent, SessionConnecting, SessionActive}

// Session is an engineer's session on a device.
type Session struct {
	ID         string
	FleetID    string
	FleetName  string // filled on reads
	DeviceID   string
	DeviceName string // filled on reads
	// UserID is the engineer who asked for it (empty once the user is
	// deleted); UserEmail stays for the record.
	UserID    string
	UserEmail string
	State     SessionState
	// CloseReason says why a closed session ended, e.g. "engineer_closed",
	// "device_unreachable", "idle_timeout", "max_duration", or a reason the
	// device gave.
	CloseReason string
	// PublicKey is the engineer's key the session certificate certifies
	// (authorized_keys format).
	PublicKey string
	Reason    string // why the engineer asked, as they said it
	Ports     []int  // device ports asked for
	// IdleTimeout and MaxDuration are the limits the server enforces.
	IdleTimeout time.Duration
	MaxDuration time.Duration
	CreatedAt   time.Time
	ActiveAt    time.Time // zero: never active
	ClosedAt    time.Time // zero: open
	// LastActivity is when the engineer last sent something (coalesced);
	// zero: never.
	LastActivity time.Time
	// Relay is where the session was placed: the relay's ID and the
	// addresses its device and engineer dial (empty for a session made
	// before relays registered themselves).
	RelayID, RelayAddr, RelaySSHAddr string
	// FourEyes: the fleet's policy needed a second engineer to approve
	// the session; it stays requested, its device not asked, until one
	// does (ApproveSession). ApprovedBy (a user ID, empty once the user
	// is deleted), ApprovedEmail and ApprovedAt say who and when.
	FourEyes      bool
	ApprovedBy    string
	ApprovedEmail string
	ApprovedAt    time.Time
	// Policy is what of the fleet's policy the open command carried to
	// the device (control.Policy as JSON); empty: nothing.
	Policy string
	// CloseDue is when the device of a closed session is due the signed
	// close command, which only a node holding the control key sends
	// (ClaimClose, CloseSent); zero: it need not be told, or was.
	CloseDue time.Time
}

// Asked is when the session's device was asked to open it, from which its
// limits count: its creation, or for a four-eyes session its approval
// (its creation while it still waits).
func (s *Session) Asked() time.Time {
	if s.FourEyes && !s.ApprovedAt.IsZero() {
		return s.ApprovedAt
	}
	return s.CreatedAt
}

// WaitsForApproval reports whether the session waits for a second
// engineer to approve it (four-eyes).
func (s *Session) WaitsForApproval() bool {
	return s.FourEyes && s.ApprovedAt.IsZero() && s.State == SessionRequested
}

// Open reports whether the session is not closed.
func (s *Session) Open() bool { return s.State != SessionClosed }

// SessionFilter selects sessions; zero fields match everything.
type SessionFilter struct {
	FleetIDs []string // nil: all fleets; empty non-nil: none
	DeviceID string
	UserID   string
	// UserEmail selects the sessions of the user with this email, also
	// once that user is deleted (their sessions keep the email).
	UserEmail string
	// ApprovedEmail selects the four-eyes sessions the user with this
	// email approved, also once that user is deleted.
	ApprovedEmail string
	OpenOnly      bool
	// CloseDueBy, when not zero, selects the closed sessions whose
	// device is due the close command by then (Session.CloseDue).
	CloseDueBy time.Time
	// Limit caps how many are returned, newest first. Zero: 100.
	Limit int
}

// Store is Porthole's persistent state. Implementations are safe for
// concurrent use.
type Store interface {
	// Fleets.
	CreateFleet(ctx context.Context, f *Fleet) error
	GetFleet(ctx context.Context, id string) (*Fleet, error)
	GetFleetByName(ctx context.Context, name string) (*Fleet, error)
	ListFleets(ctx context.Context) ([]*Fleet, error)
	// DeleteFleet deletes a fleet with its devices, enrollment tokens and
	// roles.
	DeleteFleet(ctx context.Context, id string) error

	// Users and fleet roles.
	CreateUser(ctx context.Context, u *User) error
	GetUser(ctx context.Context, id string) (*User, error)
	GetUserByEmail(ctx context.Context, email string) (*User, error)
	ListUsers(ctx context.Context) ([]*User, error)
	CountUsers(ctx context.Context) (int, error)
	// DeleteUser deletes a user with their API tokens, passkeys and roles;
	// enrollment tokens they created stay, with an empty CreatedBy. by, when not
	// empty, is the administrator deleting them, who must still be one as
	// the row goes (ErrNotAdmin otherwise): of two administrators deleting
	// each other at the same moment, one succeeds and the other is
	// refused, so the last administrator is never deleted.
	DeleteUser(ctx context.Context, id, by string) error
	// ResetUserSecrets gives a user a new password hash and TOTP secret
	// (their TOTP step starts again) and deletes every API token, console
	// session and passkey they hold, in one transaction with the audit
	// events ctx carries. No such user: ErrNotFound.
	ResetUserSecrets(ctx context.Context, id, passwordHash, totpSecret string) error
	// AdvanceTOTPStep records step as used if it is greater than the last
	// used step, atomically. It reports false when the step was already
	// used (or an earlier one), which is a replay.
	AdvanceTOTPStep(ctx context.Context, userID string, step int64) (bool, error)
	SetRole(ctx context.Context, fleetID, userID string, role Role) error
	RemoveRole(ctx context.Context, fleetID, userID string) error
	// Memberships lists a user's roles in every fleet.
	Memberships(ctx context.Context, userID string) ([]*Membership, error)
	// FleetMembers lists everyone with a role in a fleet.
	FleetMembers(ctx context.Context, fleetID string) ([]*Membership, error)

	// API tokens.
	CreateToken(ctx context.Context, t *Token) error
	// TokenByHash returns an unexpired token; expired ones are ErrNotFound.
	TokenByHash(ctx context.Context, hash string, now time.Time) (*Token, error)
	ListTokens(ctx context.Context, userID string) ([]*Token, error)
	DeleteToken(ctx context.Context, userID, id string) error
	TouchToken(ctx context.Context, id string, at time.Time) error
	// SetTokenFactor records that the user's token proved a second factor
	// at the given time (FactorAt), with the audit events ctx carries.
	// Another user's token is ErrNotFound, as a missing one is.
	SetTokenFactor(ctx context.Context, userID, id string, at time.Time) error

	// Single sign-on.
	// SyncSSOUser creates or updates the user of the SSO identity
	// u.SSOSubject (email and Admin as u says) and replaces their fleet
	// roles with roles (fleet name → role; names of fleets that do not
	// exist are skipped), in one transaction with the audit events ctx
	// carries; it fills u and returns the roles the user now holds. An
	// email held by a local user (or another identity) is ErrConflict.
	SyncSSOUser(ctx context.Context, u *User, roles map[string]Role) ([]*Membership, error)
	// DueSSORefreshes lists up to limit unexpired tokens with a refresh
	// token due at now, the longest due first.
	DueSSORefreshes(ctx context.Context, now time.Time, limit int) ([]*Token, error)
	// ClaimSSORefresh moves a token's SSORefreshAt from due to until if
	// it still is due: of several nodes claiming the same token, exactly
	// one sees true and refreshes it.
	ClaimSSORefresh(ctx context.Context, id string, due, until time.Time) (bool, error)
	// SetSSORefresh stores a token's new sealed refresh token and when it
	// is next due, with the audit events ctx carries.
	SetSSORefresh(ctx context.Context, id, sealed string, next time.Time) error

	// Device grants of `porthole login --sso`.
	CreateDeviceGrant(ctx context.Context, g *DeviceGrant) error
	// DeviceGrantByUserCode returns the pending, unexpired grant of a user
	// code's hash; any other is ErrNotFound.
	DeviceGrantByUserCode(ctx context.Context, hash string, now time.Time) (*DeviceGrant, error)
	// DeviceGrantByDeviceCode returns the grant of a device code's hash,
	// whatever its state or expiry.
	DeviceGrantByDeviceCode(ctx context.Context, hash string) (*DeviceGrant, error)
	// PollDeviceGrant records a poll at now if the last one recorded is
	// still last: false when another poll came in between.
	PollDeviceGrant(ctx context.Context, id string, last, now time.Time) (bool, error)
	// DecideDeviceGrant moves a pending, unexpired grant to approved (g's
	// UserID, SSORefresh, SSORefreshAt and LoginExpires) or denied, with
	// the audit events ctx carries: false when it was not pending.
	DecideDeviceGrant(ctx context.Context, g *DeviceGrant, now time.Time) (bool, error)
	// UseDeviceGrant moves an approved grant to used: true for the one
	// caller that did.
	UseDeviceGrant(ctx context.Context, id string) (bool, error)
	// DeleteDeviceGrants deletes the grants that expired before now.
	DeleteDeviceGrants(ctx context.Context, before time.Time) error

	// Enrollment.
	CreateEnrollmentToken(ctx context.Context, t *EnrollmentToken) error
	ListEnrollmentTokens(ctx context.Context, fleetID string) ([]*EnrollmentToken, error)
	DeleteEnrollmentToken(ctx context.Context, fleetID, id string) error
	// EnrollDevice consumes one use of the token with the given hash and
	// creates the device in the token's fleet, in one transaction. The
	// device's FleetID is set from the token. mkCert is called inside the
	// transaction with the fleet so the host certificate can name it; if it
	// fails nothing changes. Errors: ErrNotFound (no such token),
	// ErrTokenExpired, ErrTokenUsedUp, ErrConflict (name taken in fleet).
	EnrollDevice(ctx context.Context, tokenHash string, now time.Time, d *Device, mkCert func(*Fleet) (string, error)) error

	// Devices.
	GetDevice(ctx context.Context, id string) (*Device, error)
	GetDeviceByName(ctx context.Context, fleetID, name string) (*Device, error)
	ListDevices(ctx context.Context, f DeviceFilter) ([]*Device, error)
	SetDeviceLabels(ctx context.Context, id string, labels map[string]string) error
	// SetDeviceAgent replaces what the device's agent reported
	// (Device.Agent), with the audit events ctx carries.
	SetDeviceAgent(ctx context.Context, id string, info AgentInfo) error
	DeleteDevice(ctx context.Context, id string) error

	// Presence: whether devices are connected to the control channel, and
	// when they were last seen. Package presence writes it without a write
	// per keep-alive.
	//
	// SetDevicePresence records connection changes in one transaction: each
	// device's Online is set, and its LastSeen moves forward to At, never
	// back. A device named twice takes its last change. Devices that no
	// longer exist are skipped: one deleted while connected has nothing
	// left to record.
	SetDevicePresence(ctx context.Context, changes ...DevicePresence) error
	// TouchDevicesSeen moves the LastSeen of the given devices forward to
	// at, in one transaction, skipping missing ones: how the last-seen time
	// of connected devices is kept fresh.
	TouchDevicesSeen(ctx context.Context, ids []string, at time.Time) error
	// MarkAllOffline marks every online device offline, keeping its
	// LastSeen (the last moment it was known to be there), and reports how
	// many were online. A server with the embedded broker calls it as it
	// starts, when no device can be connected yet.
	MarkAllOffline(ctx context.Context) (int, error)

	// Sessions.
	//
	// CreateSession stores a new session, setting its ID (and CreatedAt
	// when zero). Its fleet is the device's.
	CreateSession(ctx context.Context, s *Session) error
	GetSession(ctx context.Context, id string) (*Session, error)
	// ListSessions lists sessions newest first.
	ListSessions(ctx context.Context, f SessionFilter) ([]*Session, error)
	// TransitionSession moves a session to state to, atomically, if it is
	// in one of the states from, and returns it as it is afterwards with
	// changed true. Moving to active sets ActiveAt to at; to closed sets
	// ClosedAt to at and CloseReason to reason. A session in none of the
	// from states is returned unchanged with changed false, so that two
	// server nodes (or a timeout and the device) closing one session
	// record one reason.
	TransitionSession(ctx context.Context, id string, from []SessionState, to SessionState, reason string, at time.Time) (s *Session, changed bool, err error)
	// CloseSession closes an open session for reason at at, as
	// TransitionSession does from OpenSessionStates, and, with tell,
	// records in the same transaction that its device is due the signed
	// close command from at (CloseDue): whoever closes it, the command is
	// not lost, whichever node can sign it sends it. A four-eyes session
	// closed before its approval is due none: its device was never asked.
	CloseSession(ctx context.Context, id, reason string, at time.Time, tell bool) (s *Session, changed bool, err error)
	// ClaimClose takes the close command of session id to send, if it is
	// due by now: it moves CloseDue to now+lease, so that of several
	// nodes one sends it, and another does after lease if that one did
	// not clear it (CloseSent). It returns the session if this caller
	// took it, else nil and false (also for a session that does not
	// exist).
	ClaimClose(ctx context.Context, id string, now time.Time, lease time.Duration) (s *Session, claimed bool, err error)
	// CloseSent records that the device of session id was sent the close
	// command (CloseDue zero).
	CloseSent(ctx context.Context, id string) error
	// TouchSessions moves the LastActivity of open sessions forward to at.
	TouchSessions(ctx context.Context, ids []string, at time.Time) error
	// ApproveSession records a second engineer's approval of a session
	// that waits for one (WaitsForApproval) and moves it to connecting,
	// atomically, with the policy its open command carries; it returns
	// the session as it is afterwards with changed true. A session that
	// does not wait for approval (any more), or that the approver asked
	// for themselves, is returned unchanged with changed false: two
	// engineers approving at once approve once, and nobody approves
	// their own. The approver must still exist and be an administrator or
	// an operator or owner of the session's fleet as the approval is
	// recorded (ErrMayNotApprove otherwise): their rows are locked with
	// the session's, so a deletion or a role taken away at the same
	// moment comes either before the approval, which it then refuses, or
	// after it, when the sessions they approved are there to be closed.
	ApproveSession(ctx context.Context, id, userID, email, policy string, at time.Time) (s *Session, changed bool, err error)

	// Fleet policies: see FleetPolicies.
	FleetPolicies

	// Support requests: the queue of owners asking for help and sessions
	// waiting for an owner's approval.
	SupportRequests

	// Uploaded recordings and the owners' read-only links: see
	// Recordings.
	Recordings

	// The audit log, and how writes record events (WithAudit): see
	// AuditLog.
	AuditLog

	// Changes the nodes sharing the database must act on at once: see
	// Changes.
	Changes

	// The relays of the server nodes: see Relays.
	Relays

	// The nonces of the devices' request credentials: see DeviceNonces.
	DeviceNonces

	// Users' passkeys (WebAuthn) and their ceremonies: see Passkeys.
	Passkeys

	// Ping checks the database answers (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}
