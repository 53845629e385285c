package control

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// testNow is the fixed device time the tests verify at.
var testNow = time.Unix(1_800_000_000, 0)

const (
	testFleet  = "acme"
	testDevice = "dev1"
)

// testKey is a fixed control key, so fuzz corpora stay valid across runs.
func testKey(seed byte) ed25519.PrivateKey {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed
	}
	return ed25519.NewKeyFromSeed(s)
}

// openCmd is a valid open command for testDevice at testNow.
func openCmd() Command {
	return Command{
		V: Version, Type: TypeOpen, Session: "s-0001", Fleet: testFleet, Device: testDevice,
		Relay: "relay.example.com:2222", Ports: []int{22, 80}, IdleTimeoutS: 900, MaxDurationS: 7200,
		NotAfter: testNow.Add(DefaultValidity).Unix(),
	}
}

func mustSign(t testing.TB, priv ed25519.PrivateKey, cmd Command) []byte {
	t.Helper()
	env, err := Sign(priv, cmd)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return env
}

// signRaw makes an envelope around any payload bytes, so tests can sign
// what Sign would refuse to.
func signRaw(priv ed25519.PrivateKey, payload []byte) []byte {
	return envelopeOf(payload, ed25519.Sign(priv, payload))
}

func envelopeOf(payload, sig []byte) []byte {
	env, _ := json.Marshal(envelope{
		Payload: base64.StdEncoding.EncodeToString(payload),
		Sig:     base64.StdEncoding.EncodeToString(sig),
	})
	return env
}

// split returns an envelope's payload and signature bytes.
func split(t testing.TB, env []byte) (payload, sig []byte) {
	t.Helper()
	payload, sig, err := openEnvelope(env)
	if err != nil {
		t.Fatalf("openEnvelope: %v", err)
	}
	return payload, sig
}

// memNonces is an in-memory NonceStore for fuzzing and benchmarks, where a
// file per input would measure the disk.
type memNonces struct {
	mu   sync.Mutex
	seen map[string]bool // guarded by mu
}

var _ NonceStore = (*memNonces)(nil)

func (m *memNonces) Remember(nonce string, _, _ time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[string]bool{}
	}
	if m.seen[nonce] {
		return false, nil
	}
	m.seen[nonce] = true
	return true, nil
}

// openNonceFile opens a FileNonceStore in a fresh temp dir at testNow.
func openNonceFile(t testing.TB) (*FileNonceStore, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nonces")
	s, err := OpenFileNonceStore(path, testNow)
	if err != nil {
		t.Fatalf("OpenFileNonceStore: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func newTestVerifier(t testing.TB, priv ed25519.PrivateKey, nonces NonceStore) *Verifier {
	t.Helper()
	v, err := NewVerifier(priv.Public().(ed25519.PublicKey), testFleet, testDevice, nonces)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}
