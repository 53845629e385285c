package store

import "context"

// ChangeKind says what a Change is about.
type ChangeKind string

// The changes a store announces. They are the ones another server node
// must act on at once: a deleted device must lose its connections and its
// cached key on every node, a re-enrolled one must be let in with its new
// key, and a closed session must be cut by whichever relay carries it.
const (
	// DeviceEnrolled: Fleet/Device was added (a name enrolled again after
	// a delete has a new key).
	DeviceEnrolled ChangeKind = "device_enrolled"
	// DeviceDeleted: Fleet/Device no longer exists.
	DeviceDeleted ChangeKind = "device_deleted"
	// FleetDeleted: Fleet and every device of it no longer exist.
	FleetDeleted ChangeKind = "fleet_deleted"
	// SessionChanged: session Session moved to State.
	SessionChanged ChangeKind = "session_changed"
	// ChangesLost: this node may have missed changes (it lost its
	// connection to the database for a while): whatever it cached from
	// the store must be read again.
	ChangesLost ChangeKind = "changes_lost"
)

// Change is a change the store committed, announced to every server node
// that shares the database (Changes).
type Change struct {
	Kind    ChangeKind   `json:"k"`
	Fleet   string       `json:"f,omitempty"` // fleet name
	Device  string       `json:"d,omitempty"` // device name
	Session string       `json:"s,omitempty"` // session ID
	State   SessionState `json:"st,omitempty"`
}

// Changes announces committed changes to every server node sharing the
// database: with PostgreSQL through NOTIFY in the transaction that makes
// the change, so that a node hears of it if and only if it was committed;
// with SQLite, which one node alone uses, in process. The node that made
// a change hears of it at once, before the call that made it returns, and
// may hear of it a second time: the handlers apply changes, they do not
// count them.
//
// A change from another node is a hint, not a fact: PostgreSQL lets any
// role that can connect to the database NOTIFY on any channel (and LISTEN
// to it: the names and session IDs in changes are readable by them, so a
// deployment should have a database of its own). A handler that does
// more than drop what it cached (disconnect a device, cut a session)
// first checks the store.
type Changes interface {
	// Watch calls fn with every change committed from now on until ctx
	// is done. fn runs on the store's goroutine or the committing one and
	// must be quick; the changes of one node may reach it out of order
	// when they were committed at once. When
	// the node lost its connection to the database, fn gets ChangesLost
	// as the connection comes back.
	Watch(ctx context.Context, fn func(Change))
}
