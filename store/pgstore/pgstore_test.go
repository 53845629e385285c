package pgstore_test

import (
	"strings"
	"testing"

	"github.com/porthole/porthole/store"
	"github.com/porthole/porthole/store/pgstore"
	"github.com/porthole/porthole/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, storetest.OpenPostgres)
}

func TestSameDatabase(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	storetest.RunSameDatabase(t, func() (store.Store, error) { return pgstore.Open(t.Context(), dsn) })
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
