// Package sqlstore implements store.Store once over database/sql for both
// SQLite and PostgreSQL: the SQL and the schema are shared ($n placeholders,
// portable column types), and what differs between the two databases is a
// small Dialect that store/sqlitestore and store/pgstore supply.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/porthole/porthole/store"
)

// Store is a store.Store on a database/sql handle.
type Store struct {
	db      *sql.DB
	dialect Dialect
	feed    feed // the changes announced (changes.go)
}

var _ store.Store = (*Store)(nil)

// Open migrates db to the current schema and returns a Store on it. The
// Store owns db from then on: Close closes it, and so does a failed Open.
func Open(ctx context.Context, db *sql.DB, d Dialect) (*Store, error) {
	s := &Store{db: db, dialect: d}
	s.feed.node = newID("node")
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping %s: %w", s.dialect.Name, err)
	}
	return nil
}

// Close stops the listener for other nodes' changes, if one runs, and
// closes the database. Calling it again does nothing.
func (s *Store) Close() error {
	s.stopListening()
	return s.db.Close()
}

// DB returns the database under the store, for tests and maintenance
// tools that must go around it (the audit log's tamper tests edit rows
// behind its back). Writes through it skip every check the store makes.
func (s *Store) DB() *sql.DB { return s.db }

// execer is *sql.DB or *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface {
	Scan(dest ...any) error
}

// inTx runs fn in a transaction and commits if fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", s.full(err))
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		s.ended(tx, false)
		return s.full(err)
	}
	if err := tx.Commit(); err != nil {
		s.ended(tx, false)
		return fmt.Errorf("commit: %w", s.classify(err))
	}
	s.ended(tx, true)
	return nil
}

// classify turns the errors callers branch on into the store's sentinels:
// no row is ErrNotFound, a taken unique key is ErrConflict, a reference to
// a row that does not exist (a foreign key) is ErrNotFound, and a full
// disk is ErrDiskFull (with the driver's words).
func (s *Store) classify(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	if err := s.full(err); errors.Is(err, store.ErrDiskFull) {
		return err
	}
	switch s.dialect.Violation(err) {
	case UniqueViolation:
		return store.ErrConflict
	case ForeignKeyViolation:
		return store.ErrNotFound
	}
	return err
}

// full adds ErrDiskFull to err's chain when the driver says the disk is
// full, and returns any other error as it is.
func (s *Store) full(err error) error {
	if err != nil && !errors.Is(err, store.ErrDiskFull) && s.dialect.DiskFull != nil && s.dialect.DiskFull(err) {
		return fmt.Errorf("%w (%w)", store.ErrDiskFull, err)
	}
	return err
}

// The helpers below run one statement on the pool and report a failure as
// "store: <what>: <why>", with why one of the store's sentinels where one
// applies.

// one runs a query for one row; no row is ErrNotFound.
func one[T any](ctx context.Context, s *Store, what string, scan func(scanner) (*T, error), query string, args ...any) (*T, error) {
	v, err := scan(s.db.QueryRowContext(ctx, query, args...))
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, s.classify(err))
	}
	return v, nil
}

// all runs a query and scans every row. No rows is an empty slice.
func all[T any](ctx context.Context, s *Store, what string, scan func(scanner) (*T, error), query string, args ...any) ([]*T, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, s.full(err))
	}
	defer rows.Close()
	out := []*T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("store: %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	return out, nil
}

// exec runs a statement, recording the audit events ctx carries with it.
func (s *Store) exec(ctx context.Context, what, query string, args ...any) error {
	err := s.writeAudited(ctx, func(q execer) error {
		_, err := q.ExecContext(ctx, query, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, s.classify(err))
	}
	return nil
}

// change runs a statement that must change exactly one row, recording the
// audit events ctx carries with it; changing none is ErrNotFound.
func (s *Store) change(ctx context.Context, what, query string, args ...any) error {
	if err := s.writeAudited(ctx, func(q execer) error { return execOne(ctx, q, query, args...) }); err != nil {
		return fmt.Errorf("store: %s: %w", what, s.classify(err))
	}
	return nil
}

// execChanged runs a statement and reports whether it changed any row.
func execChanged(ctx context.Context, q execer, query string, args ...any) (bool, error) {
	res, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// execOne runs a statement that must change exactly one row; changing none
// is sql.ErrNoRows.
func execOne(ctx context.Context, q execer, query string, args ...any) error {
	res, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("rows affected: %w", err)
	}
	if n == 0 {
		return sql.ErrNoRows
	}
	return nil
}
