package ca

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/keyfile"
)

// Load reads the keys Generate wrote in dir. It refuses key files that
// other users can read or write, and a dir others can write (they could
// swap the keys).
func Load(dir string) (*Keys, error) {
	if err := keyfile.CheckDir(dir); err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	var k Keys
	control, err := keyfile.ReadEd25519(filepath.Join(dir, ControlKeyFile))
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	k.Control = control
	for _, s := range []struct {
		file   string
		signer *ssh.Signer
	}{
		{UserCAFile, &k.UserCA},
		{HostCAFile, &k.HostCA},
		{RelayHostKeyFile, &k.RelayHost},
	} {
		priv, err := keyfile.ReadEd25519(filepath.Join(dir, s.file))
		if err != nil {
			return nil, fmt.Errorf("ca: %w", err)
		}
		if *s.signer, err = ssh.NewSignerFromKey(priv); err != nil {
			return nil, fmt.Errorf("ca: %s: %w", filepath.Join(dir, s.file), err)
		}
	}
	certFile, keyFile := filepath.Join(dir, TLSCertFile), filepath.Join(dir, TLSKeyFile)
	keyPEM, err := keyfile.ReadPrivate(keyFile)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("ca: reading %s: %w", certFile, err)
	}
	if k.TLS, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return nil, fmt.Errorf("ca: loading the TLS certificate %s with key %s: %w", certFile, keyFile, err)
	}
	return &k, nil
}

// LoadTLS reads an operator's certificate chain and key (PEM). Unlike the
// data dir's own key, its permissions are left to the operator: Debian and
// others share TLS keys with a group (0640, ssl-cert).
func LoadTLS(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ca: loading the TLS certificate %s with key %s: %w", certFile, keyFile, err)
	}
	return cert, nil
}
