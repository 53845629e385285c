package store

import (
	"context"
	"time"
)

// SupportRequestKind says who is asking whom.
type SupportRequestKind string

// Kinds of support request.
const (
	// RequestSupport: a device's owner asked for help (porthole-agent
	// request); it lasts as long as the owner's consent window.
	RequestSupport SupportRequestKind = "support"
	// RequestApproval: an engineer's session waits for the owner of a
	// device in approve mode; it names the session.
	RequestApproval SupportRequestKind = "approval"
	// RequestFourEyes: an engineer's session waits for a second engineer
	// of the fleet to approve it (the fleet's four-eyes rule); the server
	// files it, and it names the session.
	RequestFourEyes SupportRequestKind = "four_eyes"
)

// SupportRequestState is where a request is in the queue:
// open → claimed → closed, or open → closed. Closed is final.
type SupportRequestState string

// The states of a support request.
const (
	RequestOpen    SupportRequestState = "open"
	RequestClaimed SupportRequestState = "claimed"
	RequestClosed  SupportRequestState = "closed"
)

// SupportRequest is an entry of the support queue. The owner's support
// code is never part of it: the server never learns it.
type SupportRequest struct {
	ID         string
	FleetID    string
	FleetName  string // filled on reads
	DeviceID   string
	DeviceName string // filled on reads
	Kind       SupportRequestKind
	// SessionID is the session an approval or four-eyes request asks
	// about; empty for support requests.
	SessionID string
	// Reason is why: the owner's words for a support request, the
	// engineer's for an approval.
	Reason string
	// RequestedBy is the engineer asking, for an approval or four-eyes
	// request.
	RequestedBy string
	State       SupportRequestState
	// ClaimedBy is the engineer who took the request (empty once the user
	// is deleted); ClaimedEmail stays for the record.
	ClaimedBy    string
	ClaimedEmail string
	// CloseReason says why it closed: "closed" (by an engineer), or what
	// the device said ("revoked", "wrong_codes", "approved", "denied",
	// "consent_timeout", "window_closed"); for a four-eyes request
	// "approved" or "denied" by the second engineer, or the reason its
	// session closed first. ClosedBy is the engineer's email, "device",
	// or "system".
	CloseReason string
	ClosedBy    string
	CreatedAt   time.Time
	// ExpiresAt is when the owner's window ends (support) or when the
	// owner must have answered (approval). A request past it is over even
	// if no one closed it.
	ExpiresAt time.Time
	ClaimedAt time.Time // zero: never claimed
	ClosedAt  time.Time // zero: not closed
	// SessionIDs are the sessions the request led to, oldest first: for a
	// support request, those on its device that began while it was open;
	// for an approval, its session. Filled on reads.
	SessionIDs []string
}

// Over reports whether the request is closed or past its expiry at now.
func (r *SupportRequest) Over(now time.Time) bool {
	return r.State == RequestClosed || !now.Before(r.ExpiresAt)
}

// SupportRequestFilter selects support requests; zero fields match
// everything.
type SupportRequestFilter struct {
	FleetIDs  []string // nil: all fleets; empty non-nil: none
	DeviceID  string
	SessionID string
	Kind      SupportRequestKind
	// PendingAt, when set, keeps only requests not closed and not expired
	// at that time: the queue.
	PendingAt time.Time
	// Limit caps how many are returned, newest first. Zero: 100.
	Limit int
}

// SupportRequests is the support queue, part of Store.
type SupportRequests interface {
	// CreateSupportRequest stores a new open request, setting its ID (and
	// CreatedAt when zero). Its fleet is the device's; an approval's or
	// four-eyes request's session must be on that device (else
	// ErrNotFound), and a session has at most one request of each kind
	// (else ErrConflict).
	CreateSupportRequest(ctx context.Context, r *SupportRequest) error
	GetSupportRequest(ctx context.Context, id string) (*SupportRequest, error)
	// ListSupportRequests lists requests newest first.
	ListSupportRequests(ctx context.Context, f SupportRequestFilter) ([]*SupportRequest, error)
	// ClaimSupportRequest gives an open request to a user, atomically, and
	// returns it with changed true. A request already claimed (by anyone),
	// closed, or expired at at is returned unchanged with changed false, so
	// two engineers claiming at once cannot both have it.
	ClaimSupportRequest(ctx context.Context, id, userID, email string, at time.Time) (r *SupportRequest, changed bool, err error)
	// CloseSupportRequest closes a request that is not closed, atomically,
	// recording reason and by, and returns it with changed true; a closed
	// one is returned unchanged with changed false, so one reason is
	// recorded.
	CloseSupportRequest(ctx context.Context, id, reason, by string, at time.Time) (r *SupportRequest, changed bool, err error)
	// ReleaseSupportRequest puts a request claimed by the user with email
	// back in the queue (open, claimed by no one), atomically, and returns
	// it with changed true; one not claimed by them (any more) is returned
	// unchanged with changed false. It is for a user who is deleted or
	// loses their role in the request's fleet.
	ReleaseSupportRequest(ctx context.Context, id, email string) (r *SupportRequest, changed bool, err error)
}
