package ca

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/ssh"
)

// ErrNoSigningKeys is the error of signing on a node without the api
// role, whose data dir holds no signing key (LoadNode).
var ErrNoSigningKeys = errors.New("ca: this node holds no signing keys (only nodes with the api role do)")

// clockSkew backdates certificates so a device or client whose clock runs a
// little behind still accepts them.
const clockSkew = 5 * time.Minute

// HostPrincipals are the names a device's host certificate is valid for:
// "<device>.<fleet>.porthole" and the short "<device>.porthole".
func HostPrincipals(fleet, device string) []string {
	return []string{device + "." + fleet + ".porthole", device + ".porthole"}
}

// SignHostCert certifies a device's host key with the host CA, for
// HostPrincipals(fleet, device), valid from now (less a few minutes for
// clock skew) for validFor. Fleet and device must be names as the store
// keeps them ([a-z0-9-]{1,63}), so a principal can never be forged with
// dots.
func (k *Keys) SignHostCert(pub ssh.PublicKey, fleet, device string, now time.Time, validFor time.Duration) (*ssh.Certificate, error) {
	for _, n := range []string{fleet, device} {
		if !validName(n) {
			return nil, fmt.Errorf("ca: %q is not a fleet or device name (1 to 63 of a-z, 0-9 and -)", n)
		}
	}
	return k.signHost(pub, "device:"+fleet+"/"+device, HostPrincipals(fleet, device), now, validFor)
}

// SignRelayHostCert certifies the relay's own host key for principals (the
// relay's public host names), so clients and devices check it against the
// host CA rather than trusting on first use.
func (k *Keys) SignRelayHostCert(principals []string, now time.Time, validFor time.Duration) (*ssh.Certificate, error) {
	if len(principals) == 0 {
		return nil, errors.New("ca: a relay host certificate needs at least one host name")
	}
	return k.signHost(k.RelayHost.PublicKey(), "relay", principals, now, validFor)
}

func (k *Keys) signHost(pub ssh.PublicKey, keyID string, principals []string, now time.Time, validFor time.Duration) (*ssh.Certificate, error) {
	if k.HostCA == nil {
		return nil, ErrNoSigningKeys
	}
	if validFor <= 0 {
		return nil, fmt.Errorf("ca: certificate lifetime %v is not positive", validFor)
	}
	if _, isCert := pub.(*ssh.Certificate); isCert {
		return nil, errors.New("ca: cannot certify a certificate; pass the plain host key")
	}
	var serial [8]byte
	if _, err := rand.Read(serial[:]); err != nil {
		return nil, fmt.Errorf("ca: certificate serial: %w", err)
	}
	cert := &ssh.Certificate{
		Key:             pub,
		Serial:          binary.BigEndian.Uint64(serial[:]),
		CertType:        ssh.HostCert,
		KeyId:           keyID,
		ValidPrincipals: principals,
		ValidAfter:      uint64(now.Add(-clockSkew).Unix()),
		ValidBefore:     uint64(now.Add(validFor).Unix()),
	}
	if err := cert.SignCert(rand.Reader, k.HostCA); err != nil {
		return nil, fmt.Errorf("ca: signing the host certificate for %s: %w", keyID, err)
	}
	return cert, nil
}

// validName reports whether s is a fleet or device name: 1 to 63 of a-z,
// 0-9 and '-'.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
