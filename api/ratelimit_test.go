package api

import (
	"fmt"
	"testing"
	"time"
)

func TestFailureLimiter(t *testing.T) {
	t.Parallel()
	l := newFailureLimiter(2, time.Minute)
	t0 := time.Unix(1_000_000, 0)
	for i := range 2 {
		if _, ok := l.take("k", t0.Add(time.Duration(i)*time.Second)); !ok {
			t.Fatalf("attempt %d refused", i+1)
		}
	}
	if wait, ok := l.take("k", t0.Add(10*time.Second)); ok || wait != 50*time.Second {
		t.Errorf("third attempt: ok %v, wait %v; want refused for 50s", ok, wait)
	}
	// A forgiven attempt frees its place.
	l.forgive("k", t0.Add(time.Second))
	if _, ok := l.take("k", t0.Add(10*time.Second)); !ok {
		t.Error("attempt after a forgiven one refused")
	}
	// Failures leave the window one by one.
	if _, ok := l.take("k", t0.Add(time.Minute)); !ok {
		t.Error("attempt after the oldest failure left the window refused")
	}
}

// TestFailureLimiterBounded: however many keys fail, the limiter keeps at
// most maxLimiterKeys, dropping those whose failures expired first.
func TestFailureLimiterBounded(t *testing.T) {
	t.Parallel()
	l := newFailureLimiter(5, time.Minute)
	t0 := time.Unix(1_000_000, 0)
	l.take("old", t0)
	later := t0.Add(2 * time.Minute)
	for i := range maxLimiterKeys + 100 {
		l.take(fmt.Sprintf("key-%d", i), later.Add(time.Duration(i)))
	}
	if n := len(l.failures); n > maxLimiterKeys {
		t.Errorf("%d keys kept; want at most %d", n, maxLimiterKeys)
	}
	if _, ok := l.failures["old"]; ok {
		t.Error("an expired key was kept while live ones were dropped")
	}
	if _, ok := l.failures[fmt.Sprintf("key-%d", maxLimiterKeys+99)]; !ok {
		t.Error("the newest key was dropped")
	}
}

func TestSourceKey(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ addr, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"not an address", "not an address"},
	} {
		if got := sourceKey(tt.addr); got != tt.want {
			t.Errorf("sourceKey(%q) = %q; want %q", tt.addr, got, tt.want)
		}
	}
}
