package pgstore_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/store"
	"github.com/porthole/porthole/store/pgstore"
	"github.com/porthole/porthole/store/sqlstore"
	"github.com/porthole/porthole/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, storetest.OpenPostgres)
}

func TestSameDatabase(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	storetest.RunSameDatabase(t, func() (store.Store, error) { return pgstore.Open(t.Context(), dsn) })
}

// TestChangesAcrossNodes: a change made through one node's store reaches
// another's watchers through NOTIFY; when PostgreSQL ends the listening
// connection, the node connects again, hears ChangesLost, and then the
// changes that follow.
func TestChangesAcrossNodes(t *testing.T) {
	t.Parallel()
	dsn := storetest.PostgresDSN(t)
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var schema string
	if err := admin.QueryRowContext(t.Context(), "SELECT current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	storetest.RunChangesAcrossNodes(t, func() (store.Store, error) { return pgstore.Open(t.Context(), dsn) },
		func(ctx context.Context) error {
			var n int
			err := admin.QueryRowContext(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`,
				pgstore.ListenerName(schema)).Scan(&n)
			if err == nil && n == 0 {
				err = errors.New("no listening connection to end")
			}
			return err
		})
}

// TestOpenErrorHidesPassword: a bad connection string's error must not
// repeat the password it holds.
func TestOpenErrorHidesPassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://porthole:hunter2secret@127.0.0.1:5432/test?sslmode=bogus",
		"host=127.0.0.1 password=hunter2secret port=notaport",
	} {
		_, err := pgstore.Open(t.Context(), dsn)
		if err == nil {
			t.Fatalf("Open(%q): no error; want one", dsn)
		}
		if strings.Contains(err.Error(), "hunter2secret") {
			t.Errorf("Open error %q shows the password", err)
		}
	}
}

// TestUpgradeFleetPolicy: migration 0007 over a database at version 6.
func TestUpgradeFleetPolicy(t *testing.T) {
	t.Parallel()
	dsn := storetest.PostgresDSN(t)
	storetest.RunUpgradeFleetPolicy(t, func(version int) *sql.DB {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		if err := sqlstore.MigrateTo(t.Context(), db, sqlstore.Dialect{Name: "postgres"}, version); err != nil {
			t.Fatal(err)
		}
		return db
	}, func() store.Store {
		s, err := pgstore.Open(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestPresenceTouchesOnlyChanges: presence that changes nothing (an
// offline device said offline again, as an external broker's retained
// states replay it to every node's snapshot) writes no new row version.
func TestPresenceTouchesOnlyChanges(t *testing.T) {
	t.Parallel()
	dsn := storetest.PostgresDSN(t)
	s, err := pgstore.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	f := &store.Fleet{Name: "acme"}
	if err := s.CreateFleet(ctx, f); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateEnrollmentToken(ctx, &store.EnrollmentToken{FleetID: f.ID, Hash: "h", UsesLeft: 1, MaxUses: 1}); err != nil {
		t.Fatal(err)
	}
	d := &store.Device{Name: "dev1", PublicKey: "k"}
	if err := s.EnrollDevice(ctx, "h", time.Now(), d, func(*store.Fleet) (string, error) { return "c", nil }); err != nil {
		t.Fatal(err)
	}
	version := func() string {
		var xmin string
		if err := s.DB().QueryRowContext(ctx, "SELECT xmin::text FROM devices WHERE id = $1", d.ID).Scan(&xmin); err != nil {
			t.Fatal(err)
		}
		return xmin
	}
	seen := time.Now().Truncate(time.Millisecond)
	if err := s.SetDevicePresence(ctx, store.DevicePresence{DeviceID: d.ID, Online: true, At: seen}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDevicePresence(ctx, store.DevicePresence{DeviceID: d.ID, Online: false, At: seen}); err != nil {
		t.Fatal(err)
	}
	before := version()
	// Offline again, with no time (a replayed retained state) or an older one.
	for _, at := range []time.Time{{}, seen.Add(-time.Hour), seen} {
		if err := s.SetDevicePresence(ctx, store.DevicePresence{DeviceID: d.ID, Online: false, At: at}); err != nil {
			t.Fatal(err)
		}
	}
	if after := version(); after != before {
		t.Errorf("the row was written again (xmin %s → %s) by presence that changed nothing", before, after)
	}
	if err := s.SetDevicePresence(ctx, store.DevicePresence{DeviceID: d.ID, Online: true, At: seen.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if version() == before {
		t.Error("a real change was not written")
	}
}
