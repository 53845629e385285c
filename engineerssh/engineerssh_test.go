package engineerssh

import (
	"crypto/rand"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	s, err := NewSessionKey() // a fresh ed25519 key
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestHostCertCallback: only a host certificate from the host CA, valid
// now, for one of the names given, is accepted: what the CLI and the
// browser terminal both check of a device.
func TestHostCertCallback(t *testing.T) {
	hostCA, otherCA, key := newSigner(t), newSigner(t), newSigner(t)
	sign := func(by ssh.Signer, edit func(*ssh.Certificate)) ssh.PublicKey {
		c := &ssh.Certificate{Key: key.PublicKey(), CertType: ssh.HostCert, ValidPrincipals: []string{"dev1.porthole"},
			ValidAfter: uint64(time.Now().Add(-time.Minute).Unix()), ValidBefore: uint64(time.Now().Add(time.Hour).Unix())}
		if edit != nil {
			edit(c)
		}
		if err := c.SignCert(rand.Reader, by); err != nil {
			t.Fatal(err)
		}
		return c
	}
	cb := HostCertCallback(hostCA.PublicKey(), []string{"dev1.acme.porthole", "dev1.porthole"}, "dev1")
	tests := []struct {
		name string
		key  ssh.PublicKey
		ok   bool
	}{
		{"good", sign(hostCA, nil), true},
		{"plain key", key.PublicKey(), false},
		{"other CA", sign(otherCA, nil), false},
		{"other name", sign(hostCA, func(c *ssh.Certificate) { c.ValidPrincipals = []string{"dev2.porthole"} }), false},
		{"expired", sign(hostCA, func(c *ssh.Certificate) { c.ValidBefore = uint64(time.Now().Add(-time.Second).Unix()) }), false},
		{"user certificate", sign(hostCA, func(c *ssh.Certificate) { c.CertType = ssh.UserCert }), false},
		{"forged signature", func() ssh.PublicKey {
			c := sign(hostCA, nil).(*ssh.Certificate)
			c.ValidPrincipals = []string{"dev1.porthole", "evil"}
			return c
		}(), false},
	}
	for _, tt := range tests {
		if err := cb("dev1.porthole:22", nil, tt.key); (err == nil) != tt.ok {
			t.Errorf("%s: %v; want ok %v", tt.name, err, tt.ok)
		}
	}
}
