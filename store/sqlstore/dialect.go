package sqlstore

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
