// Package sqlitestore opens Porthole's store on a SQLite file, with the
// pure-Go modernc.org/sqlite driver: one node, or tests.
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/porthole/porthole/store/sqlstore"
)

// Memory is the path of a database that lives in memory and is gone at
// Close. It is served by one connection, so concurrent callers take turns.
// `portholed dev` uses a file in a temporary directory instead, which
// behaves exactly like a real server's.
const Memory = ":memory:"

// dsnParams are set on every connection of the pool (the driver runs the
// DSN's _pragma parameters as it opens each one): wait up to 5 s for a
// lock rather than fail, write-ahead log so readers do not block the
// writer, enforce foreign keys (off by default in SQLite), and fsync at
// checkpoints only, which WAL keeps safe against corruption.
// _txlock=immediate makes BEGIN take the write lock, so two transactions
// that read and then write cannot deadlock upgrading their locks.
const dsnParams = "_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)" +
	"&_pragma=synchronous(NORMAL)&_txlock=immediate"

// dialect is how SQLite differs from PostgreSQL for sqlstore. It needs no
// MigrationLock: with _txlock=immediate the migration's BEGIN takes the
// write lock.
func dialect() sqlstore.Dialect {
	return sqlstore.Dialect{Name: "sqlite", Violation: violation, DiskFull: diskFull,
		// julianday counts days from noon of 4714 BC; 2440587.5 is 1970.
		NowMillis: "CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER)"}
}

// Open opens (creating it 0600 if need be) the SQLite database at path,
// or an in-memory one for Memory, and migrates it to the current schema.
func Open(path string) (*sqlstore.Store, error) {
	db, err := openDB(path)
	if err != nil {
		return nil, err
	}
	return sqlstore.Open(context.Background(), db, dialect())
}

// openDB opens the pool, before any migration.
func openDB(path string) (*sql.DB, error) {
	dsn := "file::memory:?" + dsnParams
	if path != Memory {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, fmt.Errorf("store: open SQLite database %s: %w", path, err)
		}
		if err := createPrivate(abs); err != nil {
			return nil, err
		}
		u := url.URL{Scheme: "file", Path: abs, RawQuery: dsnParams}
		dsn = u.String()
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open SQLite database %s: %w", path, err)
	}
	if path == Memory {
		// Each connection to :memory: is a database of its own.
		db.SetMaxOpenConns(1)
		db.SetConnMaxIdleTime(0)
		db.SetConnMaxLifetime(0)
	}
	if err := ping(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open SQLite database %s: %w", path, err)
	}
	return db, nil
}

// ping opens the first connection. Switching a new database to WAL needs
// an exclusive lock and SQLite answers SQLITE_BUSY at once, without the
// busy timeout, when another process (another server node, or a restart
// overlapping the old one) is doing the same; so a busy first connection
// is retried for as long as the busy timeout would have waited. Once the
// file is in WAL mode the pragma takes no lock and this loop ends first time.
func ping(db *sql.DB) error {
	deadline := time.Now().Add(5 * time.Second)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		err := db.Ping()
		var e *sqlite.Error
		if err == nil || !errors.As(err, &e) || e.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		time.Sleep(wait)
	}
}

// createPrivate creates the database file readable by its owner only
// (it holds password hashes and TOTP secrets) if it does not exist yet.
// SQLite gives its -wal and -shm files the same mode.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("store: create SQLite database: %w", err)
	}
	return f.Close()
}

// diskFull: SQLite says SQLITE_FULL when a write finds no room (it has
// rolled the statement or transaction back).
func diskFull(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_FULL
}

func violation(err error) sqlstore.Violation {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return sqlstore.NoViolation
	}
	switch e.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return sqlstore.UniqueViolation
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return sqlstore.ForeignKeyViolation
	}
	return sqlstore.NoViolation
}
