package control

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestVerify tries to get a command past the verifier that the control key
// did not sign for this device, now.
func TestVerify(t *testing.T) {
	key, other := testKey(1), testKey(2)
	with := func(edit func(*Command)) []byte {
		c := openCmd()
		edit(&c)
		return mustSign(t, key, c)
	}
	// rawCmd is openCmd's JSON with edit applied to its fields as a map,
	// signed: for payloads Sign would refuse to make.
	rawCmd := func(edit func(map[string]any)) []byte {
		c := openCmd()
		c.Nonce = "nonce-0123456789abcdef"
		b, _ := json.Marshal(c)
		var m map[string]any
		json.Unmarshal(b, &m)
		edit(m)
		b, _ = json.Marshal(m)
		return signRaw(key, b)
	}
	valid := mustSign(t, key, openCmd())
	payload, sig := split(t, valid)
	_, otherSig := split(t, with(func(c *Command) { c.Session = "s-0002" }))
	if d, err := base64.StdEncoding.DecodeString(loosePadding(b64.EncodeToString(sig))); err != nil || !bytes.Equal(d, sig) {
		t.Fatalf("loosePadding changed the bytes (%v); the malleability case tests nothing", err)
	}
	padTo := func(env []byte, n int) []byte {
		return append(bytes.Clone(env), bytes.Repeat([]byte(" "), n-len(env))...)
	}

	tests := []struct {
		name string
		env  []byte
		want string // reason; "" for accepted
	}{
		{"valid open", valid, ""},
		{"valid close", with(func(c *Command) { c.Type, c.Relay, c.Ports = TypeClose, "", nil }), ""},
		{"valid at exactly MaxEnvelopeSize", padTo(valid, MaxEnvelopeSize), ""},
		{"expiring within the skew", with(func(c *Command) { c.NotAfter = testNow.Add(-ClockSkew).Unix() }), ""},
		{"ahead within MaxValidity and skew", with(func(c *Command) { c.NotAfter = testNow.Add(MaxValidity + ClockSkew).Unix() }), ""},

		{"oversized", padTo(valid, MaxEnvelopeSize+1), ReasonTooLarge},
		{"huge", bytes.Repeat([]byte("A"), 1<<20), ReasonTooLarge},

		{"empty", nil, ReasonMalformed},
		{"truncated JSON", valid[:len(valid)/2], ReasonMalformed},
		{"JSON null", []byte("null"), ReasonMalformed},
		{"JSON array", []byte(`["a","b"]`), ReasonMalformed},
		{"JSON string", []byte(`"payload"`), ReasonMalformed},
		{"unknown envelope field", bytes.Replace(valid, []byte(`{`), []byte(`{"extra":1,`), 1), ReasonMalformed},
		{"unknown field after sig", bytes.Replace(valid, []byte(`}`), []byte(`,"kid":"x"}`), 1), ReasonMalformed},
		{"two envelopes", append(bytes.Clone(valid), valid...), ReasonMalformed},
		{"trailing garbage", append(bytes.Clone(valid), 'x'), ReasonMalformed},
		{"missing sig", []byte(`{"payload":"` + b64.EncodeToString(payload) + `"}`), ReasonMalformed},
		{"missing payload", []byte(`{"sig":"` + b64.EncodeToString(sig) + `"}`), ReasonMalformed},
		{"payload not a string", []byte(`{"payload":{"v":1},"sig":"` + b64.EncodeToString(sig) + `"}`), ReasonMalformed},
		{"base64 garbage payload", []byte(`{"payload":"!!!not base64!!!","sig":"` + b64.EncodeToString(sig) + `"}`), ReasonMalformed},
		{"base64 garbage sig", []byte(`{"payload":"` + b64.EncodeToString(payload) + `","sig":"%%%%"}`), ReasonMalformed},
		{"non-canonical base64 sig", []byte(`{"payload":"` + b64.EncodeToString(payload) + `","sig":"` + loosePadding(b64.EncodeToString(sig)) + `"}`), ReasonMalformed},
		{"line break in base64 payload", []byte(`{"payload":"` + lineBreak(b64.EncodeToString(payload)) + `","sig":"` + b64.EncodeToString(sig) + `"}`), ReasonMalformed},
		{"line break in base64 sig", []byte(`{"payload":"` + b64.EncodeToString(payload) + `","sig":"` + lineBreak(b64.EncodeToString(sig)) + `"}`), ReasonMalformed},

		{"forged by another key", mustSign(t, other, openCmd()), ReasonBadSignature},
		{"payload altered after signing", envelopeOf(bytes.Replace(payload, []byte(`"dev1"`), []byte(`"dev2"`), 1), sig), ReasonBadSignature},
		{"payload extended after signing", envelopeOf(append(bytes.Clone(payload), ' '), sig), ReasonBadSignature},
		{"signature of another command", envelopeOf(payload, otherSig), ReasonBadSignature},
		{"signature truncated", envelopeOf(payload, sig[:63]), ReasonBadSignature},
		{"signature lengthened", envelopeOf(payload, append(bytes.Clone(sig), 0)), ReasonBadSignature},
		{"signature zero", envelopeOf(payload, make([]byte, ed25519.SignatureSize)), ReasonBadSignature},
		{"signature bit flipped", envelopeOf(payload, flipBit(sig)), ReasonBadSignature},

		{"signed non-JSON", signRaw(key, []byte("open please")), ReasonMalformed},
		{"version 2", rawCmd(func(m map[string]any) { m["v"] = 2 }), ReasonWrongVersion},
		{"version missing", rawCmd(func(m map[string]any) { delete(m, "v") }), ReasonWrongVersion},
		{"version 2 with new fields", rawCmd(func(m map[string]any) { m["v"], m["future"] = 2, true }), ReasonWrongVersion},
		{"unknown command field", rawCmd(func(m map[string]any) { m["allow_root"] = true }), ReasonMalformed},
		{"field of the wrong type", rawCmd(func(m map[string]any) { m["ports"] = "22" }), ReasonMalformed},
		{"unknown type", rawCmd(func(m map[string]any) { m["type"] = "reboot" }), ReasonUnknownType},
		{"type in upper case", rawCmd(func(m map[string]any) { m["type"] = "OPEN" }), ReasonUnknownType},
		{"session with a space", rawCmd(func(m map[string]any) { m["session"] = "s 1" }), ReasonMalformed},
		{"session missing", rawCmd(func(m map[string]any) { delete(m, "session") }), ReasonMalformed},
		{"nonce too short", rawCmd(func(m map[string]any) { m["nonce"] = "abc" }), ReasonMalformed},
		{"nonce with a newline", rawCmd(func(m map[string]any) { m["nonce"] = "0123456789abcdef\n9" }), ReasonMalformed},
		{"port 0", rawCmd(func(m map[string]any) { m["ports"] = []int{0} }), ReasonMalformed},
		{"port 65536", rawCmd(func(m map[string]any) { m["ports"] = []int{65536} }), ReasonMalformed},
		{"negative idle timeout", rawCmd(func(m map[string]any) { m["idle_timeout_s"] = -1 }), ReasonMalformed},
		{"open without relay", rawCmd(func(m map[string]any) { delete(m, "relay") }), ReasonMalformed},
		{"relay without port", rawCmd(func(m map[string]any) { m["relay"] = "relay.example.com" }), ReasonMalformed},
		{"not_after missing", rawCmd(func(m map[string]any) { delete(m, "not_after") }), ReasonMalformed},
		{"not_after beyond year 9999", rawCmd(func(m map[string]any) { m["not_after"] = int64(1) << 62 }), ReasonMalformed},

		{"wrong fleet", with(func(c *Command) { c.Fleet = "other" }), ReasonWrongFleet},
		{"wrong device", with(func(c *Command) { c.Device = "dev2" }), ReasonWrongDevice},
		{"fleet with a slash", rawCmd(func(m map[string]any) { m["fleet"] = "acme/dev1" }), ReasonWrongFleet},
		{"device wildcard", rawCmd(func(m map[string]any) { m["device"] = "+" }), ReasonWrongDevice},
		{"device prefix", rawCmd(func(m map[string]any) { m["device"] = "dev" }), ReasonWrongDevice},
		{"device in upper case", rawCmd(func(m map[string]any) { m["device"] = "DEV1" }), ReasonWrongDevice},

		{"expired", with(func(c *Command) { c.NotAfter = testNow.Add(-ClockSkew - time.Second).Unix() }), ReasonExpired},
		{"long expired", with(func(c *Command) { c.NotAfter = 1 }), ReasonExpired},
		{"too far ahead", with(func(c *Command) { c.NotAfter = testNow.Add(MaxValidity + ClockSkew + time.Second).Unix() }), ReasonTooFarAhead},
		{"a year ahead", with(func(c *Command) { c.NotAfter = testNow.AddDate(1, 0, 0).Unix() }), ReasonTooFarAhead},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nonces, _ := openNonceFile(t)
			v := newTestVerifier(t, key, nonces)
			cmd, err := v.Verify(tt.env, testNow)
			if got := RejectReason(err); got != tt.want {
				t.Fatalf("Verify reason = %q (%v); want %q", got, err, tt.want)
			}
			if tt.want == "" && cmd == nil {
				t.Fatal("Verify accepted but returned no command")
			}
			if tt.want != "" {
				if cmd != nil {
					t.Errorf("Verify rejected but returned %+v", cmd)
				}
				if _, ok := errors.AsType[*RejectError](err); !ok {
					t.Errorf("Verify error %T is not a *RejectError", err)
				}
			}
		})
	}
}

