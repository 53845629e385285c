package control

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestDeviceRequestAccepted(t *testing.T) {
	pub, priv := newDeviceKey(t)
	at := time.Unix(1_800_000_000, 0)
	body := BodyDigest([]byte("chunk"))
	cred := SignDeviceRequest(priv, "acme", "dev-1", "PUT", "/api/v1/device/sessions/s1/files/a?offset=5", body, at)
	if !strings.HasPrefix(cred, "r1.1800000000.") || len(cred) > maxDeviceRequestLen {
		t.Fatalf("SignDeviceRequest = %q", cred)
	}
	for _, skew := range []time.Duration{0, DeviceRequestSkew, -DeviceRequestSkew} {
		req, err := CheckDeviceRequest(pub, "acme", "dev-1", "PUT", "/api/v1/device/sessions/s1/files/a?offset=5", body, cred, at.Add(skew))
		if err != nil {
			t.Fatalf("at %v: %v", skew, err)
		}
		if !req.At.Equal(at) || !req.Expires.Equal(at.Add(DeviceRequestSkew)) || !validNonce(req.Nonce) {
			t.Fatalf("at %v: %+v", skew, req)
		}
	}
	if again := SignDeviceRequest(priv, "acme", "dev-1", "PUT", "/x", body, at); again == SignDeviceRequest(priv, "acme", "dev-1", "PUT", "/x", body, at) {
		t.Fatal("two credentials for one request share a nonce")
	}
}

// TestDeviceRequestRefused changes, one at a time, everything a request
// credential is bound to, and tries the MQTT password in its place.
func TestDeviceRequestRefused(t *testing.T) {
	pub, priv := newDeviceKey(t)
	otherPub, _ := newDeviceKey(t)
	at := time.Unix(1_800_000_000, 0)
	const uri = "/api/v1/device/requests"
	body := BodyDigest([]byte(`{"reason":"help"}`))
	cred := SignDeviceRequest(priv, "acme", "dev-1", "POST", uri, body, at)
	parts := strings.Split(cred, ".")
	for _, tt := range []struct {
		name                 string
		pub                  []byte
		fleet, dev, method   string
		body                 []byte
		uri, cred            string
		now                  time.Time
		wantClock, wantShape bool
	}{
		{name: "another key", pub: otherPub},
		{name: "another fleet", fleet: "other"},
		{name: "another device", dev: "dev-2"},
		{name: "another method", method: "PUT"},
		{name: "another path", uri: "/api/v1/device/owner-link"},
		{name: "a query added", uri: uri + "?x=1"},
		{name: "another body", body: []byte(`{"reason":"evil"}`)},
		{name: "too late", now: at.Add(DeviceRequestSkew + time.Second), wantClock: true},
		{name: "too early", now: at.Add(-DeviceRequestSkew - time.Second), wantClock: true},
		{name: "another time", cred: strings.Join([]string{parts[0], "1800000001", parts[2], parts[3]}, ".")},
		{name: "another nonce", cred: strings.Join([]string{parts[0], parts[1], "AAAAAAAAAAAAAAAAAAAAAA", parts[3]}, "."), wantShape: false},
		{name: "the MQTT password", cred: DevicePassword(priv, "acme", "dev-1", at), wantShape: true},
		{name: "the wrong version", cred: "r2" + cred[2:], wantShape: true},
		{name: "a short nonce", cred: strings.Join([]string{parts[0], parts[1], "AAAA", parts[3]}, "."), wantShape: true},
		{name: "a newline in the URI", uri: uri + "\nx"},
		{name: "too long", cred: cred + strings.Repeat("A", 200), wantShape: true},
		{name: "empty", cred: "", wantShape: true},
	} {
		p, fleet, dev, method, u, c, now := pub, "acme", "dev-1", "POST", uri, cred, at
		if tt.pub != nil {
			p = tt.pub
		}
		for _, s := range []struct {
			v    string
			into *string
		}{{tt.fleet, &fleet}, {tt.dev, &dev}, {tt.method, &method}, {tt.uri, &u}} {
			if s.v != "" {
				*s.into = s.v
			}
		}
		if tt.cred != "" || tt.name == "empty" {
			c = tt.cred
		}
		if !tt.now.IsZero() {
			now = tt.now
		}
		d := body
		if tt.body != nil {
			d = BodyDigest(tt.body)
		}
		_, err := CheckDeviceRequest(p, fleet, dev, method, u, d, c, now)
		if !errors.Is(err, ErrDeviceRequest) {
			t.Errorf("%s: err = %v; want ErrDeviceRequest", tt.name, err)
		}
		if errors.Is(err, ErrDeviceClock) != tt.wantClock {
			t.Errorf("%s: err = %v; clock error %v", tt.name, err, tt.wantClock)
		}
		if tt.wantShape && !strings.Contains(err.Error(), "malformed") {
			t.Errorf("%s: err = %v; want malformed", tt.name, err)
		}
	}
	// Nor does a request credential log in to a broker.
	if err := CheckDevicePassword(pub, "acme", "dev-1", cred, at); err == nil {
		t.Error("a request credential was accepted as an MQTT password")
	}
	if err := CheckDevicePassword(pub, "acme", "dev-1", DevicePassword(priv, "acme", "dev-1", at), at); err != nil {
		t.Errorf("the MQTT password itself: %v", err)
	}
}

