package agentstate

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/crypto/ssh"
)

// CheckHostCert parses an OpenSSH host certificate and checks that it
// certifies devicePub, is signed by the host CA hostCA (authorized_keys
// line) and names the device "<name>.<fleet>.porthole". It does not judge
// the validity period: see CheckCertTime.
func CheckHostCert(certLine string, devicePub ssh.PublicKey, hostCA, fleet, name string) (*ssh.Certificate, error) {
	ca, _, _, _, err := ssh.ParseAuthorizedKey([]byte(hostCA))
	if err != nil {
		return nil, fmt.Errorf("the host CA key is not an SSH public key: %w", err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(certLine))
	if err != nil {
		return nil, fmt.Errorf("the host certificate cannot be parsed: %w", err)
	}
	cert, ok := pub.(*ssh.Certificate)
	if !ok {
		return nil, errors.New("the host certificate is a plain key, not a certificate")
	}
	if !bytes.Equal(cert.Key.Marshal(), devicePub.Marshal()) {
		return nil, errors.New("the host certificate is for another key than this device's")
	}
	checker := &ssh.CertChecker{
		IsHostAuthority: func(auth ssh.PublicKey, _ string) bool {
			return bytes.Equal(auth.Marshal(), ca.Marshal())
		},
		// Any instant inside the validity period: time is judged apart,
		// with a message about the clock.
		Clock: func() time.Time { return time.Unix(int64(cert.ValidAfter), 0) },
	}
	addr := net.JoinHostPort(name+"."+fleet+".porthole", "22")
	if err := checker.CheckHostKey(addr, nil, cert); err != nil {
		return nil, fmt.Errorf("the host certificate does not check out against the host CA: %w", err)
	}
	return cert, nil
}

// CheckCertTime reports a certificate that is not valid at now, naming the
// device's clock as the likely culprit: a device without a real-time clock
// that has not synchronised yet thinks it is 1970.
func CheckCertTime(cert *ssh.Certificate, now time.Time) error {
	after, before := time.Unix(int64(cert.ValidAfter), 0), time.Unix(int64(cert.ValidBefore), 0)
	if cert.ValidBefore != ssh.CertTimeInfinity && !now.Before(before) || now.Before(after) {
		return fmt.Errorf("the host certificate is valid from %s to %s, but this device's clock says %s; set the clock (NTP) and try again",
			after.UTC().Format(time.RFC3339), before.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}
