package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "porthole")
	want := Config{
		Server: "https://p.example.com", Token: "pht_secret", TokenID: "tok1", Email: "a@example.com",
		ExpiresAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
		Pins:      map[string]string{"https://p.example.com": "sha256:ab"},
	}
	if err := saveConfig(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := loadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Server != want.Server || got.Token != want.Token || got.TokenID != want.TokenID ||
		got.Email != want.Email || !got.ExpiresAt.Equal(want.ExpiresAt) || got.Pins["https://p.example.com"] != "sha256:ab" {
		t.Errorf("loadConfig = %+v; want %+v", got, want)
	}
}

func TestLoadConfigMissingIsEmpty(t *testing.T) {
	c, err := loadConfig(filepath.Join(t.TempDir(), "nothing"))
	if err != nil || c.Server != "" || c.Token != "" {
		t.Errorf("loadConfig of a missing dir = %+v, %v; want empty, nil", c, err)
	}
}

func TestLoadConfigDamaged(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, configFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := loadConfig(dir)
	if err == nil || !strings.Contains(err.Error(), "porthole login") {
		t.Errorf("loadConfig of a damaged file: %v; want an error saying to log in again", err)
	}
}

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

// TestConfigAtomic: saving replaces the file by rename, so a reader never
// sees half a file, and no temporary file is left behind.
func TestConfigAtomic(t *testing.T) {
	dir := t.TempDir()
	if err := saveConfig(dir, Config{Server: "https://one.example.com"}); err != nil {
		t.Fatal(err)
	}
	old, err := os.Stat(filepath.Join(dir, configFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := saveConfig(dir, Config{Server: "https://two.example.com"}); err != nil {
		t.Fatal(err)
	}
	cur, err := os.Stat(filepath.Join(dir, configFile))
	if err != nil {
		t.Fatal(err)
	}
	if os.SameFile(old, cur) {
		t.Error("saveConfig rewrote the file in place; want a new file renamed over it")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("config dir holds %v; want only %s", names, configFile)
	}
	// A save that cannot complete (here: the rename, as config.json is a
	// directory) leaves no temporary file behind.
	blocked := t.TempDir()
	if err := os.Mkdir(filepath.Join(blocked, configFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := saveConfig(blocked, Config{Token: "pht_secret"}); err == nil {
		t.Error("saveConfig over a directory succeeded")
	}
	if entries, _ := os.ReadDir(blocked); len(entries) != 1 {
		t.Errorf("a failed save left %d entries; want only the blocking one", len(entries))
	}
}

func TestConfigDir(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"xdg wins", map[string]string{"XDG_CONFIG_HOME": "/x", "HOME": "/h"}, "/x/porthole"},
		{"home", map[string]string{"HOME": "/h"}, "/h/.config/porthole"},
		{"neither", map[string]string{}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := configDir(func(k string) string { return tt.env[k] })
			if got != tt.want || (err != nil) != (tt.want == "") {
				t.Errorf("configDir = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
