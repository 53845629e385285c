package control

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func authorizedLine(t testing.TB, key any) string {
	t.Helper()
	pub, err := ssh.NewPublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(pub)), "\n")
}

func TestParseControlKey(t *testing.T) {
	want := testKey(1).Public().(ed25519.PublicKey)
	line := authorizedLine(t, want)
	for _, in := range []string{line, line + " porthole control key", line + "\n"} {
		got, err := ParseControlKey(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseControlKey(%q) = %x, %v; want %x", in, got, err, want)
		}
	}

	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{
		"",
		"ssh-ed25519 !!!",
		authorizedLine(t, &ec.PublicKey),
		line + "\n" + authorizedLine(t, testKey(2).Public()),
	} {
		if got, err := ParseControlKey(in); err == nil {
			t.Errorf("ParseControlKey(%q) = %x; want an error", in, got)
		}
	}
}
