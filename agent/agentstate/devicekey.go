package agentstate

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/porthole/porthole/internal/atomicfile"
	"github.com/porthole/porthole/keyfile"
)

// DeviceKey returns the device key in dir, making it first if there is
// none (a key left by an enrollment that failed is used again).
func DeviceKey(dir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, DeviceKeyFile)
	priv, err := LoadDeviceKey(path)
	if !errors.Is(err, os.ErrNotExist) {
		return priv, err
	}
	priv, data, err := keyfile.NewEd25519("porthole device key")
	if err != nil {
		return nil, fmt.Errorf("making the device key: %w", err)
	}
	if err := atomicfile.WriteFile(path, data, 0o600); err != nil {
		return nil, err
	}
	return priv, nil
}

// LoadDeviceKey reads the device's private key, refusing one that other
// users can open. A missing key is an error that matches os.ErrNotExist.
func LoadDeviceKey(path string) (ed25519.PrivateKey, error) {
	priv, err := keyfile.ReadEd25519(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, err
	} else if err != nil {
		return nil, fmt.Errorf("the device key cannot be used: %w", err)
	}
	return priv, nil
}
