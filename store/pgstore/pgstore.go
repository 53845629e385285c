// Package pgstore opens Porthole's store on PostgreSQL, through pgx's
// database/sql driver: for several server nodes sharing one database.
package pgstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// dialect is how PostgreSQL differs from SQLite for sqlstore: cfg is for
// the listener's own connection, channel the NOTIFY channel of the schema.
func dialect(cfg *pgx.ConnConfig, channel string) sqlstore.Dialect {
	return sqlstore.Dialect{
		Name:          "postgres",
		Violation:     violation,
		DiskFull:      diskFull,
		MigrationLock: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", int64(migrationLockKey)),
		Notify:        "SELECT pg_notify($1, $2)",
		ForUpdate:     " FOR UPDATE",
		NowMillis:     "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
		Channel:       channel,
		Listen: func(ctx context.Context, ready func(), deliver func(string)) error {
			return listen(ctx, cfg, channel, ready, deliver)
		},
	}
}

// listenCheck is how long the listener waits for a notification before it
// checks that its connection still answers: a server that vanished
// without closing the connection is noticed within listenCheck plus the
// ping's own timeout, and the node reconnects (announcing ChangesLost).
const listenCheck = 15 * time.Second

// changesChannel is the NOTIFY channel of the store in schema: NOTIFY is
// per database, and two deployments sharing one database in two schemas
// must not hear each other's changes (a device deleted in one would be
// disconnected in the other).
func changesChannel(schema string) string {
	if c := "porthole_changes_" + schema; len(c) < 64 { // PostgreSQL's NAMEDATALEN
		return c
	}
	sum := sha256.Sum256([]byte(schema))
	return "porthole_changes_" + hex.EncodeToString(sum[:16])
}

// ListenerName is the application_name of the connection that listens for
// other nodes' changes to the store whose search_path is searchPath.
func ListenerName(searchPath string) string {
	name := "portholed changes " + searchPath
	if len(name) > 63 {
		name = name[:63] // PostgreSQL keeps no more
	}
	return name
}

// listen holds a connection of its own (LISTEN needs one session for as
// long as it listens, which database/sql's pool cannot promise) and hands
// each notification of channel to deliver.
func listen(ctx context.Context, cfg *pgx.ConnConfig, channel string, ready func(), deliver func(string)) error {
	cfg = cfg.Copy()
	// Named, for an administrator reading pg_stat_activity (and the
	// tests, which end it to play a lost connection).
	cfg.RuntimeParams["application_name"] = ListenerName(cfg.RuntimeParams["search_path"])
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return err
	}
	ready()
	for {
		wctx, cancel := context.WithTimeout(ctx, listenCheck)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			deliver(n.Payload)
		case ctx.Err() != nil:
			return ctx.Err()
		case wctx.Err() != nil:
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
		default:
			return err
		}
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
	var schema string
	if err := db.QueryRowContext(ctx, "SELECT COALESCE(current_schema(), '')").Scan(&schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: read the current schema: %w", err)
	}
	return sqlstore.Open(ctx, db, dialect(cfg, changesChannel(schema)))
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
