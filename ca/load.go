package ca

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/keyfile"
)

// Load reads the keys Generate wrote in dir, an API node's. It refuses key
// files that other users can read or write, and a dir others can write
// (they could swap the keys).
func Load(dir string) (*Keys, error) {
	if err := keyfile.CheckDir(dir); err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	var k Keys
	control, err := keyfile.ReadEd25519(filepath.Join(dir, ControlKeyFile))
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	k.Control, k.ControlPub = control, control.Public().(ed25519.PublicKey)
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
	k.UserCAPub, k.HostCAPub = k.UserCA.PublicKey(), k.HostCA.PublicKey()
	if k.TLS, err = loadTLS(dir); err != nil {
		return nil, err
	}
	secret, err := readNodeSecret(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		// A data dir made before the node secret was: the secret the
		// nodes have used since, derived from the control key.
		k.NodeSecret = legacyNodeSecret(control)
	case err != nil:
		return nil, err
	default:
		k.NodeSecret = secret
	}
	return &k, nil
}

// loadTLS reads the data dir's TLS certificate and key.
func loadTLS(dir string) (tls.Certificate, error) {
	certFile, keyFile := filepath.Join(dir, TLSCertFile), filepath.Join(dir, TLSKeyFile)
	keyPEM, err := keyfile.ReadPrivate(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ca: %w", err)
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ca: reading %s: %w", certFile, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ca: loading the TLS certificate %s with key %s: %w", certFile, keyFile, err)
	}
	return cert, nil
}

// readNodeSecret reads dir's node secret, one line; a missing file
// matches os.ErrNotExist.
func readNodeSecret(dir string) (string, error) {
	path := filepath.Join(dir, NodeSecretFile)
	data, err := keyfile.ReadPrivate(path)
	if err != nil {
		return "", fmt.Errorf("ca: %w", err)
	}
	secret := strings.TrimSpace(string(data))
	if len(secret) < 32 {
		return "", fmt.Errorf("ca: %s holds %d characters; a node secret has at least 32 (copy it from an API node's data dir)", path, len(secret))
	}
	return secret, nil
}

// legacyNodeSecret is the node secret of a data dir made before
// NodeSecretFile was: derived from the control key, as the broker node's
// server password was, so that nodes of such a deployment, and node data
// dirs made from it (WriteNodeDir), go on agreeing.
func legacyNodeSecret(control ed25519.PrivateKey) string {
	mac := hmac.New(sha256.New, control.Seed())
	mac.Write([]byte("porthole broker server login v1"))
	return hex.EncodeToString(mac.Sum(nil))
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
