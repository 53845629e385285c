package ca

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// nodeDir makes a node's data dir from an API node's keys k.
func nodeDir(t *testing.T, k *Keys, hosts ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "node")
	if _, err := WriteNodeDir(k, NodeDir{Dir: dir, RelayHosts: hosts}); err != nil {
		t.Fatalf("WriteNodeDir: %v", err)
	}
	return dir
}

// TestNodeDirHoldsNoSigningKey: the data dir an API node makes for a relay
// node holds none of the signing keys, as files or in what LoadNode
// returns; it holds their public halves, the deployment's TLS identity
// and node secret, and a relay host key of the node's own certified by
// the host CA. Nothing loaded from it signs.
func TestNodeDirHoldsNoSigningKey(t *testing.T) {
	apiDir, k := generated(t, "porthole.example.com")
	dir := nodeDir(t, k, "relay1.example.com")

	for _, name := range SigningKeyFiles {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the node's data dir holds %s (%v)", name, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// No file of the node's dir is a signing key under another name.
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range SigningKeyFiles {
			priv, err := os.ReadFile(filepath.Join(apiDir, name))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(data, priv) || bytes.Contains(data, k.Control.Seed()) {
				t.Errorf("%s holds the private key of %s", e.Name(), name)
			}
		}
	}

	nk, err := LoadNode(dir)
	if err != nil {
		t.Fatalf("LoadNode: %v", err)
	}
	if nk.Control != nil || nk.UserCA != nil || nk.HostCA != nil || nk.CanSign() {
		t.Fatal("LoadNode returned a signing key")
	}
	if nk.ControlPublicKey() != k.ControlPublicKey() || nk.UserCAPublicKey() != k.UserCAPublicKey() || nk.HostCAPublicKey() != k.HostCAPublicKey() {
		t.Error("the node's public keys are not the API node's")
	}
	if nk.TLSFingerprint() != k.TLSFingerprint() {
		t.Error("the node shows another TLS certificate than the API node, which devices pin")
	}
	if nk.NodeSecret != k.NodeSecret || len(k.NodeSecret) < 32 {
		t.Errorf("node secret %q; want the API node's %q", nk.NodeSecret, k.NodeSecret)
	}
	if bytes.Equal(nk.RelayHost.PublicKey().Marshal(), k.RelayHost.PublicKey().Marshal()) {
		t.Error("the node's relay host key is the API node's; want one of its own")
	}
	check := hostChecker(k.HostCAPub, time.Now())
	if err := check.CheckHostKey("relay1.example.com:2222", &net.TCPAddr{}, nk.RelayHostCert); err != nil {
		t.Errorf("the node's relay host certificate does not check against the host CA: %v", err)
	}
	if life := time.Until(time.Unix(int64(nk.RelayHostCert.ValidBefore), 0)); life < 364*24*time.Hour {
		t.Errorf("the relay host certificate lasts %v; want a year", life)
	}

	// Nothing to sign with.
	if _, err := nk.SignHostCert(k.RelayHost.PublicKey(), "lab", "dev1", time.Now(), time.Hour); !errors.Is(err, ErrNoSigningKeys) {
		t.Errorf("a node's SignHostCert = %v; want ErrNoSigningKeys", err)
	}
	if _, err := nk.SignRelayHostCert([]string{"evil.example.com"}, time.Now(), time.Hour); !errors.Is(err, ErrNoSigningKeys) {
		t.Errorf("a node's SignRelayHostCert = %v; want ErrNoSigningKeys", err)
	}
	if _, err := WriteNodeDir(nk, NodeDir{Dir: filepath.Join(t.TempDir(), "n"), RelayHosts: []string{"x"}}); !errors.Is(err, ErrNoSigningKeys) {
		t.Errorf("WriteNodeDir from a node = %v; want ErrNoSigningKeys", err)
	}
}

// TestLoadNodeRefuses: a node's data dir with a signing key copied in, a
// certificate from another deployment's host CA, or one for another key
// is refused in words that name the file.
func TestLoadNodeRefuses(t *testing.T) {
	apiDir, k := generated(t)
	_, other := generated(t)
	for _, tt := range []struct {
		name  string
		spoil func(t *testing.T, dir string)
		want  string
	}{
		{"control key copied in", func(t *testing.T, dir string) { copyFile(t, apiDir, dir, ControlKeyFile) }, ControlKeyFile},
		{"user CA copied in", func(t *testing.T, dir string) { copyFile(t, apiDir, dir, UserCAFile) }, UserCAFile},
		{"host CA copied in", func(t *testing.T, dir string) { copyFile(t, apiDir, dir, HostCAFile) }, HostCAFile},
		{"another deployment's certificate", func(t *testing.T, dir string) {
			cert, err := other.signHost(mustLoadNode(t, dir).RelayHost.PublicKey(), "relay", []string{"r"}, time.Now(), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, dir, RelayHostCertFile, ssh.MarshalAuthorizedKey(cert))
		}, "not issued by the host CA"},
		{"a certificate for another key", func(t *testing.T, dir string) {
			cert, err := k.SignRelayHostCert([]string{"r"}, time.Now(), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, dir, RelayHostCertFile, ssh.MarshalAuthorizedKey(cert))
		}, "certifies another key"},
		{"a forged signature", func(t *testing.T, dir string) {
			cert := *mustLoadNode(t, dir).RelayHostCert
			cert.ValidPrincipals = []string{"evil.example.com"}
			writeFile(t, dir, RelayHostCertFile, ssh.MarshalAuthorizedKey(&cert))
		}, RelayHostCertFile},
		{"no certificate", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, RelayHostCertFile)) }, RelayHostCertFile},
		{"no node secret", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, NodeSecretFile)) }, NodeSecretFile},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := nodeDir(t, k, "relay1.example.com")
			tt.spoil(t, dir)
			_, err := LoadNode(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("LoadNode = %v; want an error naming %q", err, tt.want)
			}
		})
	}
	t.Run("an API node's dir", func(t *testing.T) {
		if _, err := LoadNode(apiDir); !errors.Is(err, ErrSigningKeysHere) {
			t.Fatalf("LoadNode of an API node's data dir = %v; want ErrSigningKeysHere", err)
		}
	})
	t.Run("overwrite", func(t *testing.T) {
		dir := nodeDir(t, k, "relay1.example.com")
		if _, err := WriteNodeDir(k, NodeDir{Dir: dir, RelayHosts: []string{"r"}}); err == nil {
			t.Fatal("WriteNodeDir wrote over a node's data dir")
		}
	})
}

// TestLegacyNodeSecret: an API node's data dir made before node_secret was
// has the secret its broker password always was, derived from the control
// key, so that nodes of an older deployment and node dirs made from it
// agree.
func TestLegacyNodeSecret(t *testing.T) {
	dir, k := generated(t)
	if err := os.Remove(filepath.Join(dir, NodeSecretFile)); err != nil {
		t.Fatal(err)
	}
	old, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if old.NodeSecret != legacyNodeSecret(k.Control) || old.NodeSecret == k.NodeSecret {
		t.Errorf("node secret without the file = %q; want the one derived from the control key", old.NodeSecret)
	}
	nk := mustLoadNode(t, nodeDir(t, old, "r"))
	if nk.NodeSecret != old.NodeSecret {
		t.Error("a node dir made from an older data dir has another node secret")
	}
}

func mustLoadNode(t *testing.T, dir string) *Keys {
	t.Helper()
	k, err := LoadNode(dir)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func copyFile(t *testing.T, from, to, name string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(from, name))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, name, data)
}

func writeFile(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
}
