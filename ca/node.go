package ca

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/keyfile"
)

// ErrSigningKeysHere is LoadNode's error for a data dir that holds a
// signing key, which a node without the api role must not.
var ErrSigningKeysHere = errors.New("ca: the data dir holds signing keys, which only nodes with the api role may hold")

// SigningKeysIn returns the signing key files (SigningKeyFiles) that dir
// holds, as paths.
func SigningKeysIn(dir string) []string {
	var found []string
	for _, name := range SigningKeyFiles {
		path := filepath.Join(dir, name)
		if _, err := os.Lstat(path); err == nil {
			found = append(found, path)
		}
	}
	return found
}

// LoadNode reads the data dir of a node without the api role, as
// WriteNodeDir made it: the signing keys' public halves, the TLS
// certificate, the node secret, the relay's host key and its certificate,
// which must be the host CA's and for that key (when it expires is the
// caller's to check). It refuses a dir that holds any signing key
// (ErrSigningKeysHere, naming the files), and loose permissions as Load
// does. The Keys it returns have no signing key: Control, UserCA and
// HostCA are nil.
func LoadNode(dir string) (*Keys, error) {
	if err := keyfile.CheckDir(dir); err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	if found := SigningKeysIn(dir); len(found) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrSigningKeysHere, strings.Join(found, ", "))
	}
	var k Keys
	pubs := []struct {
		file string
		pub  *ssh.PublicKey
	}{
		{ControlPubFile, nil},
		{UserCAPubFile, &k.UserCAPub},
		{HostCAPubFile, &k.HostCAPub},
	}
	var control ssh.PublicKey
	pubs[0].pub = &control
	for _, p := range pubs {
		path := filepath.Join(dir, p.file)
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("ca: reading %s: %w", path, err)
		}
		if *p.pub, _, _, _, err = ssh.ParseAuthorizedKey(data); err != nil {
			return nil, fmt.Errorf("ca: %s is not a public key: %w", path, err)
		}
		if (*p.pub).Type() != ssh.KeyAlgoED25519 {
			return nil, fmt.Errorf("ca: %s holds a %s key; Porthole's keys are ed25519", path, (*p.pub).Type())
		}
	}
	k.ControlPub = control.(ssh.CryptoPublicKey).CryptoPublicKey().(ed25519.PublicKey)
	hostKey, err := keyfile.ReadEd25519(filepath.Join(dir, RelayHostKeyFile))
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	if k.RelayHost, err = ssh.NewSignerFromKey(hostKey); err != nil {
		return nil, fmt.Errorf("ca: %s: %w", filepath.Join(dir, RelayHostKeyFile), err)
	}
	if k.RelayHostCert, err = readRelayHostCert(filepath.Join(dir, RelayHostCertFile), k.HostCAPub, k.RelayHost.PublicKey()); err != nil {
		return nil, err
	}
	if k.TLS, err = loadTLS(dir); err != nil {
		return nil, err
	}
	if k.NodeSecret, err = readNodeSecret(dir); err != nil {
		return nil, err
	}
	return &k, nil
}

// readRelayHostCert reads the relay's host certificate at path and checks
// that hostCA signed it, for key.
func readRelayHostCert(path string, hostCA, key ssh.PublicKey) (*ssh.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ca: reading the relay's host certificate %s: %w", path, err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		return nil, fmt.Errorf("ca: %s is not an SSH certificate: %w", path, err)
	}
	cert, ok := pub.(*ssh.Certificate)
	if !ok || cert.CertType != ssh.HostCert {
		return nil, fmt.Errorf("ca: %s is not an SSH host certificate", path)
	}
	if !bytes.Equal(cert.Key.Marshal(), key.Marshal()) {
		return nil, fmt.Errorf("ca: %s certifies another key than %s beside it (make the node's data dir again: portholed init-node)", path, RelayHostKeyFile)
	}
	// The signature, checked at a moment the certificate is valid: its
	// dates are the caller's to judge, in words.
	checker := &ssh.CertChecker{Clock: func() time.Time { return time.Unix(int64(cert.ValidAfter), 0) }}
	if len(cert.ValidPrincipals) == 0 {
		return nil, fmt.Errorf("ca: %s names no host", path)
	}
	if !bytes.Equal(cert.SignatureKey.Marshal(), hostCA.Marshal()) {
		return nil, fmt.Errorf("ca: %s was not issued by the host CA in %s (another deployment's?)", path, HostCAPubFile)
	}
	if err := checker.CheckCert(cert.ValidPrincipals[0], cert); err != nil {
		return nil, fmt.Errorf("ca: %s: %w", path, err)
	}
	return cert, nil
}

