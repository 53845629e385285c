package ca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/apiclient"
)

var keyFiles = []string{ControlKeyFile, UserCAFile, HostCAFile, RelayHostKeyFile, TLSKeyFile, NodeSecretFile}

func generated(t *testing.T, hosts ...string) (string, *Keys) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if err := Generate(dir, hosts); err != nil {
		t.Fatalf("Generate: %v", err)
	}
	k, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return dir, k
}

func TestGenerateLoad(t *testing.T) {
	dir, k := generated(t, "porthole.example.com", "10.0.0.5", "relay.example.com:8443", "[2001:db8::1]:443", "localhost")

	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode = %v (%v); want 0700", fi.Mode().Perm(), err)
	}
	for _, name := range keyFiles {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v (%v); want 0600", name, fi.Mode().Perm(), err)
		}
	}

	// Each public key line parses and belongs to its private key.
	msg := []byte("open session 1")
	for _, tt := range []struct {
		name string
		line string
		sign func() (*ssh.Signature, error)
	}{
		{"control", k.ControlPublicKey(), func() (*ssh.Signature, error) {
			s, err := ssh.NewSignerFromKey(k.Control)
			if err != nil {
				return nil, err
			}
			return s.Sign(rand.Reader, msg)
		}},
		{"user CA", k.UserCAPublicKey(), func() (*ssh.Signature, error) { return k.UserCA.Sign(rand.Reader, msg) }},
		{"host CA", k.HostCAPublicKey(), func() (*ssh.Signature, error) { return k.HostCA.Sign(rand.Reader, msg) }},
	} {
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(tt.line))
		if err != nil {
			t.Fatalf("%s public key %q: %v", tt.name, tt.line, err)
		}
		if pub.Type() != ssh.KeyAlgoED25519 {
			t.Errorf("%s key type = %s; want ed25519", tt.name, pub.Type())
		}
		sig, err := tt.sign()
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.Verify(msg, sig); err != nil {
			t.Errorf("%s: signature does not verify with the published key: %v", tt.name, err)
		}
	}
	if bytes.Equal(k.UserCA.PublicKey().Marshal(), k.HostCA.PublicKey().Marshal()) {
		t.Error("user CA and host CA are the same key")
	}

	leaf := k.TLS.Leaf
	if leaf == nil {
		t.Fatal("TLS leaf not parsed")
	}
	if got, want := k.TLSFingerprint(), apiclient.Fingerprint(leaf); got != want {
		t.Errorf("TLSFingerprint = %s; want %s", got, want)
	}
	for _, name := range []string{"porthole.example.com", "relay.example.com", "localhost", "10.0.0.5", "2001:db8::1", "127.0.0.1", "::1"} {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("certificate does not cover %s: %v", name, err)
		}
	}
	if n := slices.Index(leaf.DNSNames, "localhost"); n < 0 || slices.Contains(leaf.DNSNames[n+1:], "localhost") {
		t.Errorf("DNS names = %v; want localhost exactly once", leaf.DNSNames)
	}
	if err := leaf.VerifyHostname("other.example.com"); err == nil {
		t.Error("certificate covers a name it was not made for")
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life < 700*24*time.Hour || life > 740*24*time.Hour {
		t.Errorf("certificate lifetime = %v; want about two years", life)
	}
}

func TestGenerateRefusesOverwrite(t *testing.T) {
	for _, name := range []string{ControlKeyFile, HostCAFile, TLSCertFile, TLSKeyFile} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
				t.Fatal(err)
			}
			err := Generate(dir, nil)
			if err == nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("Generate over %s = %v; want an error naming it", name, err)
			}
			if data, _ := os.ReadFile(path); string(data) != "precious" {
				t.Errorf("%s was overwritten", name)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("Generate wrote %d files after refusing; want none", len(entries)-1)
			}
		})
	}
	t.Run("twice", func(t *testing.T) {
		dir, k := generated(t)
		if err := Generate(dir, nil); err == nil {
			t.Fatal("second Generate succeeded")
		}
		k2, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !k.Control.Equal(k2.Control) {
			t.Error("second Generate replaced the control key")
		}
	})
}

func TestLoadRefusesLoosePermissions(t *testing.T) {
	for _, name := range keyFiles {
		for _, mode := range []os.FileMode{0o640, 0o604, 0o620, 0o602} {
			t.Run(name+"/"+mode.String(), func(t *testing.T) {
				dir, _ := generated(t)
				path := filepath.Join(dir, name)
				if err := os.Chmod(path, mode); err != nil {
					t.Fatal(err)
				}
				_, err := Load(dir)
				if err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) {
					t.Fatalf("Load with %s at %v = %v; want an error saying chmod 600 %s", name, mode, err, path)
				}
			})
		}
	}
	t.Run("dir", func(t *testing.T) {
		dir, _ := generated(t)
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "chmod 700 "+dir) {
			t.Fatalf("Load of a world-writable dir = %v; want an error saying chmod 700", err)
		}
	})
	t.Run("generate into an open dir", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := Generate(dir, nil); err == nil || !strings.Contains(err.Error(), "chmod 700 "+dir) {
			t.Fatalf("Generate into a world-writable dir = %v; want an error saying chmod 700", err)
		}
	})
}

