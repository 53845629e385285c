package control

import (
	"crypto/ed25519"
	"fmt"

	"golang.org/x/crypto/ssh"
)

// ParseControlKey reads the control public key from the authorized_keys
// line a device receives at enrollment ("ssh-ed25519 AAAA... comment").
func ParseControlKey(line string) (ed25519.PublicKey, error) {
	return parseEd25519(line, "control key")
}

// ParseDeviceKey reads a device's enrolled key from its authorized_keys
// line, as the server stores it, for checking what the device signs.
func ParseDeviceKey(line string) (ed25519.PublicKey, error) {
	return parseEd25519(line, "device key")
}

func parseEd25519(line, what string) (ed25519.PublicKey, error) {
	pub, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, fmt.Errorf("control: parse %s: %w", what, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("control: parse %s: more than one key given", what)
	}
	cpk, ok := pub.(ssh.CryptoPublicKey)
	if !ok {
		return nil, fmt.Errorf("control: %s of type %s has no public key", what, pub.Type())
	}
	key, ok := cpk.CryptoPublicKey().(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("control: %s is %s, want ssh-ed25519", what, pub.Type())
	}
	return key, nil
}
