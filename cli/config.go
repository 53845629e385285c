package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/porthole/porthole/internal/atomicfile"
)

// Config is the login state kept in config.json. The token is a secret, so
// the file is 0600 in a 0700 directory, and it is replaced atomically so a
// crash never leaves half a file.
type Config struct {
	Server    string    `json:"server,omitempty"`   // URL of the server logged in to
	Token     string    `json:"token,omitempty"`    // bearer token for Server
	TokenID   string    `json:"token_id,omitempty"` // its ID, to revoke it
	Email     string    `json:"email,omitempty"`    // who logged in
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Pins maps a server URL to the fingerprint of the certificate it
	// showed at first login ("sha256:<hex>"). Pins outlive logouts: trust
	// on first use is worth only as much as its memory.
	Pins map[string]string `json:"pins,omitempty"`
}

// forgetLogin drops the token but keeps the server and the pins.
func (c *Config) forgetLogin() {
	c.Token, c.TokenID, c.Email, c.ExpiresAt = "", "", "", time.Time{}
}

const configFile = "config.json"

// configDir is where porthole keeps its login, the servers' pins and the
// host CA that ssh-config writes, for this system (configDirFor).
func configDir(getenv func(string) string) (string, error) {
	return configDirFor(runtime.GOOS, getenv)
}

// configDirFor is $XDG_CONFIG_HOME/porthole wherever that is set, else
// ~/.config/porthole, and on Windows %LOCALAPPDATA%\porthole. macOS keeps
// ~/.config rather than "Library/Application Support", as gh and other
// command-line tools do: its path has no space for ssh_config and the shell
// to quote, and leaves room in the 104 bytes of a Unix socket's path for
// the session agents' sockets. Windows' is the local application data of
// the user's profile, not the roaming one (%APPDATA%), which a domain may
// copy to a file server: the token stays on this machine.
func configDirFor(goos string, getenv func(string) string) (string, error) {
	if x := getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "porthole"), nil
	}
	if goos == "windows" {
		if d := getenv("LOCALAPPDATA"); d != "" {
			return filepath.Join(d, "porthole"), nil
		}
		return "", errors.New("cannot tell where to keep the login: LOCALAPPDATA is not set (Windows sets it for every user; set it, or XDG_CONFIG_HOME)")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "porthole"), nil
	}
	return "", errors.New("cannot tell where to keep the login: neither XDG_CONFIG_HOME nor HOME is set")
}

// loadConfig reads dir/config.json; a missing file is an empty Config.
func loadConfig(dir string) (Config, error) {
	path := filepath.Join(dir, configFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Config{}, nil
	}
	if err != nil {
		return Config{}, fmt.Errorf("reading the saved login: %w", err)
	}
	var c Config
	if err := json.Unmarshal(data, &c); err != nil {
		return Config{}, fmt.Errorf("the saved login in %s is damaged (%w): remove the file and run `porthole login`", path, err)
	}
	return c, nil
}

// saveConfig writes c to dir/config.json, mode 0600, atomically
// (atomicfile.WriteFile). It makes dir private (makePrivateDir), also when
// it exists looser, since the token is readable through it.
func saveConfig(dir string, c Config) error {
	if err := makePrivateDir(dir); err != nil {
		return fmt.Errorf("saving the login: %w", err)
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("saving the login: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, configFile), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("saving the login: %w", err)
	}
	return nil
}

// loadConfig finds and reads the saved login.
func (a *app) loadConfig() (dir string, c Config, err error) {
	dir, err = configDir(a.io.Getenv)
	if err != nil {
		return "", Config{}, err
	}
	c, err = loadConfig(dir)
	return dir, c, err
}
