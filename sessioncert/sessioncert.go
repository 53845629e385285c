// Package sessioncert makes and checks engineers' session certificates:
// OpenSSH user certificates, signed by the server's user CA, each bound to
// one session on one device. The server signs them when it opens a
// session; the relay and the device's embedded SSH server check them. It
// is shared by both sides, so it depends on nothing of the server's.
package sessioncert

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// The certificate's critical options that bind it. They are critical, so
// a stock sshd, which does not know them, refuses the certificate: it
// opens nothing but a Porthole session.
const (
	OptionSession = "porthole-session@porthole.dev" // the session id
	OptionDevice  = "porthole-device@porthole.dev"  // "<fleet>/<device>"
	OptionID      = "porthole-device-id@porthole.dev"
)

// Margin is how long a certificate stays valid past its session's latest
// end, for clocks that disagree a little; and how far back its validity
// starts.
const Margin = 2 * time.Minute

// Claims are what a session certificate says.
type Claims struct {
	Session  string // the session id
	Fleet    string // the device's fleet name
	Device   string // the device's name
	DeviceID string // the device's id in the store
	User     string // who holds it (the engineer's email), for logs
	// ValidAfter and ValidBefore bound the certificate.
	ValidAfter, ValidBefore time.Time
}

// Sign certifies pub (the engineer's key) for the session c names, from
// c.ValidAfter to c.ValidBefore.
func Sign(userCA ssh.Signer, pub ssh.PublicKey, c Claims) (*ssh.Certificate, error) {
	if c.Session == "" || c.Fleet == "" || c.Device == "" || c.DeviceID == "" {
		return nil, errors.New("sessioncert: a certificate needs a session, a fleet, a device and its id")
	}
	// Verify splits "<fleet>/<device>" at the first slash and the key id
	// "<user> <session>" at the first space: claims that hold another
	// would be read back as other claims.
	if strings.Contains(c.Fleet, "/") || strings.Contains(c.User, " ") {
		return nil, fmt.Errorf("sessioncert: fleet %q or user %q cannot be certified: a fleet holds no '/', a user no space", c.Fleet, c.User)
	}
	// OpenSSH's times are unsigned, and the largest, which a ValidBefore a
	// second before 1970 would become, means forever.
	if c.ValidAfter.Unix() < 0 || !c.ValidBefore.After(c.ValidAfter) {
		return nil, fmt.Errorf("sessioncert: validity %s to %s is not a span after 1970", c.ValidAfter.UTC(), c.ValidBefore.UTC())
	}
	if _, ok := pub.(*ssh.Certificate); ok {
		return nil, errors.New("sessioncert: the key to certify is itself a certificate")
	}
	cert := &ssh.Certificate{
		Key:             pub,
		CertType:        ssh.UserCert,
		KeyId:           c.User + " " + c.Session,
		ValidPrincipals: []string{c.Session},
		ValidAfter:      uint64(c.ValidAfter.Unix()),
		ValidBefore:     uint64(c.ValidBefore.Unix()),
		Permissions: ssh.Permissions{
			CriticalOptions: map[string]string{
				OptionSession: c.Session,
				OptionDevice:  c.Fleet + "/" + c.Device,
				OptionID:      c.DeviceID,
			},
			Extensions: map[string]string{
				"permit-pty":             "",
				"permit-port-forwarding": "",
			},
		},
	}
	if err := cert.SignCert(rand.Reader, userCA); err != nil {
		return nil, fmt.Errorf("sessioncert: signing: %w", err)
	}
	return cert, nil
}

// Verify checks that key is a session certificate signed by userCA and
// valid at now, and returns what it claims. The caller checks that the
// claims fit (the session is open, on this device).
func Verify(userCA ssh.PublicKey, key ssh.PublicKey, now time.Time) (Claims, error) {
	cert, ok := key.(*ssh.Certificate)
	if !ok {
		return Claims{}, errors.New("not a certificate: a session needs the certificate `porthole` got for it")
	}
	if cert.CertType != ssh.UserCert {
		return Claims{}, errors.New("not a user certificate")
	}
	if !bytes.Equal(cert.SignatureKey.Marshal(), userCA.Marshal()) {
		return Claims{}, errors.New("certificate signed by another authority")
	}
	opts := cert.CriticalOptions
	session := opts[OptionSession]
	if session == "" {
		return Claims{}, errors.New("certificate names no session")
	}
	checker := ssh.CertChecker{
		SupportedCriticalOptions: []string{OptionSession, OptionDevice, OptionID},
		Clock:                    func() time.Time { return now },
	}
	if err := checker.CheckCert(session, cert); err != nil {
		return Claims{}, err // names expiry, principal or signature
	}
	var c Claims
	c.Session = session
	c.DeviceID = opts[OptionID]
	fleet, device, ok := strings.Cut(opts[OptionDevice], "/")
	if !ok || len(fleet) == 0 || len(device) == 0 || c.DeviceID == "" {
		return Claims{}, errors.New("certificate names no device")
	}
	c.Fleet, c.Device = fleet, device
	c.User, _, _ = strings.Cut(cert.KeyId, " ") // see Sign
	c.ValidAfter = time.Unix(int64(cert.ValidAfter), 0)
	c.ValidBefore = time.Unix(int64(cert.ValidBefore), 0)
	return c, nil
}
