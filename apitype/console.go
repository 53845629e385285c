package apitype

import "time"

// The web console's browser session (docs/web.md). A browser logs in with
// POST /api/v1/console/login and is answered with two cookies instead of a
// bearer token: ConsoleSessionCookie, which holds the session's secret and
// which no script can read, and ConsoleCSRFCookie, which the console's
// script reads and sends back in CSRFHeader with every request that
// changes something. Every route that takes a bearer token takes the
// session cookie too, with the same role checks.
const (
	// ConsoleSessionCookie holds the session's secret: HttpOnly, Secure,
	// SameSite=Strict, Path=/ (the __Host- prefix makes browsers refuse
	// it from any other origin, a sibling subdomain's included).
	ConsoleSessionCookie = "__Host-porthole-session"
	// ConsoleCSRFCookie holds the value CSRFHeader must carry: Secure,
	// SameSite=Strict, readable by the console's script.
	ConsoleCSRFCookie = "__Host-porthole-csrf"
	// CSRFHeader carries ConsoleCSRFCookie's value on every request made
	// with the session cookie other than GET and HEAD.
	CSRFHeader = "X-Porthole-CSRF"
	// BackgroundHeader, "1" on a console's request, says the page made it
	// on its own (a list read again every few seconds), not for its
	// person: it does not count as use of the session for its idle
	// timeout. Nor does the presence stream.
	BackgroundHeader = "X-Porthole-Background"
)

// CodeCSRF refuses a request made with the console's session cookie that
// came from another origin or lacked CSRFHeader's value.
const CodeCSRF = "csrf"

// ConsoleLoginResponse is POST /api/v1/console/login's answer: the
// session itself is in the cookies.
type ConsoleLoginResponse struct {
	ExpiresAt time.Time `json:"expires_at"`
	User      User      `json:"user"`
}

// Presence events: GET /api/v1/presence is a text/event-stream
// (Server-Sent Events) of the devices of the caller's fleets. Each event's
// data is one line of JSON.
const (
	// PresenceSnapshot ([]Device) is every device in the stream's scope,
	// first thing on each connection: it replaces what the client holds.
	PresenceSnapshot = "snapshot"
	// PresenceDevice (Device) is a device that changed or appeared: its
	// presence, labels or its arrival in the scope.
	PresenceDevice = "device"
	// PresenceRemoved (DeviceRef) is a device that left the scope: deleted,
	// or its fleet is no longer the caller's.
	PresenceRemoved = "removed"
	// PresenceEnd (PresenceEndEvent) is the last event of a stream the
	// server ends: the login was revoked or expired, the caller lost
	// their role in the one fleet the stream was of, or the server is
	// stopping. A client reconnects only in the last case.
	PresenceEnd = "end"
)

// DeviceRef names a device.
type DeviceRef struct {
	ID    string `json:"id"`
	Fleet string `json:"fleet"`
	Name  string `json:"name"`
}

// PresenceEndEvent says why the server ended a presence stream.
type PresenceEndEvent struct {
	// Reason is "logged_out" (the login was revoked or expired: log in
	// again), "no_access" (the stream was of one fleet, which is no
	// longer the caller's), "shutdown" (the server is stopping:
	// reconnect) or "replaced" (the same login opened more streams than
	// the server keeps for one, and this was its oldest: do not reconnect
	// on your own, or two tabs take turns).
	Reason string `json:"reason"`
}
