package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind names what happened. Any lower_snake name that ValidKind accepts
// may be used; these are the ones the server records.
type Kind string

// Accounts and access.
const (
	LoginSucceeded   Kind = "login_succeeded"    // a user logged in; a token was made for them
	LoginFailed      Kind = "login_failed"       // wrong email, password or TOTP code, or a replayed code
	TokenCreated     Kind = "token_created"      // an API token made other than by a login
	TokenRevoked     Kind = "token_revoked"      // a token was revoked (logout, or by its owner)
	ReauthSucceeded  Kind = "reauth_succeeded"   // a login proved a fresh second factor (POST /api/v1/reauth)
	ReauthFailed     Kind = "reauth_failed"      // a re-authentication's code was wrong or replayed
	UserCreated      Kind = "user_created"       //
	UserDeleted      Kind = "user_deleted"       // an administrator deleted a user, with their logins and roles
	UserReset        Kind = "user_reset"         // an administrator gave a user a new password and TOTP secret, ending their logins
	RoleChanged      Kind = "role_changed"       // a user was given a role in a fleet, or it changed
	RoleRemoved      Kind = "role_removed"       // a user lost their role in a fleet
	CrossFleetDenied Kind = "cross_fleet_denied" // a user reached for a fleet, or its device or session, without a role in it
	AccessDenied     Kind = "access_denied"      // a user's role in a fleet, or their lack of admin rights, was not enough
	// SSODeviceApproved: an engineer signed in at the provider to approve
	// a `porthole login --sso` (Detail["grant"]); its login follows when
	// the CLI collects it (login_succeeded, method sso). SSO sign-ins
	// refused are login_failed with method sso; SSO logins the provider no
	// longer stands behind are token_revoked by the system.
	SSODeviceApproved Kind = "sso_device_approved"
	// PasskeyRegistered and PasskeyRemoved: a user added or removed one
	// of their passkeys (Detail["name"], and Detail["credential"], a tag
	// of its credential ID). Sign-ins with a passkey are login_succeeded
	// and login_failed with Detail["method"] passkey or password+passkey;
	// re-authentications with one, reauth_succeeded and reauth_failed
	// with method passkey.
	PasskeyRegistered Kind = "passkey_registered"
	PasskeyRemoved    Kind = "passkey_removed"
	// PasskeyRefused: adding or removing a passkey was refused
	// (Detail["reason"]: no fresh second factor, no registration
	// waiting, an answer that did not verify, a credential already
	// registered).
	PasskeyRefused Kind = "passkey_refused"
)

// Fleets and devices.
const (
	FleetCreated           Kind = "fleet_created"
	EnrollmentTokenCreated Kind = "enrollment_token_created"
	EnrollmentTokenDeleted Kind = "enrollment_token_deleted"
	DeviceEnrolled         Kind = "device_enrolled"
	EnrollmentRefused      Kind = "enrollment_refused" // a device came with an unknown, expired or used-up token, or a taken name
	DeviceDeleted          Kind = "device_deleted"
	LabelsChanged          Kind = "labels_changed"
	// ConsentReported: a device's agent reported its owner's consent
	// mode, the first time or changed since it last did (Detail["old"],
	// Detail["new"], Detail["agent"]): the device's word, for the record.
	ConsentReported Kind = "consent_reported"
)

// Sessions and the data path.
const (
	SessionRequested Kind = "session_requested" // an engineer asked for a session; the device was asked to connect
	SessionActive    Kind = "session_active"    // the device reported its tunnel up
	SessionClosed    Kind = "session_closed"    // Detail["reason"] says why
	RelayRefused     Kind = "relay_refused"     // the relay refused a login, request or channel
	CommandRejected  Kind = "command_rejected"  // a device reported that it rejected a control command
)

// The owner's consent (manual and approve modes).
const (
	SupportRequested Kind = "support_requested" // a device's owner asked for help
	ConsentGranted   Kind = "consent_granted"   // the owner approved an engineer's session
	ConsentDenied    Kind = "consent_denied"    // the owner denied it
	WrongCode        Kind = "wrong_code"        // an engineer gave a wrong support code
	// SupportRequestClaimed and SupportRequestClosed: an engineer took a
	// request in the queue, or it was closed (by an engineer, or by its
	// device: Detail["reason"]).
	SupportRequestClaimed Kind = "support_request_claimed"
	SupportRequestClosed  Kind = "support_request_closed"
)

