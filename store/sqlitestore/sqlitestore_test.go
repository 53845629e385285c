package sqlitestore_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/porthole/porthole/store"
	"github.com/porthole/porthole/store/sqlitestore"
	"github.com/porthole/porthole/store/sqlstore"
	"github.com/porthole/porthole/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, storetest.OpenSQLite)
}

func TestStoreInMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlitestore.Open(sqlitestore.Memory)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestSameDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "porthole.db")
	storetest.RunSameDatabase(t, func() (store.Store, error) { return sqlitestore.Open(path) })
}

// TestUpgradeFleetPolicy: migration 0007 over a database at version 6.
func TestUpgradeFleetPolicy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "porthole.db")
	storetest.RunUpgradeFleetPolicy(t, func(version int) *sql.DB {
		db, err := sqlitestore.OpenDB(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := sqlstore.MigrateTo(t.Context(), db, sqlitestore.Dialect(), version); err != nil {
			t.Fatal(err)
		}
		return db
	}, func() store.Store {
		s, err := sqlitestore.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
