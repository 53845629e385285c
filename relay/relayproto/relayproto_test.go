package relayproto

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func signer(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFrames(t *testing.T) {
	var b bytes.Buffer
	if err := WriteFrame(&b, Register{Session: "ses_1"}); err != nil {
		t.Fatal(err)
	}
	b.WriteString("rest")
	var r Register
	if err := ReadFrame(&b, &r); err != nil || r.Session != "ses_1" {
		t.Fatalf("ReadFrame = %+v, %v", r, err)
	}
	if b.String() != "rest" {
		t.Errorf("ReadFrame read past its frame: %q left", b.String())
	}
	for _, tt := range []struct {
		name, in, want string
	}{
		{"oversized", "\xff\xff", "longer than"},
		{"short", "\x00\x10{}", "unexpected EOF"},
		{"not JSON", "\x00\x02hi", "malformed frame"},
		{"empty", "", "EOF"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := ReadFrame(strings.NewReader(tt.in), &r)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ReadFrame(%q) = %v; want %q", tt.in, err, tt.want)
			}
		})
	}
	if err := WriteFrame(io.Discard, Reply{Error: strings.Repeat("x", MaxFrame)}); err == nil {
		t.Error("an oversized frame was written")
	}
}

// TestSignatures: a hello verifies only with its key, for its binding,
// and unchanged.
func TestSignatures(t *testing.T) {
	key := signer(t)
	binding := bytes.Repeat([]byte{1}, 32)
	env, err := Sign(key, binding, Hello{Role: RoleDevice, Fleet: "acme", Device: "dev1"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := env.Open()
	if err != nil || h.Device != "dev1" || h.V != Version {
		t.Fatalf("Open = %+v, %v", h, err)
	}
	if err := env.Verify(key.PublicKey(), binding); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if err := env.Verify(signer(t).PublicKey(), binding); err == nil {
		t.Error("verified with another key")
	}
	if err := env.Verify(key.PublicKey(), bytes.Repeat([]byte{2}, 32)); err == nil {
		t.Error("verified for another connection")
	}
	forged := env
	forged.Payload = bytes.Replace(env.Payload, []byte("dev1"), []byte("dev2"), 1)
	if err := forged.Verify(key.PublicKey(), binding); err == nil {
		t.Error("verified a changed hello")
	}
	bad := env
	bad.Sig = []byte("junk")
	if err := bad.Verify(key.PublicKey(), binding); err == nil {
		t.Error("verified a junk signature")
	}
	old := Envelope{Payload: []byte(`{"v":1,"role":"device"}`)}
	if _, err := old.Open(); err == nil {
		t.Error("opened a hello of another version")
	}
}

// TestHeldConnGather: the records of one large write leave in one write;
// a write that fits one record goes straight through, uncopied.
func TestHeldConnGather(t *testing.T) {
	under := &countingConn{}
	held := NewHeldConn(under)
	records := func(p []byte) (int, error) { return WriteChunks(held, p) } // as TLS writes records
	if n, err := held.Gather(make([]byte, 100<<10), records); err != nil || n != 100<<10 {
		t.Fatalf("Gather = %d, %v", n, err)
	}
	if under.writes != 1 || under.bytes != 100<<10 {
		t.Errorf("100 KiB in %d writes (%d bytes); want 1", under.writes, under.bytes)
	}
	held.Gather(make([]byte, 1000), records)
	if under.writes != 2 {
		t.Errorf("a small write made %d writes in all; want 2", under.writes)
	}
	var none *HeldConn // no HeldConn under the connection: straight through
	if n, err := none.Gather(make([]byte, 100<<10), func(p []byte) (int, error) { return len(p), nil }); err != nil || n != 100<<10 {
		t.Errorf("nil Gather = %d, %v", n, err)
	}
}

// TestChallengeBinding: a hello signed over one challenge verifies over
// that challenge only, never as a TLS connection's binding (always 32
// bytes, which a challenge's binding never is), and a challenge of the
// wrong size binds nothing.
func TestChallengeBinding(t *testing.T) {
	a, err := NewChallenge()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewChallenge()
	ba, err := ChallengeBinding(a)
	if err != nil {
		t.Fatal(err)
	}
	bb, _ := ChallengeBinding(b)
	if len(ba) == 32 {
		t.Fatal("a challenge's binding has a TLS binding's length")
	}
	key := fixedSigner(t, 3)
	env, err := Sign(key, ba, Hello{Role: RoleEngineer, Cert: []byte("c")})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Verify(key.PublicKey(), ba); err != nil {
		t.Errorf("over its own challenge: %v", err)
	}
	if err := env.Verify(key.PublicKey(), bb); err == nil {
		t.Error("a hello verified over another challenge")
	}
	if err := env.Verify(key.PublicKey(), a.Challenge); err == nil {
		t.Error("a hello verified over the bare challenge, without its label")
	}
	if _, err := ChallengeBinding(Challenge{Challenge: a.Challenge[:31]}); err == nil {
		t.Error("a 31-byte challenge was taken")
	}
}

// countingConn counts the writes that reach it.
type countingConn struct {
	net.Conn
	writes, bytes int
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes++
	c.bytes += len(p)
	return len(p), nil
}