// Fleet policy: what a fleet's owners decide for every session on its
// devices, and each decision it made. Detail["rule"] names the rule that
// decided (ports, consent_floor, max_duration, idle_timeout, four_eyes).
const (
	// PolicyChanged: a fleet owner set the fleet's policy; Detail["old"]
	// and Detail["new"] are the policy before and after.
	PolicyChanged Kind = "policy_changed"
	// PolicyRefused: the fleet's policy refused what an engineer asked
	// (a session for ports it does not allow, the approval of their own
	// session); Detail["rule"] and Detail["refusal"] say which and why.
	PolicyRefused Kind = "policy_refused"
	// FourEyesApproved: a second engineer approved a session the fleet's
	// four-eyes rule held; Detail["requested_by"] and
	// Detail["approved_by"] name both.
	FourEyesApproved Kind = "four_eyes_approved"
	// FourEyesDenied: a second engineer refused such a session;
	// Detail["requested_by"] and Detail["denied_by"] name both.
	FourEyesDenied Kind = "four_eyes_denied"
)

// Recordings and the owner's view.
const (
	// RecordingUploaded: a device completed the upload of a session's
	// recording; Detail says how much, and which files the server's caps
	// cut short.
	RecordingUploaded Kind = "recording_uploaded"
	// OwnerLinkCreated: a device made a new owner link, which replaced
	// its last one.
	OwnerLinkCreated Kind = "owner_link_created"
)

// The log itself.
const (
	// EventsDropped records how many events a Queue left out because
	// they came faster than its rate (Detail["count"]).
	EventsDropped Kind = "audit_events_dropped"
)

// ValidKind reports whether k is a kind name: 1 to 64 of a-z, 0-9 and _,
// starting with a letter.
func ValidKind(k Kind) bool {
	if len(k) == 0 || len(k) > 64 || k[0] < 'a' || k[0] > 'z' {
		return false
	}
	for _, c := range []byte(k) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// ActorKind is what kind of party did something.
type ActorKind string

// Kinds of actors.
const (
	ActorUser   ActorKind = "user"   // a logged-in user: ID is the user's ID, Name their email
	ActorDevice ActorKind = "device" // an enrolled device: ID is the device's ID, Name "device.fleet"
	ActorSystem ActorKind = "system" // the server itself (timeouts, startup): Name "system"
	// ActorAnonymous is someone not (yet) authenticated: a failed login
	// (Name is the email they gave), an unknown peer at the relay.
	ActorAnonymous ActorKind = "anonymous"
)

// Actor is who did something.
type Actor struct {
	Kind ActorKind
	ID   string
	Name string
}

// System is the server acting on its own.
var System = Actor{Kind: ActorSystem, Name: "system"}

// User is a logged-in user as an actor.
func User(id, email string) Actor { return Actor{Kind: ActorUser, ID: id, Name: email} }

// Device is an enrolled device as an actor. id may be empty where only the
// names are known, and fleet while it is not known yet (at enrollment).
func Device(id, fleet, device string) Actor {
	if fleet == "" {
		return Actor{Kind: ActorDevice, ID: id, Name: device}
	}
	return Actor{Kind: ActorDevice, ID: id, Name: device + "." + fleet}
}

// Anonymous is an unauthenticated party, named as it named itself (an
// email at login, a user name at the relay).
func Anonymous(name string) Actor { return Actor{Kind: ActorAnonymous, Name: name} }

// String is the actor for people: "ann@example.com", "dev1.acme", "system".
func (a Actor) String() string {
	if a.Name != "" {
		return a.Name
	}
	return string(a.Kind)
}

type actorKey struct{}

// WithActor returns ctx carrying a, the party on whose behalf the work done
// with ctx happens. The API sets it for each authenticated request, so that
// deeper layers (package session, closing a session) record who acted.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor ctx carries, or System.
func ActorFrom(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok {
		return a
	}
	return System
}

// Event is one entry of the audit log. Seq, PrevHash and Hash are set by
// the store as it appends the event; Time too when it is zero.
type Event struct {
	Seq   int64
	Time  time.Time
	Kind  Kind
	Actor Actor
	// The fleet, device and session the event concerns; empty when none.
	// IDs let the log be filtered and scoped to a fleet's members; names
	// say what they were called at the time, which outlives a deletion.
	FleetID  string
	Fleet    string
	DeviceID string
	Device   string
	Session  string
	// Detail holds a few more facts as strings ("reason", "remote",
	// "role"). Never secrets: the log is read by every fleet auditor.
	Detail map[string]string

	PrevHash string
	Hash     string
}

// Genesis is the PrevHash of the first event.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// Limits on an event's detail. Longer values are cut (Normalize), more
// entries are an error: events are small facts, not payloads.
const (
	MaxDetailEntries = 32
	MaxDetailKey     = 64
	MaxDetailValue   = 1024
	maxField         = 512 // names and IDs
)

// ErrInvalid is wrapped by the errors of Validate.
var ErrInvalid = errors.New("audit: invalid event")

// Normalize cuts detail values longer than MaxDetailValue bytes (and names
// longer than 512) at a character boundary, marking the cut with "…", and
// drops empty detail values, so that what is hashed is what is stored. It
// gives e a Detail map of its own: the caller's is left as it was.
func (e *Event) Normalize() {
	for _, p := range []*string{&e.Actor.ID, &e.Actor.Name, &e.FleetID, &e.Fleet, &e.DeviceID, &e.Device, &e.Session} {
		*p = cut(*p, maxField)
	}
	var detail map[string]string
	for k, v := range e.Detail {
		if v == "" {
			continue
		}
		if detail == nil {
			detail = make(map[string]string, len(e.Detail))
		}
		detail[k] = cut(v, MaxDetailValue)
	}
	e.Detail = detail
}

// cut shortens s to at most n bytes, ending in "…" if it was cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	i := n - len(ellipsis)
	for i > 0 && !utf8.RuneStart(s[i]) { // s[i] continues a character begun before it
		i--
	}
	return s[:i] + ellipsis
}

