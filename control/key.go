package control

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"golang.org/x/crypto/ssh"
)

// ParseControlKey reads the control public key from the authorized_keys
// line a device receives at enrollment ("ssh-ed25519 AAAA... comment").
func ParseControlKey(line string) (ed25519.PublicKey, error) {
	pub, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, fmt.Errorf("control: parse control key: %w", err)
	}
	if len(rest) != 0 {
		return nil, errors.New("control: parse control key: more than one key given")
	}
	cpk, ok := pub.(ssh.CryptoPublicKey)
	if !ok {
		return nil, fmt.Errorf("control: control key of type %s has no public key", pub.Type())
	}
	key, ok := cpk.CryptoPublicKey().(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("control: control key is %s, want ssh-ed25519", pub.Type())
	}
	return key, nil
}
