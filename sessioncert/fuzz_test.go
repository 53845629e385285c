package sessioncert

import (
	"bytes"
	"crypto/ed25519"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// fixedSigner is an ed25519 signer made from seed, so fuzz corpora stay
// valid from run to run.
func fixedSigner(t testing.TB, seed byte) ssh.Signer {
	t.Helper()
	s, err := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sameClaims compares claims to the second, as a certificate holds them.
func sameClaims(a, b Claims) bool {
	return a.Session == b.Session && a.Fleet == b.Fleet && a.Device == b.Device && a.DeviceID == b.DeviceID &&
		a.User == b.User && a.ValidAfter.Unix() == b.ValidAfter.Unix() && a.ValidBefore.Unix() == b.ValidBefore.Unix()
}

// FuzzClaims: whatever claims Sign certifies, Verify reads back exactly,
// and only inside their validity: a certificate must never say something
// else on the relay or the device than what the server signed.
func FuzzClaims(f *testing.F) {
	ca, engineer := fixedSigner(f, 1), fixedSigner(f, 2)
	c := claims()
	f.Add(c.Session, c.Fleet, c.Device, c.DeviceID, c.User, c.ValidAfter.Unix(), c.ValidBefore.Unix(), int64(0))
	f.Add(c.Session, "acme/x", c.Device, c.DeviceID, "ann smith", c.ValidAfter.Unix(), c.ValidBefore.Unix(), int64(3600))
	f.Add("s", "f", "d", "i", "", int64(0), int64(-1), int64(-1))
	f.Add("s,t", "f", "d/e", "i", "u", int64(1), int64(1<<62), int64(1<<40))
	f.Fuzz(func(t *testing.T, session, fleet, device, deviceID, user string, after, before, offset int64) {
		in := Claims{Session: session, Fleet: fleet, Device: device, DeviceID: deviceID, User: user,
			ValidAfter: time.Unix(after, 0), ValidBefore: time.Unix(before, 0)}
		cert, err := Sign(ca, engineer.PublicKey(), in)
		if err != nil {
			return
		}
		key, err := ssh.ParsePublicKey(cert.Marshal())
		if err != nil {
			t.Fatalf("a certificate Sign made does not parse: %v", err)
		}
		at := time.Unix(after, 0).Add(time.Duration(offset%(1<<40)) * time.Second)
		got, err := Verify(ca.PublicKey(), key, at)
		if err != nil {
			return
		}
		if !sameClaims(got, in) {
			t.Fatalf("signed %+v; Verify read %+v", in, got)
		}
		if at.Before(in.ValidAfter) || !at.Before(in.ValidBefore) {
			t.Fatalf("certificate for %v to %v accepted at %v", in.ValidAfter, in.ValidBefore, at)
		}
	})
}

// FuzzVerify: a public key in SSH wire form, as the relay and the device
// receive it. Verify never panics, and accepts only what the user CA
// signed, with its claims: the fuzzer cannot sign, so anything else is a
// forgery.
func FuzzVerify(f *testing.F) {
	ca, engineer := fixedSigner(f, 1), fixedSigner(f, 2)
	signed := map[string]Claims{}
	for i, edit := range []func(*Claims){
		func(*Claims) {},
		func(c *Claims) { c.Session, c.Device = "ses_2", "dev2" },
		func(c *Claims) { c.ValidAfter, c.ValidBefore = now.Add(-2*time.Hour), now.Add(-time.Hour) }, // expired
	} {
		c := claims()
		edit(&c)
		cert, err := Sign(ca, engineer.PublicKey(), c)
		if err != nil {
			f.Fatal(err)
		}
		if i < 2 {
			signed[c.Session] = c
		}
		f.Add(cert.Marshal())
	}
	byOther, _ := Sign(fixedSigner(f, 3), engineer.PublicKey(), claims())
	f.Add(byOther.Marshal())
	f.Add(engineer.PublicKey().Marshal())
	f.Fuzz(func(t *testing.T, in []byte) {
		key, err := ssh.ParsePublicKey(in)
		if err != nil {
			return
		}
		got, err := Verify(ca.PublicKey(), key, now)
		if err != nil {
			return
		}
		if want, ok := signed[got.Session]; !ok || !sameClaims(got, want) {
			t.Fatalf("Verify accepted unsigned claims %+v", got)
		}
	})
}