// Validate checks that e can be recorded: a valid kind and actor kind and
// a small detail map.
func (e *Event) Validate() error {
	if !ValidKind(e.Kind) {
		return fmt.Errorf("%w: kind %q: want 1 to 64 of a-z, 0-9 and _", ErrInvalid, e.Kind)
	}
	if e.Actor.Kind == "" || !ValidKind(Kind(e.Actor.Kind)) {
		return fmt.Errorf("%w: %s event: actor kind %q", ErrInvalid, e.Kind, e.Actor.Kind)
	}
	if len(e.Detail) > MaxDetailEntries {
		return fmt.Errorf("%w: %s event: %d detail entries; at most %d", ErrInvalid, e.Kind, len(e.Detail), MaxDetailEntries)
	}
	for k := range e.Detail {
		if k == "" || len(k) > MaxDetailKey {
			return fmt.Errorf("%w: %s event: detail key %q", ErrInvalid, e.Kind, k)
		}
	}
	return nil
}

// canonicalTag starts every canonical encoding: a new encoding would get a
// new tag.
const canonicalTag = "porthole-audit-v1"

// Canonical is the byte string e's Hash is computed over; see the package
// documentation. Time counts in unix milliseconds (0 for the zero time),
// as the store keeps it.
func (e *Event) Canonical() []byte {
	var b []byte
	field := func(s string) {
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, ':')
		b = append(b, s...)
		b = append(b, ',')
	}
	var ms int64
	if !e.Time.IsZero() {
		ms = e.Time.UnixMilli()
	}
	field(canonicalTag)
	field(strconv.FormatInt(e.Seq, 10))
	field(strconv.FormatInt(ms, 10))
	field(string(e.Kind))
	field(string(e.Actor.Kind))
	field(e.Actor.ID)
	field(e.Actor.Name)
	field(e.FleetID)
	field(e.Fleet)
	field(e.DeviceID)
	field(e.Device)
	field(e.Session)
	keys := make([]string, 0, len(e.Detail))
	for k := range e.Detail {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	field(strconv.Itoa(len(keys)))
	for _, k := range keys {
		field(k)
		field(e.Detail[k])
	}
	field(e.PrevHash)
	return b
}

// ComputeHash is the hash e should carry: hex SHA-256 of Canonical.
func (e *Event) ComputeHash() string {
	sum := sha256.Sum256(e.Canonical())
	return hex.EncodeToString(sum[:])
}

// Seal makes e the event after prev in the chain: it sets Seq, PrevHash
// and Hash. e must be normalized and valid first.
func (e *Event) Seal(prev Head) {
	e.Seq, e.PrevHash = prev.Seq+1, prev.Hash
	e.Hash = e.ComputeHash()
}

// Head is the end of the chain: the last event's sequence number and hash
// ({0, Genesis} for an empty log). Written as SEQ:HASH (String, ParseHead)
// it is what operators record elsewhere to check later that the chain
// still contains it.
type Head struct {
	Seq  int64
	Hash string
}

// String is "SEQ:HASH".
func (h Head) String() string { return strconv.FormatInt(h.Seq, 10) + ":" + h.Hash }

// ParseHead reads "SEQ:HASH" as Head.String writes it.
func ParseHead(s string) (Head, error) {
	seq, hash, ok := strings.Cut(strings.TrimSpace(s), ":")
	n, err := strconv.ParseInt(seq, 10, 64)
	if !ok || err != nil || n < 1 || len(hash) != 64 || strings.Trim(hash, "0123456789abcdef") != "" {
		return Head{}, fmt.Errorf("audit: %q is not a recorded head: want SEQ:HASH as `porthole audit --verify` prints it (a positive number, a colon, 64 lower-case hex digits)", s)
	}
	return Head{Seq: n, Hash: hash}, nil
}
