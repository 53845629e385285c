package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/porthole/porthole/keyfile"
)

// DefaultStateDir is where the agent keeps its state when none is given.
const DefaultStateDir = "/var/lib/porthole-agent"

// Files in the state directory.
const (
	DeviceKeyFile  = "device_key"          // the device's ed25519 key, OpenSSH PEM, 0600
	HostCertFile   = "device_key-cert.pub" // its host certificate, signed by the host CA
	EnrollmentFile = "enrollment.json"     // what the server said at enrollment
)

// prepareStateDir creates dir (0700) if it is missing, and otherwise checks
// that nobody but its owner, the current user, can change what is in it.
func prepareStateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("cannot create the state directory %s (%w); run as root, or choose another directory with --state", dir, err)
	} else if err != nil {
		return fmt.Errorf("creating the state directory %s: %w", dir, err)
	}
	return checkStateDir(dir)
}

// checkStateDir refuses a state directory that other users could write to
// (they could swap the device key or the trusted CAs) or that belongs to
// someone else.
func checkStateDir(dir string) error {
	err := keyfile.CheckDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("the state directory %s does not exist; enroll this device first (porthole-agent enroll)", dir)
	} else if err != nil {
		return fmt.Errorf("the state directory cannot be used: %w", err)
	}
	return nil
}

// writeFileAtomic replaces path with data so that a reader or a crash sees
// either the old file or the whole new one: it writes a temporary file in
// the same directory, syncs it, renames it into place and syncs the
// directory.
func writeFileAtomic(path string, data []byte, mode os.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			err = fmt.Errorf("writing %s: %w", path, err)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
