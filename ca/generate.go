package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/porthole/porthole/keyfile"
)

// tlsValidity is how long the self-signed API certificate lasts. Clients pin
// it by fingerprint, so a renewal means re-pinning: make it long.
const tlsValidity = 2 * 365 * 24 * time.Hour

// Generate makes new keys and a self-signed TLS certificate in dir (created
// 0700 if absent): control_key, user_ca, host_ca, relay_host_key (ed25519,
// OpenSSH PEM), tls.crt and tls.key (ECDSA P-256), and node_secret (a
// random line). The certificate names
// tlsHosts (addresses as IP SANs, anything else as DNS SANs; a ":port" is
// dropped) and always localhost, 127.0.0.1 and ::1. Key files are 0600.
//
// Generate never overwrites: if any of the files exists it writes nothing
// and says which one. If writing fails half way it removes what it wrote.
func Generate(dir string, tlsHosts []string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("ca: creating %s: %w", dir, err)
	}
	if err := keyfile.CheckDir(dir); err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	files, err := newFiles(tlsHosts, time.Now())
	if err != nil {
		return err
	}
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("ca: %s already exists; refusing to overwrite keys (move it away, or use another directory)", path)
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("ca: checking %s: %w", path, err)
		}
	}
	return writeAll(dir, files)
}

// writeAll writes files into dir, each new; if one fails, those written
// before it are removed, so that a directory is never left half made.
func writeAll(dir string, files []newFile) error {
	var written []string
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := writeNew(path, f.data, f.mode); err != nil {
			for _, p := range written {
				os.Remove(p)
			}
			return err
		}
		written = append(written, path)
	}
	return nil
}

type newFile struct {
	name string
	data []byte
	mode os.FileMode
}

// newFiles makes every key and the certificate in memory, so that nothing is
// written unless all of them could be made.
func newFiles(tlsHosts []string, now time.Time) ([]newFile, error) {
	var files []newFile
	for _, k := range []struct{ name, comment string }{
		{ControlKeyFile, "porthole control key"},
		{UserCAFile, "porthole user CA"},
		{HostCAFile, "porthole host CA"},
		{RelayHostKeyFile, "porthole relay host key"},
	} {
		_, data, err := keyfile.NewEd25519(k.comment)
		if err != nil {
			return nil, fmt.Errorf("ca: making the %s: %w", k.comment, err)
		}
		files = append(files, newFile{k.name, data, 0o600})
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	files = append(files, newFile{NodeSecretFile, []byte(hex.EncodeToString(secret) + "\n"), 0o600})
	certPEM, keyPEM, err := selfSignedTLS(tlsHosts, now)
	if err != nil {
		return nil, fmt.Errorf("ca: making the TLS certificate: %w", err)
	}
	// The certificate is public; 0644 lets an operator hand it around.
	return append(files, newFile{TLSCertFile, certPEM, 0o644}, newFile{TLSKeyFile, keyPEM, 0o600}), nil
}

func selfSignedTLS(hosts []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "porthole", Organization: []string{"Porthole"}},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(tlsValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	tmpl.DNSNames, tmpl.IPAddresses = subjectAltNames(hosts)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// subjectAltNames sorts hosts into DNS names and IP addresses, adds the
// loopback names and drops duplicates, empty entries and ports.
func subjectAltNames(hosts []string) (dns []string, ips []net.IP) {
	seen := map[string]bool{}
	for _, h := range append(hosts, "localhost", "127.0.0.1", "::1") {
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
		if h == "" || seen[h] {
			continue
		}
		seen[h] = true
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, h)
		}
	}
	return dns, ips
}

// writeNew writes a file that must not exist yet, with mode, and syncs it:
// a crash must not leave a truncated key behind a successful init.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("ca: creating %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("ca: writing %s: %w", path, err)
	}
	return nil
}
