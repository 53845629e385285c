package sqlitestore

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/store"
	"github.com/porthole/porthole/store/sqlstore"
)

// openRaw opens a migrated store and the pool under it, for tests that go
// around the store to try the schema's own defences.
func openRaw(t *testing.T) (*sqlstore.Store, *sql.DB) {
	t.Helper()
	db, err := openDB(filepath.Join(t.TempDir(), "porthole.db"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := sqlstore.Open(t.Context(), db, dialect())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, db
}

// TestFilesPrivate: the database and its WAL files hold password hashes and
// TOTP secrets, so only their owner may read them.
func TestFilesPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "porthole.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateUser(t.Context(), &store.User{Email: "ann@example.com"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s: mode %o; want 600", filepath.Base(p), mode)
		}
	}
}

// TestPragmasOnEveryConnection: the pool's connections all wait for locks,
// use the WAL and enforce foreign keys, not just the first.
func TestPragmasOnEveryConnection(t *testing.T) {
	_, db := openRaw(t)
	ctx := t.Context()
	for i := range 3 {
		conn, err := db.Conn(ctx) // held, so each turn gets a new connection
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, tt := range []struct{ pragma, want string }{
			{"busy_timeout", "5000"}, {"journal_mode", "wal"}, {"foreign_keys", "1"}, {"synchronous", "1"},
		} {
			var got string
			if err := conn.QueryRowContext(ctx, "PRAGMA "+tt.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("connection %d: PRAGMA %s = %s; want %s", i, tt.pragma, got, tt.want)
			}
		}
	}
}

// TestSchemaConstraints goes around the store to check that the schema
// itself refuses what the store's code would never write.
func TestSchemaConstraints(t *testing.T) {
	s, db := openRaw(t)
	ctx := t.Context()
	f := &store.Fleet{Name: "alpha"}
	if err := s.CreateFleet(ctx, f); err != nil {
		t.Fatal(err)
	}
	u := &store.User{Email: "ann@example.com"}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	et := &store.EnrollmentToken{FleetID: f.ID, Hash: "h", UsesLeft: 2, MaxUses: 2, ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.CreateEnrollmentToken(ctx, et); err != nil {
		t.Fatal(err)
	}
	d := &store.Device{Name: "dev1", PublicKey: "k"}
	if err := s.EnrollDevice(ctx, "h", time.Now(), d, func(*store.Fleet) (string, error) { return "c", nil }); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		sql  string
		args []any
	}{
		{"a role that does not exist", `INSERT INTO roles (fleet_id, user_id, role) VALUES ($1, $2, 'root')`, []any{f.ID, u.ID}},
		{"a device in a missing fleet", `INSERT INTO devices (id, fleet_id, name, public_key, host_cert, enrolled_at)
			VALUES ('dev_x', 'flt_missing', 'dev1', '', '', 1)`, nil},
		{"a negative use count", `UPDATE enrollment_tokens SET uses_left = -1 WHERE id = $1`, []any{et.ID}},
		{"more uses left than allowed", `UPDATE enrollment_tokens SET uses_left = 3 WHERE id = $1`, []any{et.ID}},
		{"an admin flag of 2", `UPDATE users SET admin = 2 WHERE id = $1`, []any{u.ID}},
		{"a consent floor of auto", `INSERT INTO fleet_policies (fleet_id, consent_floor, version, updated_at) VALUES ($1, 'auto', 1, 1)`, []any{f.ID}},
		{"a policy at version 0", `INSERT INTO fleet_policies (fleet_id, version, updated_at) VALUES ($1, 0, 1)`, []any{f.ID}},
		{"a policy of a missing fleet", `INSERT INTO fleet_policies (fleet_id, version, updated_at) VALUES ('flt_missing', 1, 1)`, nil},
		{"a four-eyes request without a session", `INSERT INTO support_requests (id, fleet_id, device_id, kind, state, created_at, expires_at)
			VALUES ('req_x', $1, $2, 'four_eyes', 'open', 1, 2)`, []any{f.ID, d.ID}},
	} {
		if _, err := db.ExecContext(ctx, tt.sql, tt.args...); err == nil {
			t.Errorf("the schema accepted %s", tt.name)
		}
	}
}

// TestRefusesNewerSchema: a database migrated by a newer Porthole is not
// opened by an older one, which would misread it.
func TestRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "porthole.db")
	db, err := openDB(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sqlstore.Open(context.Background(), db, dialect())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, '0999_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "version 999") {
		t.Errorf("Open of a database at schema version 999: %v; want an error naming the version", err)
	}
}
