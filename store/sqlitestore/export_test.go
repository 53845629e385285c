package sqlitestore

// For the external tests: the pool before any migration, and the dialect.
var (
	OpenDB  = openDB
	Dialect = dialect
)
