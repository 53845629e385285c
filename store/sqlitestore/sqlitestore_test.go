package sqlitestore_test

import (
	"path/filepath"
	"testing"

	"github.com/porthole/porthole/store"
	"github.com/porthole/porthole/store/sqlitestore"
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