// NodeDir describes the data dir WriteNodeDir makes for a node without
// the api role.
type NodeDir struct {
	// Dir is made 0700; it must not exist, or be empty.
	Dir string
	// RelayHosts are the host names (or addresses) devices and engineers
	// reach the node's relay at (the host of its relay.public_addr), for
	// its host certificate. Required: a broker-only node gets one too, so
	// that it can take the relay role later.
	RelayHosts []string
	// ValidFor is the host certificate's life. Zero: a year.
	ValidFor time.Duration
	// Now is when it starts. Zero: time.Now().
	Now time.Time
}

// DefaultNodeCertLife is NodeDir.ValidFor's default.
const DefaultNodeCertLife = 365 * 24 * time.Hour

// WriteNodeDir makes a node's data dir from an API node's keys k: the
// signing keys' public halves, k's TLS certificate and key and node
// secret, and a new relay host key with its host certificate, signed by
// k's host CA for d.RelayHosts. It writes no signing key. It returns the
// certificate. Like Generate it never overwrites, and removes what it
// wrote if it fails half way.
func WriteNodeDir(k *Keys, d NodeDir) (*ssh.Certificate, error) {
	if !k.CanSign() {
		return nil, ErrNoSigningKeys
	}
	if len(d.RelayHosts) == 0 {
		return nil, errors.New("ca: a node's data dir needs the host name its relay is reached at")
	}
	if d.ValidFor == 0 {
		d.ValidFor = DefaultNodeCertLife
	}
	if d.Now.IsZero() {
		d.Now = time.Now()
	}
	if entries, err := os.ReadDir(d.Dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("ca: %s already exists and is not empty; refusing to overwrite it (choose a new directory)", d.Dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("ca: checking %s: %w", d.Dir, err)
	}
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("ca: creating %s: %w", d.Dir, err)
	}
	if err := keyfile.CheckDir(d.Dir); err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	hostKey, hostKeyPEM, err := keyfile.NewEd25519("porthole relay host key")
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	hostSigner, err := ssh.NewSignerFromKey(hostKey)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	cert, err := k.signHost(hostSigner.PublicKey(), "relay", d.RelayHosts, d.Now, d.ValidFor)
	if err != nil {
		return nil, err
	}
	var certPEM bytes.Buffer
	for _, der := range k.TLS.Certificate {
		pem.Encode(&certPEM, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	tlsKeyDER, err := x509.MarshalPKCS8PrivateKey(k.TLS.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("ca: encoding the TLS key: %w", err)
	}
	controlPub, err := ssh.NewPublicKey(k.ControlPub)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	files := []newFile{
		{ControlPubFile, ssh.MarshalAuthorizedKey(controlPub), 0o644},
		{UserCAPubFile, ssh.MarshalAuthorizedKey(k.UserCAPub), 0o644},
		{HostCAPubFile, ssh.MarshalAuthorizedKey(k.HostCAPub), 0o644},
		{RelayHostKeyFile, hostKeyPEM, 0o600},
		{RelayHostCertFile, ssh.MarshalAuthorizedKey(cert), 0o644},
		{TLSCertFile, certPEM.Bytes(), 0o644},
		{TLSKeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: tlsKeyDER}), 0o600},
		{NodeSecretFile, []byte(k.NodeSecret + "\n"), 0o600},
	}
	if err := writeAll(d.Dir, files); err != nil {
		return nil, err
	}
	return cert, nil
}
