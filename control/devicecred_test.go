package control

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func newDeviceKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func TestDevicePasswordAccepted(t *testing.T) {
	pub, priv := newDeviceKey(t)
	minted := time.Unix(1_800_000_000, 0)
	pw := DevicePassword(priv, "acme", "dev-1", minted)
	if !strings.HasPrefix(pw, "v1.1800000000.") || len(pw) > maxDevicePasswordLen {
		t.Fatalf("DevicePassword = %q; want v1.1800000000.<86 chars>", pw)
	}
	for _, skew := range []time.Duration{0, DevicePasswordSkew, -DevicePasswordSkew, 9 * time.Minute} {
		if err := CheckDevicePassword(pub, "acme", "dev-1", pw, minted.Add(skew)); err != nil {
			t.Errorf("CheckDevicePassword at %v = %v; want nil", skew, err)
		}
	}
}

// TestDevicePasswordRefused tries to log in with everything a password
// could be wrong about.
func TestDevicePasswordRefused(t *testing.T) {
	pub, priv := newDeviceKey(t)
	otherPub, otherPriv := newDeviceKey(t)
	now := time.Unix(1_800_000_000, 0)
	good := DevicePassword(priv, "acme", "dev-1", now)
	version, unix, sig := splitPassword(t, good)

	// signedAs signs the device message for arbitrary text in the time
	// field, to check that only the canonical spelling is accepted.
	signedAs := func(unixText string) string {
		s := ed25519.Sign(priv, devicePasswordMessage("acme", "dev-1", unixText))
		return "v1." + unixText + "." + devicePasswordEncoding.EncodeToString(s)
	}
	flipped := []byte(sig) // still valid base64url, so only the signature check can catch it
	if flipped[10] == 'A' {
		flipped[10] = 'B'
	} else {
		flipped[10] = 'A'
	}

	for _, tt := range []struct {
		name          string
		pub           ed25519.PublicKey
		fleet, device string
		password      string
		now           time.Time
		want          string // the check that must catch it
	}{
		{"other device's key", otherPub, "acme", "dev-1", good, now, "signature"},
		{"signed by other key", pub, "acme", "dev-1", DevicePassword(otherPriv, "acme", "dev-1", now), now, "signature"},
		{"other device's name", pub, "acme", "dev-2", good, now, "signature"},
		{"other fleet", pub, "other", "dev-1", good, now, "signature"},
		{"password of another device", pub, "acme", "dev-1", DevicePassword(priv, "acme", "dev-2", now), now, "signature"},
		{"stale", pub, "acme", "dev-1", good, now.Add(DevicePasswordSkew + time.Second), "away"},
		{"from the future", pub, "acme", "dev-1", good, now.Add(-DevicePasswordSkew - time.Second), "away"},
		{"timestamp moved", pub, "acme", "dev-1", version + "." + strconv.FormatInt(now.Unix()+1, 10) + "." + sig, now, "signature"},
		{"signature altered", pub, "acme", "dev-1", version + "." + unix + "." + string(flipped), now, "signature"},
		{"signature truncated", pub, "acme", "dev-1", good[:len(good)-2], now, "encoding"},
		{"signature padded", pub, "acme", "dev-1", good + "==", now, "encoding"},
		{"line break in the signature", pub, "acme", "dev-1", good[:40] + "\r\n" + good[40:], now, "encoding"},
		{"standard base64", pub, "acme", "dev-1", version + "." + unix + "." + strings.NewReplacer("-", "+", "_", "/").Replace(sig) + "+/", now, "encoding"},
		{"leading zero", pub, "acme", "dev-1", signedAs("0" + unix), now, "bad time"},
		{"plus sign", pub, "acme", "dev-1", signedAs("+" + unix), now, "bad time"},
		{"negative time", pub, "acme", "dev-1", signedAs("-1"), time.Unix(-1, 0), "bad time"},
		{"huge time", pub, "acme", "dev-1", signedAs("9999999999999999999"), now, "bad time"},
		{"other version", pub, "acme", "dev-1", "v2" + good[2:], now, "version"},
		{"no version", pub, "acme", "dev-1", unix + "." + sig, now, "parts"},
		{"extra part", pub, "acme", "dev-1", good + ".x", now, "parts"},
		{"empty", pub, "acme", "dev-1", "", now, "parts"},
		{"too long", pub, "acme", "dev-1", good + strings.Repeat("A", 200), now, "too long"},
		{"fleet with slash", pub, "acme/x", "dev-1", DevicePassword(priv, "acme/x", "dev-1", now), now, "name"},
		{"device with newline", pub, "acme", "dev-1\nx", DevicePassword(priv, "acme", "dev-1\nx", now), now, "name"},
		{"upper case name", pub, "ACME", "dev-1", DevicePassword(priv, "ACME", "dev-1", now), now, "name"},
		{"empty device", pub, "acme", "", DevicePassword(priv, "acme", "", now), now, "name"},
		{"wildcard device", pub, "acme", "+", DevicePassword(priv, "acme", "+", now), now, "name"},
		{"short key", pub[:31], "acme", "dev-1", good, now, "ed25519"},
		{"no key", nil, "acme", "dev-1", good, now, "ed25519"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckDevicePassword(tt.pub, tt.fleet, tt.device, tt.password, tt.now)
			if !errors.Is(err, ErrDevicePassword) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("CheckDevicePassword = %v; want ErrDevicePassword about %q", err, tt.want)
			}
		})
	}
}