func TestLoadRefusesOtherKeyTypes(t *testing.T) {
	dir, _ := generated(t)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(ec, "")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, HostCAFile)
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "ed25519") {
		t.Fatalf("Load with an ECDSA host CA = %v; want an error saying keys are ed25519", err)
	}
}

func TestLoadTLS(t *testing.T) {
	dir, k := generated(t)
	cert, err := LoadTLS(filepath.Join(dir, TLSCertFile), filepath.Join(dir, TLSKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cert.Certificate[0], k.TLS.Certificate[0]) {
		t.Error("LoadTLS read another certificate")
	}
	if _, err := LoadTLS(filepath.Join(dir, TLSCertFile), filepath.Join(dir, ControlKeyFile)); err == nil {
		t.Error("LoadTLS accepted a key that does not match the certificate")
	}
}

// hostChecker accepts host certificates signed by ca, as OpenSSH's
// @cert-authority line does.
func hostChecker(ca ssh.PublicKey, now time.Time) *ssh.CertChecker {
	return &ssh.CertChecker{
		IsHostAuthority: func(auth ssh.PublicKey, _ string) bool {
			return bytes.Equal(auth.Marshal(), ca.Marshal())
		},
		Clock: func() time.Time { return now },
	}
}

func TestSignHostCert(t *testing.T) {
	_, k := generated(t)
	_, other := generated(t)
	devPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(devPub)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cert, err := k.SignHostCert(pub, "lab", "dev1", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if cert.KeyId != "device:lab/dev1" || cert.CertType != ssh.HostCert {
		t.Errorf("KeyId, type = %q, %d; want device:lab/dev1, host", cert.KeyId, cert.CertType)
	}
	otherCert, err := other.SignHostCert(pub, "lab", "dev1", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	userCert := *cert
	userCert.CertType = ssh.UserCert
	if err := userCert.SignCert(rand.Reader, k.HostCA); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name string
		cert *ssh.Certificate
		addr string
		at   time.Time
		ok   bool
	}{
		{"long name", cert, "dev1.lab.porthole:22", now, true},
		{"short name", cert, "dev1.porthole:22", now, true},
		{"clock 4 min behind", cert, "dev1.porthole:22", now.Add(-4 * time.Minute), true},
		{"other device", cert, "dev2.lab.porthole:22", now, false},
		{"other fleet", cert, "dev1.shop.porthole:22", now, false},
		{"bare name", cert, "dev1:22", now, false},
		{"expired", cert, "dev1.porthole:22", now.Add(time.Hour + time.Minute), false},
		{"not yet valid", cert, "dev1.porthole:22", now.Add(-10 * time.Minute), false},
		{"other CA", otherCert, "dev1.porthole:22", now, false},
		{"user certificate", &userCert, "dev1.porthole:22", now, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := hostChecker(k.HostCA.PublicKey(), tt.at).CheckHostKey(tt.addr, &net.TCPAddr{}, tt.cert)
			if (err == nil) != tt.ok {
				t.Errorf("CheckHostKey(%s) = %v; want ok %v", tt.addr, err, tt.ok)
			}
		})
	}

	again, err := k.SignHostCert(pub, "lab", "dev1", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if again.Serial == cert.Serial {
		t.Error("two certificates share a serial")
	}
}

func TestSignHostCertRefusesBadNames(t *testing.T) {
	_, k := generated(t)
	pub := k.RelayHost.PublicKey()
	for _, tt := range []struct{ fleet, device string }{
		{"lab", ""},
		{"", "dev1"},
		{"lab", "evil.other"},   // would forge principal evil.other.lab.porthole
		{"lab.porthole", "dev"}, // would make dev.lab.porthole.porthole
		{"lab", "Dev1"},
		{"lab", "dev 1"},
		{"lab", strings.Repeat("a", 64)},
	} {
		if _, err := k.SignHostCert(pub, tt.fleet, tt.device, time.Now(), time.Hour); err == nil {
			t.Errorf("SignHostCert(%q, %q) succeeded; want an error", tt.fleet, tt.device)
		}
	}
	if _, err := k.SignHostCert(pub, "lab", "dev1", time.Now(), 0); err == nil {
		t.Error("SignHostCert with zero lifetime succeeded")
	}
	cert, err := k.SignHostCert(pub, "lab", "dev1", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.SignHostCert(cert, "lab", "dev1", time.Now(), time.Hour); err == nil {
		t.Error("SignHostCert certified a certificate")
	}
}

func TestSignRelayHostCert(t *testing.T) {
	_, k := generated(t)
	now := time.Now()
	cert, err := k.SignRelayHostCert([]string{"relay.example.com"}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cert.Key.Marshal(), k.RelayHost.PublicKey().Marshal()) {
		t.Error("relay certificate is not for the relay's key")
	}
	check := hostChecker(k.HostCA.PublicKey(), now)
	if err := check.CheckHostKey("relay.example.com:2222", &net.TCPAddr{}, cert); err != nil {
		t.Errorf("relay certificate rejected: %v", err)
	}
	if err := check.CheckHostKey("dev1.porthole:22", &net.TCPAddr{}, cert); err == nil {
		t.Error("relay certificate accepted for a device name")
	}
	if _, err := k.SignRelayHostCert(nil, now, time.Hour); err == nil {
		t.Error("SignRelayHostCert without principals succeeded")
	}
}
