package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"
)

// migrationFiles are the schema's versions, NNNN_what.sql, applied in
// order. A released file is never edited: a change is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string // file name
	sql     string
}

// loadMigrations reads dir's NNNN_*.sql files in order and checks their
// versions run 1, 2, 3, … with no gap or repeat.
func loadMigrations(fsys fs.FS, dir string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, dir) // sorted by name
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration %s: want a name like 0001_init.sql", e.Name())
		}
		if version != len(ms)+1 {
			return nil, fmt.Errorf("migration %s: version %d; want %d", e.Name(), version, len(ms)+1)
		}
		b, err := fs.ReadFile(fsys, dir+"/"+e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: version, name: e.Name(), sql: string(b)})
	}
	return ms, nil
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at BIGINT NOT NULL
)`

// migrate applies the migrations the database lacks, all in one
// transaction, so a failure leaves the schema as it was.
func (s *Store) migrate(ctx context.Context) error {
	return s.migrateTo(ctx, 0)
}

// MigrateTo applies the migrations db lacks up to version only, and leaves
// db open: for tests of a migration over the rows an older schema held
// (Open applies the rest). It uses d's Name and MigrationLock.
func MigrateTo(ctx context.Context, db *sql.DB, d Dialect, version int) error {
	if version < 1 {
		return fmt.Errorf("store: migrate to version %d: versions start at 1", version)
	}
	s := &Store{db: db, dialect: d}
	return s.migrateTo(ctx, version)
}

// migrateTo is migrate up to version; 0 means every migration.
func (s *Store) migrateTo(ctx context.Context, version int) error {
	ms, err := loadMigrations(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("store: load migrations: %w", err)
	}
	if version > len(ms) {
		return fmt.Errorf("store: migrate to version %d: this program knows only up to %d", version, len(ms))
	}
	if version > 0 {
		ms = ms[:version]
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if s.dialect.MigrationLock != "" {
			if _, err := tx.ExecContext(ctx, s.dialect.MigrationLock); err != nil {
				return fmt.Errorf("lock: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, createMigrationsTable); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var current int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if current > len(ms) {
			return fmt.Errorf("the database schema is at version %d but this program knows only up to %d: run a newer Porthole", current, len(ms))
		}
		for _, m := range ms[current:] {
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("apply %s: %w", m.name, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.version, m.name, millis(time.Now())); err != nil {
				return fmt.Errorf("record %s: %w", m.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: migrate the %s database: %w", s.dialect.Name, err)
	}
	return nil
}
