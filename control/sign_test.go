package control

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func TestSignFillsVersionAndNonce(t *testing.T) {
	key := testKey(1)
	c := openCmd()
	c.V = 0
	seen := map[string]bool{}
	for range 2 {
		payload, sig := split(t, mustSign(t, key, c))
		if !ed25519.Verify(key.Public().(ed25519.PublicKey), payload, sig) {
			t.Fatal("signature does not verify over the payload bytes")
		}
		var got Command
		if err := json.Unmarshal(payload, &got); err != nil {
			t.Fatalf("payload: %v", err)
		}
		if got.V != Version {
			t.Errorf("v = %d; want %d", got.V, Version)
		}
		if n, err := base64.RawURLEncoding.DecodeString(got.Nonce); err != nil || len(n) != nonceBytes {
			t.Errorf("nonce %q is not %d random bytes (%v)", got.Nonce, nonceBytes, err)
		}
		if seen[got.Nonce] {
			t.Errorf("nonce %q repeated", got.Nonce)
		}
		seen[got.Nonce] = true
	}

	c.Nonce = "caller-chosen-nonce-01"
	payload, _ := split(t, mustSign(t, key, c))
	if !strings.Contains(string(payload), `"nonce":"caller-chosen-nonce-01"`) {
		t.Errorf("payload %s lost the caller's nonce", payload)
	}
}

// TestSignRefuses: the server cannot send what every agent would reject.
func TestSignRefuses(t *testing.T) {
	tests := []struct {
		name string
		key  ed25519.PrivateKey
		edit func(*Command)
	}{
		{"short key", testKey(1)[:32], func(*Command) {}},
		{"version 2", testKey(1), func(c *Command) { c.V = 2 }},
		{"unknown type", testKey(1), func(c *Command) { c.Type = "reboot" }},
		{"fleet with a slash", testKey(1), func(c *Command) { c.Fleet = "a/b" }},
		{"empty device", testKey(1), func(c *Command) { c.Device = "" }},
		{"session with a space", testKey(1), func(c *Command) { c.Session = "s 1" }},
		{"short nonce", testKey(1), func(c *Command) { c.Nonce = "abc" }},
		{"no not_after", testKey(1), func(c *Command) { c.NotAfter = 0 }},
		{"open without relay", testKey(1), func(c *Command) { c.Relay = "" }},
		{"port out of range", testKey(1), func(c *Command) { c.Ports = []int{70000} }},
		{"oversized", testKey(1), func(c *Command) { c.Ports = make([]int, 4000); fillPorts(c.Ports) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := openCmd()
			tt.edit(&c)
			if env, err := Sign(tt.key, c); err == nil {
				t.Errorf("Sign = %s; want an error", env)
			}
		})
	}
}

func fillPorts(ports []int) {
	for i := range ports {
		ports[i] = 10000 + i
	}
}
