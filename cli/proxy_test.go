package cli

import (
	"crypto/rand"
	"testing"

	"golang.org/x/crypto/ssh"
)

// testCert certifies key as a session certificate would be.
func testCert(t *testing.T, key ssh.Signer) *ssh.Certificate {
	t.Helper()
	c := &ssh.Certificate{Key: key.PublicKey(), CertType: ssh.UserCert, KeyId: "ops@example.com/s1",
		ValidPrincipals: []string{"s1"}, ValidBefore: ssh.CertTimeInfinity}
	if err := c.SignCert(rand.Reader, newTestSigner(t)); err != nil {
		t.Fatal(err)
	}
	return c
}
