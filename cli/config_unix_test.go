//go:build unix

package cli

import (
	"os"
	"path/filepath"
	"testing"
)

// TestConfigPermissions tries to leave the token readable by others: a
// config dir and file that already exist with loose modes are tightened.
func TestConfigPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "porthole")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, configFile)
	if err := os.WriteFile(path, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := saveConfig(dir, Config{Token: "pht_secret"}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s has mode %v; want %v", p, got, want)
		}
	}
	// A new dir is made 0700 too.
	fresh := filepath.Join(t.TempDir(), "a", "porthole")
	if err := saveConfig(fresh, Config{}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("new config dir: %v, mode %v; want 0700", err, fi.Mode().Perm())
	}
}
