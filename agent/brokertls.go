package agent

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/porthole/porthole/agent/agentstate"
	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/keyfile"
)

// ErrBrokerUntrusted matches (errors.Is) the error a TLS handshake with
// the server's broker fails with when its certificate is not the pinned one.
var ErrBrokerUntrusted = errors.New("agent: the broker's certificate is not trusted")

// untrustedError is a pin mismatch, in words for the device's owner.
type untrustedError struct{ msg string }

func (e *untrustedError) Error() string        { return e.msg }
func (e *untrustedError) Is(target error) bool { return target == ErrBrokerUntrusted }

func untrusted(format string, args ...any) error {
	return &untrustedError{msg: fmt.Sprintf(format, args...)}
}

// brokerTLS is the TLS configuration for the broker at u (an mqtts:// URL).
//
// The server's own broker (external false) is trusted the way the device
// trusted the server at enrollment: its certificate must be the one whose
// fingerprint the server reported then. When the device enrolled without a
// pin, because the system's roots trusted the server, a certificate those
// roots vouch for is accepted too, so that an operator can renew a
// publicly signed certificate without re-enrolling every device.
//
// An external broker is checked against the system's roots, or CAFile, for
// u's host name, and gets ClientCert if one is configured.
func brokerTLS(u *url.URL, enr *agentstate.Enrollment, bc BrokerConfig) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	if !bc.external() {
		// The server's own port routes by ALPN (as AWS IoT Core does on
		// 443); a dedicated broker port ignores it.
		cfg.NextProtos = []string{"mqtt"}
		if enr.TLSFingerprint == "" {
			return cfg, nil
		}
		if !validFingerprint(enr.TLSFingerprint) {
			return nil, fmt.Errorf("the enrollment record holds a damaged TLS fingerprint %q; enroll the device again", enr.TLSFingerprint)
		}
		// The chain is checked by hand below: the pin replaces it.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = pinVerifier(enr.TLSFingerprint, u.Host, nil, enr.Fingerprint == "")
		return cfg, nil
	}
	if bc.CAFile != "" {
		pem, err := os.ReadFile(bc.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading broker.ca_file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("broker.ca_file %s holds no PEM certificate", bc.CAFile)
		}
	}
	if bc.ClientCert != "" {
		cert, err := clientCertificate(bc.ClientCert, bc.ClientKey)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// clientCertificate loads a PEM certificate and its key, which must be
// private to its owner.
func clientCertificate(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("reading broker.client_cert: %w", err)
	}
	keyPEM, err := keyfile.ReadPrivate(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("broker.client_key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("broker.client_cert %s and client_key %s do not make a certificate and its key: %w", certFile, keyFile, err)
	}
	return cert, nil
}

// pinVerifier accepts the broker's certificate if its leaf has fingerprint
// pin or, when orRoots is set, if roots (nil: the system's) vouch for it as
// a certificate of host's name. host is host:port.
func pinVerifier(pin, host string, roots *x509.CertPool, orRoots bool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return untrusted("the broker at %s presented no certificate", host)
		}
		leaf := cs.PeerCertificates[0]
		got := apiclient.Fingerprint(leaf)
		if strings.EqualFold(got, pin) {
			return nil
		}
		if orRoots {
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			name, _, err := net.SplitHostPort(host)
			if err != nil {
				name = host
			}
			_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: name})
			if err == nil {
				return nil
			}
			return untrusted("the broker at %s presented the certificate %s, neither %s that this device enrolled with nor one this system trusts (%v); check the server's certificate with whoever runs it",
				host, got, pin, err)
		}
		return untrusted("the broker at %s presented the certificate %s, not %s that this device enrolled with: the server's certificate changed, or this is not your server; if it changed on purpose, enroll the device again",
			host, got, pin)
	}
}

// validFingerprint: "sha256:" and 64 hex digits.
func validFingerprint(s string) bool {
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	for _, c := range []byte(strings.ToLower(h)) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