// loosePadding sets the unused low bits of the last character before "==",
// giving a second encoding of the same bytes that only strict decoding
// refuses.
func loosePadding(enc string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := len(enc) - 3
	return enc[:i] + string(alphabet[strings.IndexByte(alphabet, enc[i])|1]) + enc[i+1:]
}

// lineBreak puts an escaped CR LF in the middle of base64 text in a JSON
// string: Go's base64 decoders skip line breaks, so the bytes are the same.
func lineBreak(enc string) string { return enc[:len(enc)/2] + `\r\n` + enc[len(enc)/2:] }

func flipBit(b []byte) []byte {
	b = bytes.Clone(b)
	b[len(b)/2] ^= 1
	return b
}

func TestVerifyReturnsTheSignedCommand(t *testing.T) {
	key := testKey(1)
	nonces, _ := openNonceFile(t)
	want := openCmd()
	want.Nonce = "given-nonce-0123456789"
	got, err := newTestVerifier(t, key, nonces).Verify(mustSign(t, key, want), testNow)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("Verify = %s; want %s", gotJSON, wantJSON)
	}
}

// TestVerifyReplay: an envelope is accepted once, also across a restart of
// the agent, until it expires.
func TestVerifyReplay(t *testing.T) {
	key := testKey(1)
	env := mustSign(t, key, openCmd())
	nonces, path := openNonceFile(t)
	v := newTestVerifier(t, key, nonces)
	if _, err := v.Verify(env, testNow); err != nil {
		t.Fatalf("first Verify: %v", err)
	}
	if _, err := v.Verify(env, testNow.Add(time.Second)); RejectReason(err) != ReasonReplayed {
		t.Fatalf("second Verify = %v; want %s", err, ReasonReplayed)
	}

	// Restart: a new store from the same file, later in the window.
	nonces.Close()
	later := testNow.Add(DefaultValidity)
	reopened, err := OpenFileNonceStore(path, later)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer reopened.Close()
	v = newTestVerifier(t, key, reopened)
	if _, err := v.Verify(env, later); RejectReason(err) != ReasonReplayed {
		t.Fatalf("Verify after restart = %v; want %s", err, ReasonReplayed)
	}
	// Once the store may forget the nonce, the command has expired.
	if _, err := v.Verify(env, later.Add(ClockSkew+time.Second)); RejectReason(err) != ReasonExpired {
		t.Fatalf("Verify after the window = %v; want %s", err, ReasonExpired)
	}
}

