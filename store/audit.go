package store

import (
	"context"
	"slices"
	"time"

	"github.com/porthole/porthole/audit"
)

// AuditLog is the server's tamper-evident audit log (package audit): a hash
// chain of events, written in the same transaction as the changes they
// record.
//
// A write records the events its context carries (WithAudit) in its own
// transaction, after the change, if it succeeds and changes something: a
// failed write records nothing, and so does a TransitionSession that finds
// the session in none of its from states. These writes record them:
// CreateFleet, DeleteFleet, CreateUser, DeleteUser, SetRole, RemoveRole,
// CreateToken, DeleteToken, CreateEnrollmentToken, DeleteEnrollmentToken,
// EnrollDevice, SetDeviceLabels, DeleteDevice, CreateSession,
// TransitionSession, ApproveSession, SetFleetPolicy and AppendAudit. Writes that only keep times and
// counters fresh (presence, Touch*, AdvanceTOTPStep, MarkAllOffline)
// ignore them.
//
// The store completes the events it records: a zero Time becomes the time
// of the write; an event naming a fleet by name only gets its FleetID, and
// one naming a device of that fleet by name only gets its DeviceID, when
// they exist. EnrollDevice fills in the new device and its fleet,
// CreateSession and TransitionSession the session with its device and
// fleet, where the events leave them empty; SetFleetPolicy the fleet.
type AuditLog interface {
	// AppendAudit records events that go with no change of their own (a
	// refused login, a refused relay request), in one transaction.
	AppendAudit(ctx context.Context, evs ...audit.Event) error
	// ListAudit lists the events f selects, in the order they were
	// recorded.
	ListAudit(ctx context.Context, f AuditFilter) ([]audit.Event, error)
	// AuditHead and AuditChain are what audit.Verify reads: the chain's
	// head as the last append recorded it, and the events after a
	// sequence number, as stored.
	AuditHead(ctx context.Context) (audit.Head, error)
	AuditChain(ctx context.Context, after int64, limit int) ([]audit.Event, error)
}

// AuditFilter selects audit events; zero fields match everything.
type AuditFilter struct {
	FleetIDs []string // nil: every event; empty non-nil: none. Events of no fleet match only nil.
	Device   string   // device name (a deleted device's events too); use with FleetIDs
	Session  string   // session ID
	Since    time.Time
	After    int64 // only events with a greater sequence number
	Before   int64 // only events with a smaller sequence number (zero: no bound)
	// Limit caps how many are returned. Zero: 100.
	Limit int
	// Latest returns the last Limit events that match instead of the
	// first, still oldest first.
	Latest bool
}

type auditKey struct{}

// WithAudit returns ctx carrying evs, to be recorded in the same
// transaction as the next write made with it (see AuditLog), along with any
// events ctx already carries. Derive it for the one call that makes the
// change:
//
//	err := st.DeleteDevice(store.WithAudit(ctx, audit.Event{Kind: audit.DeviceDeleted, ...}), id)
func WithAudit(ctx context.Context, evs ...audit.Event) context.Context {
	if len(evs) == 0 {
		return ctx
	}
	all := append(slices.Clone(AuditEvents(ctx)), evs...)
	return context.WithValue(ctx, auditKey{}, all)
}

// WithoutAudit returns ctx carrying no audit events: for a write made on
// the way that the events do not describe.
func WithoutAudit(ctx context.Context) context.Context {
	if AuditEvents(ctx) == nil {
		return ctx
	}
	return context.WithValue(ctx, auditKey{}, []audit.Event(nil))
}

// AuditEvents returns the events ctx carries, for implementations of the
// store.
func AuditEvents(ctx context.Context) []audit.Event {
	evs, _ := ctx.Value(auditKey{}).([]audit.Event)
	return evs
}
