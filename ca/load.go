package ca

import (
	"crypto/ed25519"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

// Load reads the keys Generate wrote in dir. It refuses key files that
// other users can read or write, and a dir others can write (they could
// swap the keys).
func Load(dir string) (*Keys, error) {
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	var k Keys
	control, err := loadEd25519(dir, ControlKeyFile)
	if err != nil {
		return nil, err
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
		priv, err := loadEd25519(dir, s.file)
		if err != nil {
			return nil, err
		}
		if *s.signer, err = ssh.NewSignerFromKey(priv); err != nil {
			return nil, fmt.Errorf("ca: %s: %w", filepath.Join(dir, s.file), err)
		}
	}
	certFile, keyFile := filepath.Join(dir, TLSCertFile), filepath.Join(dir, TLSKeyFile)
	keyPEM, err := readPrivate(keyFile)
	if err != nil {
		return nil, err
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

// loadEd25519 reads an OpenSSH ed25519 private key from dir/name.
func loadEd25519(dir, name string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, name)
	data, err := readPrivate(path)
	if err != nil {
		return nil, err
	}
	raw, err := ssh.ParseRawPrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("ca: %s is not an OpenSSH private key: %w", path, err)
	}
	switch key := raw.(type) {
	case *ed25519.PrivateKey:
		return *key, nil
	case ed25519.PrivateKey:
		return key, nil
	}
	return nil, fmt.Errorf("ca: %s holds a %T; Porthole's keys are ed25519", path, raw)
}

// readPrivate reads a secret file after checking that only its owner can
// read or write it.
func readPrivate(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ca: opening %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("ca: checking %s: %w", path, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("ca: %s is open to other users (mode %v); a private key must be private: run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("ca: reading %s: %w", path, err)
	}
	return data, nil
}

// checkDir refuses a key directory that other users can write: they could
// replace the keys.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("ca: checking %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("ca: %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("ca: %s can be written by other users (mode %v), who could replace the keys: run chmod 700 %s", dir, fi.Mode().Perm(), dir)
	}
	return nil
}
