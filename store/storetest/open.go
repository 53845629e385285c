package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for creating schemas

	"github.com/porthole/porthole/store"
	"github.com/porthole/porthole/store/pgstore"
	"github.com/porthole/porthole/store/sqlitestore"
)

// DefaultPostgresDSN is the test database: the local PostgreSQL with trust
// authentication that scripts/setup.sh starts. PORTHOLE_TEST_PG overrides
// it.
const DefaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// OpenSQLite returns a store on a new SQLite file in t's temporary
// directory, closed when t ends.
func OpenSQLite(t *testing.T) store.Store {
	t.Helper()
	s, err := sqlitestore.Open(filepath.Join(t.TempDir(), "porthole.db"))
	if err != nil {
		t.Fatalf("opening SQLite store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// OpenPostgres returns a store on a schema of t's own in the test
// PostgreSQL database (see PostgresDSN), closed and dropped when t ends.
func OpenPostgres(t *testing.T) store.Store {
	t.Helper()
	s, err := pgstore.Open(t.Context(), PostgresDSN(t))
	if err != nil {
		t.Fatalf("opening PostgreSQL store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// PostgresDSN creates an empty schema for t in the test PostgreSQL
// database and returns a DSN whose search_path selects it; the schema is
// dropped when t ends. If PostgreSQL does not answer, t is skipped, unless
// CI=true or PORTHOLE_REQUIRE_PG=1, which make it fail: CI must not pass by
// skipping.
func PostgresDSN(t *testing.T) string {
	t.Helper()
	base := os.Getenv("PORTHOLE_TEST_PG")
	if base == "" {
		base = DefaultPostgresDSN
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("PORTHOLE_TEST_PG is not a PostgreSQL connection string: %v", err)
	}
	admin.SetMaxOpenConns(1)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		admin.Close()
		postgresUnreachable(t, err)
	}
	schema := "porthole_test_" + randomHex(8)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("creating schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		// t.Context is already cancelled when cleanups run.
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
		admin.Close()
	})
	return withSearchPath(base, schema)
}

func postgresUnreachable(t *testing.T, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" || os.Getenv("PORTHOLE_REQUIRE_PG") == "1" {
		t.Fatalf("PostgreSQL is not reachable and CI=true or PORTHOLE_REQUIRE_PG=1 requires it: %v", err)
	}
	t.Skipf("skipping: PostgreSQL is not reachable (%v); start it with scripts/setup.sh or point PORTHOLE_TEST_PG at one", err)
}

// withSearchPath adds search_path=schema to a postgres:// URL or a
// key=value DSN.
func withSearchPath(dsn, schema string) string {
	u, err := url.Parse(dsn)
	if err != nil || !strings.Contains(dsn, "://") {
		return dsn + " search_path=" + schema
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b)
}
