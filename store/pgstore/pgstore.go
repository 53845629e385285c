// Package pgstore opens Porthole's store on PostgreSQL, through pgx's
// database/sql driver: for several server nodes sharing one database.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/porthole/porthole/store/sqlstore"
)

// migrationLockKey names Porthole's advisory lock, held by a node while it
// migrates so that nodes starting at once take turns. Any constant works;
// this one spells "porthole" in ASCII.
const migrationLockKey = 0x706f7274686f6c65

// dialect is how PostgreSQL differs from SQLite for sqlstore.
func dialect() sqlstore.Dialect {
	return sqlstore.Dialect{
		Name:          "postgres",
		Violation:     violation,
		DiskFull:      diskFull,
		MigrationLock: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", int64(migrationLockKey)),
	}
}

// Open connects to the PostgreSQL database named by dsn (a postgres:// URL
// or key=value list; a search_path parameter picks the schema) and
// migrates it to the current schema.
func Open(ctx context.Context, dsn string) (*sqlstore.Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the DSN, password and all: leave it out.
		return nil, errors.New("store: the PostgreSQL connection string is not valid: want postgres://user@host:5432/dbname or key=value pairs")
	}
	db := stdlib.OpenDB(*cfg)
	// Enough for a busy node, while leaving room under PostgreSQL's
	// default of 100 connections for a few nodes.
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(5)
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(time.Hour)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connect to PostgreSQL at %s:%d: %w", cfg.Host, cfg.Port, err)
	}
	return sqlstore.Open(ctx, db, dialect())
}

// diskFull: PostgreSQL's disk_full (53100), "could not extend file".
func diskFull(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == "53100"
}

func violation(err error) sqlstore.Violation {
	var e *pgconn.PgError
	if !errors.As(err, &e) {
		return sqlstore.NoViolation
	}
	switch e.Code {
	case "23505": // unique_violation
		return sqlstore.UniqueViolation
	case "23503": // foreign_key_violation
		return sqlstore.ForeignKeyViolation
	}
	return sqlstore.NoViolation
}
