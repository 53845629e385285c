package relayproto

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"reflect"
	"testing"

	"golang.org/x/crypto/ssh"
)

// fixedSigner is an ed25519 signer made from seed, so that fuzz corpora
// stay valid from run to run (ed25519 signatures are deterministic too).
func fixedSigner(t testing.TB, seed byte) ssh.Signer {
	t.Helper()
	s, err := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// FuzzReadFrame: any bytes give a frame or an error, never a panic. A
// frame read is exactly its two-byte length and that many bytes, leaving
// the rest unread, and what it decodes to, as any of the frames the relay
// and its clients exchange, is written back by WriteFrame as a frame that
// reads as the same value.
func FuzzReadFrame(f *testing.F) {
	frame := func(v any) []byte {
		var b bytes.Buffer
		if err := WriteFrame(&b, v); err != nil {
			f.Fatal(err)
		}
		return b.Bytes()
	}
	env, _ := Sign(fixedSigner(f, 1), make([]byte, 32), Hello{Role: RoleEngineer, Cert: []byte("x")})
	f.Add(append(frame(env), "ssh bytes"...))
	f.Add(frame(Register{Session: "ses_1"}))
	f.Add(frame(StreamHeader{Session: "ses_1", From: "192.0.2.1:4000"}))
	f.Add(frame(Reply{Error: "no", Code: CodeRefused}))
	f.Add(frame(Challenge{Challenge: bytes.Repeat([]byte{7}, ChallengeSize)}))
	f.Add([]byte("\x00\x02{}"))
	f.Add([]byte("\x00\x04null"))
	f.Add([]byte("\xff\xff"))
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, v := range []any{&Envelope{}, &Register{}, &StreamHeader{}, &Reply{}, &Hello{}, &Challenge{}} {
			r := bytes.NewReader(in)
			if err := ReadFrame(r, v); err != nil {
				continue
			}
			if size := int(binary.BigEndian.Uint16(in)); r.Len() != len(in)-2-size {
				t.Fatalf("ReadFrame of a %d-byte frame left %d of %d bytes", size, r.Len(), len(in))
			}
			var b bytes.Buffer
			if err := WriteFrame(&b, v); err != nil {
				continue // json.Marshal escapes more than it must: it may outgrow MaxFrame
			}
			again := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			if err := ReadFrame(&b, again); err != nil || !reflect.DeepEqual(normal(v), normal(again)) {
				t.Fatalf("%T %+v written back reads as %+v, %v", v, v, again, err)
			}
		}
	})
}

// normal makes empty and nil byte slices alike: JSON writes both as null
// or "" and reads them back as either.
func normal(v any) any {
	switch v := v.(type) {
	case *Envelope:
		return [2]string{string(v.Payload), string(v.Sig)}
	case *Hello:
		h := *v
		h.Cert = append([]byte{}, h.Cert...)
		return h
	}
	return v
}

// FuzzHello: a client's hello as the relay takes it apart. Verify accepts
// only an envelope the key signed, for the binding it was signed for (the
// fuzzer cannot sign); Open accepts only a hello of this Version, and what
// it accepts reads the same once written again.
func FuzzHello(f *testing.F) {
	key := fixedSigner(f, 1)
	binding := bytes.Repeat([]byte{7}, 32)
	signed := map[string]bool{}
	for _, h := range []Hello{
		{Role: RoleDevice, Fleet: "acme", Device: "dev1"},
		{Role: RoleEngineer, Cert: []byte("certificate")},
		{Role: "admin"},
	} {
		env, err := Sign(key, binding, h)
		if err != nil {
			f.Fatal(err)
		}
		signed[string(env.Payload)] = true
		f.Add(env.Payload, env.Sig, binding)
		f.Add(env.Payload, env.Sig, binding[1:])
	}
	other, _ := Sign(fixedSigner(f, 2), binding, Hello{Role: RoleDevice, Fleet: "acme", Device: "dev1"})
	f.Add(other.Payload, other.Sig, binding)
	f.Add([]byte(`{"v":1,"role":"device"}`), []byte{}, []byte{})
	f.Add([]byte(`{"v":2,"role":"engineer","cert":"!!"}`), []byte("\x00\x00\x00\x0bssh-ed25519"), binding)
	f.Fuzz(func(t *testing.T, payload, sig, b []byte) {
		env := Envelope{Payload: payload, Sig: sig}
		if err := env.Verify(key.PublicKey(), b); err == nil && (!signed[string(payload)] || !bytes.Equal(b, binding)) {
			t.Fatalf("Verify accepted hello %q for binding %x", payload, b)
		}
		h, err := env.Open()
		if err != nil {
			return
		}
		if h.V != Version {
			t.Fatalf("Open accepted version %d", h.V)
		}
		env2, err := Sign(key, b, h)
		if err != nil {
			t.Fatal(err)
		}
		h2, err := env2.Open()
		if err != nil || !reflect.DeepEqual(normal(&h), normal(&h2)) {
			t.Fatalf("hello %+v written again reads as %+v, %v", h, h2, err)
		}
	})
}
