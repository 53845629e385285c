package apitype

import "time"

// Kinds of support request, as in SupportRequest.Kind.
const (
	// RequestSupport: a device's owner asked for help (porthole-agent
	// request). It lasts as long as the owner's consent window.
	RequestSupport = "support"
	// RequestApproval: an engineer's session waits for the owner of a
	// device in approve mode to approve it.
	RequestApproval = "approval"
	// RequestFourEyes: an engineer's session waits for a second engineer
	// of the fleet to approve it (the fleet's four-eyes rule):
	// POST /api/v1/requests/{id}/approve or /deny.
	RequestFourEyes = "four_eyes"
)

// Support request states, as in SupportRequest.State. A request past its
// expiry is reported closed with close_reason "expired".
const (
	RequestOpen    = "open"
	RequestClaimed = "claimed"
	RequestClosed  = "closed"
)

// RequestExpired is the close_reason of a request whose time ran out.
const RequestExpired = "expired"

// SupportRequest is an entry of the support queue (GET /api/v1/requests).
// The owner's support code is never part of it: the server never learns
// it.
type SupportRequest struct {
	ID       string `json:"id"`
	Fleet    string `json:"fleet"`
	Device   string `json:"device"`
	DeviceID string `json:"device_id"`
	// Kind is support (the owner asks for help), approval (an engineer's
	// session waits for the owner) or four_eyes (an engineer's session
	// waits for a second engineer).
	Kind string `json:"kind"`
	// Session is the session an approval or four-eyes request asks about.
	Session string `json:"session,omitempty"`
	// Reason is the owner's words (support) or the engineer's (approval,
	// four_eyes).
	Reason string `json:"reason,omitempty"`
	// RequestedBy is the engineer asking, for an approval or four-eyes
	// request.
	RequestedBy string `json:"requested_by,omitempty"`
	// State is open, claimed or closed.
	State string `json:"state"`
	// ClaimedBy is the engineer who took the request.
	ClaimedBy string `json:"claimed_by,omitempty"`
	// CloseReason says why it closed: closed (by an engineer), expired,
	// or what the device said: revoked, wrong_codes, window_closed,
	// approved, denied, consent_timeout; a four-eyes request: approved or
	// denied by the second engineer, or why its session closed first.
	CloseReason string `json:"close_reason,omitempty"`
	// ClosedBy is the engineer who closed it, "device", or "system".
	ClosedBy  string    `json:"closed_by,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is when the owner's window ends (support), when the
	// owner must have answered (approval) or a second engineer
	// (four_eyes).
	ExpiresAt time.Time `json:"expires_at"`
	ClaimedAt time.Time `json:"claimed_at,omitzero"`
	ClosedAt  time.Time `json:"closed_at,omitzero"`
	// Sessions are the sessions the request led to, oldest first.
	Sessions []string `json:"sessions"`
}

// DeviceRequest is POST /api/v1/device/requests: a device puts a request
// in its fleet's queue.
type DeviceRequest struct {
	// Session, when set, makes an approval request for that session (one
	// of the device's own, waiting for its owner); otherwise it is a
	// support request from the owner.
	Session string `json:"session,omitempty"`
	// Reason is the owner's words (support requests only; an approval
	// takes the engineer's from the session).
	Reason string `json:"reason,omitempty"`
	// ForS is how long the request lasts from now, in seconds: the owner's
	// window (at most a day) or the time the owner has to answer (at most
	// 15 minutes). The server's clock counts, not the device's.
	ForS int `json:"for_s"`
}

// CloseRequest is POST /api/v1/device/requests/{id}/close. An engineer's
// POST /api/v1/requests/{id}/close takes no body: its reason is "closed".
type CloseRequest struct {
	// Reason is why, for the record: one of revoked, wrong_codes,
	// window_closed, approved, denied, consent_timeout.
	Reason string `json:"reason,omitempty"`
}
