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
		goos string
		env  map[string]string
		want string
	}{
		{"xdg wins", "linux", map[string]string{"XDG_CONFIG_HOME": "/x", "HOME": "/h"}, "/x/porthole"},
		{"home", "linux", map[string]string{"HOME": "/h"}, "/h/.config/porthole"},
		{"macOS keeps ~/.config", "darwin", map[string]string{"HOME": "/Users/ann"}, "/Users/ann/.config/porthole"},
		{"neither", "linux", map[string]string{}, ""},
		{"windows local app data", "windows", map[string]string{"LOCALAPPDATA": "/c/Users/ann/AppData/Local", "HOME": "/h",
			"APPDATA": "/c/Users/ann/AppData/Roaming"}, "/c/Users/ann/AppData/Local/porthole"},
		{"windows xdg wins", "windows", map[string]string{"XDG_CONFIG_HOME": "/x", "LOCALAPPDATA": "/l"}, "/x/porthole"},
		{"windows without LOCALAPPDATA", "windows", map[string]string{"HOME": "/h"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := configDirFor(tt.goos, func(k string) string { return tt.env[k] })
			if got != tt.want || (err != nil) != (tt.want == "") {
				t.Errorf("configDirFor(%q) = %q, %v; want %q", tt.goos, got, err, tt.want)
			}
		})
	}
}

// TestPrivateDirSDDL: the config dir's DACL on Windows lets in the user,
// SYSTEM and the Administrators only, is not inherited from the parent,
// and is inherited by what the dir holds.
func TestPrivateDirSDDL(t *testing.T) {
	const sid = "S-1-5-21-1-2-3-1001"
	got := privateDirSDDL(sid)
	if !strings.HasPrefix(got, "D:P(") {
		t.Errorf("privateDirSDDL = %q; want a protected DACL (D:P)", got)
	}
	for _, who := range []string{sid, "SY", "BA"} {
		if !strings.Contains(got, "(A;OICI;FA;;;"+who+")") {
			t.Errorf("privateDirSDDL = %q; want full control for %s, inherited", got, who)
		}
	}
	if n := strings.Count(got, "(A;"); n != 3 {
		t.Errorf("privateDirSDDL = %q grants %d entries; want 3", got, n)
	}
}
