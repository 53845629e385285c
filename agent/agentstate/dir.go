// Package agentstate is the device's state directory as the agent keeps
// it: what enrollment left there (the device key, its host certificate and
// the enrollment record, loaded and checked by Load), the locks that keep
// one agent per directory, and the modes and group by which the owner
// reads the agent's log and recordings without being root.
package agentstate

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/porthole/porthole/keyfile"
)

// DefaultDir is where the agent keeps its state when none is given.
const DefaultDir = "/var/lib/porthole-agent"

// Files in the state directory.
const (
	DeviceKeyFile  = "device_key"          // the device's ed25519 key, OpenSSH PEM, 0600
	HostCertFile   = "device_key-cert.pub" // its host certificate, signed by the host CA
	EnrollmentFile = "enrollment.json"     // what the server said at enrollment
)

// Prepare creates dir (0700) if it is missing, and otherwise checks
// that nobody but its owner, the current user, can change what is in it.
func Prepare(dir string) error {
	if err := os.MkdirAll(dir, 0o700); errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("cannot create the state directory %s (%w); run as root, or choose another directory with --state", dir, err)
	} else if err != nil {
		return fmt.Errorf("creating the state directory %s: %w", dir, err)
	}
	return Check(dir)
}

// Check refuses a state directory that other users could write to
// (they could swap the device key or the trusted CAs) or that belongs to
// someone else.
func Check(dir string) error {
	err := keyfile.CheckDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("the state directory %s does not exist; enroll this device first (porthole-agent enroll)", dir)
	} else if err != nil {
		return fmt.Errorf("the state directory cannot be used: %w", err)
	}
	return nil
}
