package sessioncert

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var now = time.Unix(1_800_000_000, 0)

func claims() Claims {
	return Claims{Session: "ses_abc", Fleet: "acme", Device: "dev1", DeviceID: "dev_1", User: "ann@example.com",
		ValidAfter: now.Add(-Margin), ValidBefore: now.Add(time.Hour)}
}

func TestRoundTrip(t *testing.T) {
	ca, engineer := newSigner(t), newSigner(t)
	cert, err := Sign(ca, engineer.PublicKey(), claims())
	if err != nil {
		t.Fatal(err)
	}
	// Through the wire format, as the relay and the device see it.
	parsed, err := ssh.ParsePublicKey(cert.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	got, err := Verify(ca.PublicKey(), parsed, now)
	if err != nil {
		t.Fatal(err)
	}
	want := claims()
	if got.Session != want.Session || got.Fleet != want.Fleet || got.Device != want.Device ||
		got.DeviceID != want.DeviceID || got.User != want.User || !got.ValidBefore.Equal(want.ValidBefore) {
		t.Errorf("claims = %+v; want %+v", got, want)
	}
}

// TestRefused tries what an attacker would: other authorities, stale and
// early certificates, bare keys, host certificates, forged options.
func TestRefused(t *testing.T) {
	ca, other, engineer := newSigner(t), newSigner(t), newSigner(t)
	sign := func(s ssh.Signer, edit func(*ssh.Certificate)) ssh.PublicKey {
		cert, err := Sign(s, engineer.PublicKey(), claims())
		if err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			edit(cert)
			if err := cert.SignCert(rand.Reader, s); err != nil {
				t.Fatal(err)
			}
		}
		return cert
	}
	tampered := sign(ca, nil).(*ssh.Certificate)
	tampered.ValidBefore += 86400 // a longer life, with no new signature
	for _, tt := range []struct {
		name string
		key  ssh.PublicKey
		at   time.Time
		want string
	}{
		{"another CA", sign(other, nil), now, "another authority"},
		{"expired", sign(ca, nil), now.Add(2 * time.Hour), "expired"},
		{"not yet valid", sign(ca, nil), now.Add(-time.Hour), "not yet valid"},
		{"a bare key", engineer.PublicKey(), now, "not a certificate"},
		{"a host certificate", sign(ca, func(c *ssh.Certificate) { c.CertType = ssh.HostCert }), now, "not a user certificate"},
		{"no session", sign(ca, func(c *ssh.Certificate) { delete(c.CriticalOptions, OptionSession) }), now, "no session"},
		{"no device", sign(ca, func(c *ssh.Certificate) { delete(c.CriticalOptions, OptionDevice) }), now, "no device"},
		{"an unknown critical option", sign(ca, func(c *ssh.Certificate) { c.CriticalOptions["force-command"] = "sh" }), now, "critical option"},
		{"a principal for another session", sign(ca, func(c *ssh.Certificate) { c.ValidPrincipals = []string{"ses_other"} }), now, "principal"},
		{"edited after signing", tampered, now, "signature"},
	} {
		_, err := Verify(ca.PublicKey(), tt.key, tt.at)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v; want one containing %q", tt.name, err, tt.want)
		}
	}
}

// TestSignRefuses: Sign certifies only claims Verify reads back as they
// were, for a time that is a span.
func TestSignRefuses(t *testing.T) {
	ca := newSigner(t)
	for _, tt := range []struct {
		name string
		edit func(*Claims)
	}{
		{"no device id", func(c *Claims) { c.DeviceID = "" }},
		{"no session", func(c *Claims) { c.Session = "" }},
		{"a slash in the fleet", func(c *Claims) { c.Fleet = "acme/x" }},                                                          // read back as fleet acme, device x/dev1
		{"a space in the user", func(c *Claims) { c.User = "ann smith" }},                                                         // read back as ann
		{"valid until a second before 1970", func(c *Claims) { c.ValidAfter, c.ValidBefore = time.Unix(0, 0), time.Unix(-1, 0) }}, // OpenSSH's forever
		{"valid from before 1970", func(c *Claims) { c.ValidAfter = time.Unix(-1, 0) }},
		{"no validity", func(c *Claims) { c.ValidAfter, c.ValidBefore = time.Time{}, time.Time{} }},
		{"ends before it starts", func(c *Claims) { c.ValidBefore = c.ValidAfter.Add(-time.Second) }},
	} {
		c := claims()
		tt.edit(&c)
		if _, err := Sign(ca, newSigner(t).PublicKey(), c); err == nil {
			t.Errorf("%s: signed %+v", tt.name, c)
		}
	}
	cert, err := Sign(ca, newSigner(t).PublicKey(), claims())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Sign(ca, cert, claims()); err == nil {
		t.Error("certified a certificate")
	}
}