// TestVerifyRejectedKeepsNonce: a command that fails a check does not use up
// its nonce, so an attacker replaying a near miss cannot block the real one.
func TestVerifyRejectedKeepsNonce(t *testing.T) {
	key := testKey(1)
	nonces, _ := openNonceFile(t)
	v := newTestVerifier(t, key, nonces)
	for _, edit := range []func(*Command){
		func(c *Command) { c.Device = "dev2" },
		func(c *Command) { c.NotAfter = 1 },
		func(c *Command) { c.Type = "reboot" },
	} {
		c := openCmd()
		c.Nonce = "shared-nonce-0123456789"
		edit(&c)
		if _, err := v.Verify(signRawCmd(key, c), testNow); err == nil {
			t.Fatalf("Verify(%+v) accepted", c)
		}
	}
	c := openCmd()
	c.Nonce = "shared-nonce-0123456789"
	if _, err := v.Verify(mustSign(t, key, c), testNow); err != nil {
		t.Fatalf("Verify after rejections = %v; want accepted", err)
	}
}

func signRawCmd(key ed25519.PrivateKey, c Command) []byte {
	b, _ := json.Marshal(c)
	return signRaw(key, b)
}

// TestVerifyConcurrentReplay: of many simultaneous deliveries of one
// envelope exactly one is accepted.
func TestVerifyConcurrentReplay(t *testing.T) {
	key := testKey(1)
	nonces, _ := openNonceFile(t)
	v := newTestVerifier(t, key, nonces)
	env := mustSign(t, key, openCmd())
	var accepted, replayed atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			_, err := v.Verify(env, testNow)
			switch RejectReason(err) {
			case "":
				accepted.Add(1)
			case ReasonReplayed:
				replayed.Add(1)
			default:
				t.Errorf("Verify: %v", err)
			}
		})
	}
	wg.Wait()
	if accepted.Load() != 1 || replayed.Load() != 15 {
		t.Errorf("accepted %d, replayed %d; want 1 and 15", accepted.Load(), replayed.Load())
	}
}