// TestDevicePasswordContext: the signature covers the context string, so a
// signature the device key made over the same fields for another purpose is
// no password.
func TestDevicePasswordContext(t *testing.T) {
	pub, priv := newDeviceKey(t)
	now := time.Unix(1_800_000_000, 0)
	unix := strconv.FormatInt(now.Unix(), 10)
	bare := ed25519.Sign(priv, []byte("acme\ndev-1\n"+unix))
	pw := "v1." + unix + "." + devicePasswordEncoding.EncodeToString(bare)
	if err := CheckDevicePassword(pub, "acme", "dev-1", pw, now); !errors.Is(err, ErrDevicePassword) {
		t.Errorf("CheckDevicePassword(no context) = %v; want ErrDevicePassword", err)
	}
}

func TestDevicePasswordClockMessage(t *testing.T) {
	pub, priv := newDeviceKey(t)
	now := time.Unix(1_800_000_000, 0)
	err := CheckDevicePassword(pub, "acme", "dev-1", DevicePassword(priv, "acme", "dev-1", now.Add(-time.Hour)), now)
	if err == nil || !strings.Contains(err.Error(), "1h0m0s away") || !strings.Contains(err.Error(), "clock") {
		t.Errorf("stale password error = %v; want it to name the 1h offset and the clock", err)
	}
}

func TestDeviceUsername(t *testing.T) {
	u, err := DeviceUsername("acme", "dev-1")
	if err != nil || u != "acme/dev-1" {
		t.Fatalf("DeviceUsername = %q, %v; want acme/dev-1", u, err)
	}
	if f, d, ok := ParseDeviceUsername(u); !ok || f != "acme" || d != "dev-1" {
		t.Errorf("ParseDeviceUsername(%q) = %q, %q, %v; want acme, dev-1, true", u, f, d, ok)
	}
	for _, bad := range []string{"", "acme", "acme/", "/dev-1", "acme/dev-1/x", "acme/+", "#/dev-1", "Acme/dev-1", "acme/dev 1", "$SYS/x", strings.Repeat("a", 64) + "/d"} {
		if f, d, ok := ParseDeviceUsername(bad); ok {
			t.Errorf("ParseDeviceUsername(%q) = %q, %q, true; want false", bad, f, d)
		}
	}
	for _, names := range [][2]string{{"", "d"}, {"f", ""}, {"a/b", "c"}, {"f", "+"}} {
		if u, err := DeviceUsername(names[0], names[1]); err == nil {
			t.Errorf("DeviceUsername(%q, %q) = %q; want an error", names[0], names[1], u)
		}
	}
}

func splitPassword(t *testing.T, pw string) (version, unix, sig string) {
	t.Helper()
	parts := strings.Split(pw, ".")
	if len(parts) != 3 {
		t.Fatalf("password %q has %d parts; want 3", pw, len(parts))
	}
	return parts[0], parts[1], parts[2]
}
