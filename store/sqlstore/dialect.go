package sqlstore

import "context"

// Dialect is what differs between the databases: everything else, the SQL
// and the schema included, is shared.
type Dialect struct {
	// Name names the database in errors: "sqlite", "postgres".
	Name string
	// Violation tells which constraint, if any, a driver error reports
	// as violated.
	Violation func(error) Violation
	// DiskFull tells whether a driver error says the database's disk is
	// full (store.ErrDiskFull).
	DiskFull func(error) bool
	// MigrationLock, when set, is run first in the migration transaction
	// so that servers starting at once migrate one after the other. Empty
	// for SQLite, where the transaction takes the write lock as it begins.
	MigrationLock string
	// Notify, when set, is the statement that announces a change to the
	// other nodes sharing the database, with Channel ($1) and the change
	// as JSON ($2), run in the transaction that makes it. Empty for
	// SQLite, which one node alone uses.
	Notify, Channel string
	// ForUpdate, appended to a SELECT, locks the rows it reads until the
	// transaction ends (" FOR UPDATE"). Empty for SQLite, whose
	// transactions take the database's write lock as they begin.
	ForUpdate string
	// NowMillis is an SQL expression of the database's clock in unix
	// milliseconds.
	NowMillis string
	// Listen, when set, connects to the database, listens on Channel,
	// calls ready once it does and deliver with each payload, until ctx
	// is done or the connection fails; it returns why.
	Listen func(ctx context.Context, ready func(), deliver func(payload string)) error
}

// Violation is a kind of constraint violation the store maps to an error
// callers branch on.
type Violation int

// Violations.
const (
	NoViolation         Violation = iota
	UniqueViolation               // store.ErrConflict
	ForeignKeyViolation           // store.ErrNotFound: the row referred to is missing
)
