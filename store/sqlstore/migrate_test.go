package sqlstore

import (
	"testing"
	"testing/fstest"
)

func TestLoadMigrations(t *testing.T) {
	ms, err := loadMigrations(migrationFiles, "migrations")
	if err != nil {
		t.Fatalf("the embedded migrations: %v", err)
	}
	if len(ms) == 0 || ms[0].name != "0001_init.sql" {
		t.Fatalf("the embedded migrations start %+v; want 0001_init.sql", ms)
	}
	file := func() *fstest.MapFile { return &fstest.MapFile{Data: []byte("SELECT 1")} }
	for _, tt := range []struct {
		name  string
		files fstest.MapFS
	}{
		{"a gap", fstest.MapFS{"m/0001_a.sql": file(), "m/0003_c.sql": file()}},
		{"a repeat", fstest.MapFS{"m/0001_a.sql": file(), "m/0001_b.sql": file()}},
		{"not starting at 1", fstest.MapFS{"m/0002_a.sql": file()}},
		{"no number", fstest.MapFS{"m/init.sql": file()}},
		{"not .sql", fstest.MapFS{"m/0001_a.txt": file()}},
	} {
		if _, err := loadMigrations(tt.files, "m"); err == nil {
			t.Errorf("loadMigrations with %s: no error; want one", tt.name)
		}
	}
}