func TestMemoryNonceStore(t *testing.T) {
	s := NewMemoryNonceStore(2, 0)
	now := time.Unix(1_800_000_000, 0)
	remember := func(n string, until, at time.Time) bool {
		t.Helper()
		fresh, err := s.RememberFor("", n, until, at)
		if err != nil {
			t.Fatalf("Remember(%s): %v", n, err)
		}
		return fresh
	}
	a, b, c := strings.Repeat("a", 22), strings.Repeat("b", 22), strings.Repeat("c", 22)
	if !remember(a, now.Add(time.Minute), now) || remember(a, now.Add(time.Minute), now) {
		t.Fatal("a nonce was not fresh exactly once")
	}
	remember(b, now.Add(time.Minute), now)
	if _, err := s.RememberFor("", c, now.Add(time.Minute), now); err == nil {
		t.Fatal("a full store took a third nonce")
	}
	// Once the first two have expired there is room again.
	if !remember(c, now.Add(3*time.Minute), now.Add(2*time.Minute)) {
		t.Fatal("no room after expiry")
	}
	if _, err := s.RememberFor("", "short", now, now); err == nil {
		t.Fatal("a short nonce was taken")
	}
}

// TestMemoryNonceStoreQuota: one owner's flood fills its share, not the
// store: another owner's nonces are still taken.
func TestMemoryNonceStoreQuota(t *testing.T) {
	s := NewMemoryNonceStore(100, 3)
	now := time.Unix(1_800_000_000, 0)
	nonce := func(i int) string { return fmt.Sprintf("%022d", i) }
	for i := range 3 {
		if fresh, err := s.RememberFor("flood", nonce(i), now.Add(time.Minute), now); !fresh || err != nil {
			t.Fatalf("nonce %d: %v, %v", i, fresh, err)
		}
	}
	if _, err := s.RememberFor("flood", nonce(3), now.Add(time.Minute), now); !errors.Is(err, ErrNonceQuota) {
		t.Fatalf("past the share: %v; want ErrNonceQuota", err)
	}
	if fresh, err := s.RememberFor("other", nonce(4), now.Add(time.Minute), now); !fresh || err != nil {
		t.Fatalf("another owner: %v, %v", fresh, err)
	}
	// A nonce is fresh once, whoever presents it.
	if fresh, _ := s.RememberFor("other", nonce(0), now.Add(time.Minute), now); fresh {
		t.Fatal("another owner replayed the flood's nonce")
	}
	// Once they expire, the flooding owner has room again.
	later := now.Add(2 * time.Minute)
	if fresh, err := s.RememberFor("flood", nonce(5), later.Add(time.Minute), later); !fresh || err != nil {
		t.Fatalf("after expiry: %v, %v", fresh, err)
	}
}

func TestContentDigest(t *testing.T) {
	d := BodyDigest([]byte("x"))
	v := FormatContentDigest(d)
	if got, ok := ParseContentDigest(v); !ok || got != d {
		t.Fatalf("ParseContentDigest(%q) = %x, %v", v, got, ok)
	}
	for _, bad := range []string{"", v[9:], "sha-512=:" + v[9:], "sha-256=:" + v[9:len(v)-1], v + ", sha-512=:AA==:", "sha-256=:AAAA:", "sha-256=:" + v[9:13] + "\n" + v[13:]} {
		if _, ok := ParseContentDigest(bad); ok {
			t.Errorf("ParseContentDigest(%q) accepted", bad)
		}
	}
}