// TestVerifyStoreFailure: when the nonce cannot be recorded, nothing is
// accepted.
func TestVerifyStoreFailure(t *testing.T) {
	key := testKey(1)
	nonces, _ := openNonceFile(t)
	v := newTestVerifier(t, key, nonces)
	nonces.Close()
	_, err := v.Verify(mustSign(t, key, openCmd()), testNow)
	if RejectReason(err) != ReasonInternal || !errors.Is(err, ErrClosed) {
		t.Fatalf("Verify with a closed store = %v; want %s wrapping ErrClosed", err, ReasonInternal)
	}
}

func TestNewVerifier(t *testing.T) {
	pub := testKey(1).Public().(ed25519.PublicKey)
	nonces := &memNonces{}
	tests := []struct {
		name          string
		key           ed25519.PublicKey
		fleet, device string
		nonces        NonceStore
		ok            bool
	}{
		{"valid", pub, testFleet, testDevice, nonces, true},
		{"short key", pub[:31], testFleet, testDevice, nonces, false},
		{"no key", nil, testFleet, testDevice, nonces, false},
		{"bad fleet", pub, "a/b", testDevice, nonces, false},
		{"wildcard device", pub, testFleet, "#", nonces, false},
		{"no store", pub, testFleet, testDevice, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewVerifier(tt.key, tt.fleet, tt.device, tt.nonces)
			if (err == nil) != tt.ok {
				t.Errorf("NewVerifier err = %v; want ok %v", err, tt.ok)
			}
		})
	}
}

func TestRejectReason(t *testing.T) {
	wrapped := errors.Join(errors.New("context"), reject(ReasonExpired, nil))
	for _, tt := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{reject(ReasonReplayed, nil), ReasonReplayed},
		{wrapped, ReasonExpired},
		{errors.New("disk on fire"), ReasonInternal},
	} {
		if got := RejectReason(tt.err); got != tt.want {
			t.Errorf("RejectReason(%v) = %q; want %q", tt.err, got, tt.want)
		}
	}
	if got, want := reject(ReasonMalformed, errors.New("envelope: eof")).Error(), "control: command rejected: malformed: envelope: eof"; got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
}
