package api

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/auth"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/store"
)

// newKeyedDevice enrolls a device whose private key the test holds.
func newKeyedDevice(t testing.TB, fl *store.Fleet) (*store.Device, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	sshPub, err := ssh.NewPublicKey(pub)
	must(t, err)
	secret, _ := fx.newEnrollmentToken(t, fl, 1, time.Now().Add(time.Hour))
	d := &store.Device{Name: fx.name("dev"), PublicKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))), EnrolledAt: time.Now().UTC()}
	must(t, fx.store.EnrollDevice(context.Background(), auth.HashSecret(secret), time.Now(), d,
		func(*store.Fleet) (string, error) { return "cert", nil }))
	d.FleetName = fl.Name
	return d, priv
}

// deviceCred is the Authorization header of a device's request, made with
// key at at.
func deviceCred(fleet, device string, key ed25519.PrivateKey, method, requestURI string, at time.Time) string {
	return "Device " + fleet + "/" + device + " " + control.SignDeviceRequest(key, fleet, device, method, requestURI, at)
}

// TestDeviceAuth tries, as an attacker would, every way of calling the
// device routes without a credential made for that very request.
func TestDeviceAuth(t *testing.T) {
	t.Parallel()
	fl := fx.newFleet(t)
	d, key := newKeyedDevice(t, fl)
	_, otherKey := newKeyedDevice(t, fl)

	c, err := apiclient.New(fx.ts.URL, apiclient.Options{Fingerprint: fx.keys.TLSFingerprint(),
		Device: &apiclient.DeviceCredentials{Fleet: fl.Name, Device: d.Name, Key: key}})
	must(t, err)
	var got struct{ ID string }
	if err := c.Do(t.Context(), "GET", "/api/v1/device", nil, nil, &got); err != nil || got.ID != d.ID {
		t.Fatalf("the device's own call: %+v, %v", got, err)
	}

	const path = "/api/v1/device"
	mine := func(method, uri string, at time.Time) string {
		return deviceCred(fl.Name, d.Name, key, method, uri, at)
	}
	for _, tt := range []struct{ name, auth string }{
		{"another device's key", deviceCred(fl.Name, d.Name, otherKey, "GET", path, time.Now())},
		{"a credential from an hour ago", mine("GET", path, time.Now().Add(-time.Hour))},
		{"a credential for another fleet", "Device other/" + d.Name + " " + control.SignDeviceRequest(key, fl.Name, d.Name, "GET", path, time.Now())},
		{"a device that does not exist", deviceCred(fl.Name, "nosuch", key, "GET", path, time.Now())},
		{"a credential for another path", mine("GET", "/api/v1/device/requests", time.Now())},
		{"a credential for another method", mine("POST", path, time.Now())},
		{"a credential for another query", mine("GET", path+"?x=1", time.Now())},
		// What the device sends its broker (maybe an external one) is
		// worth nothing here: the finding this test was written for.
		{"the device's fresh MQTT password", "Device " + fl.Name + "/" + d.Name + " " + control.DevicePassword(key, fl.Name, d.Name, time.Now())},
		{"no credential", "Device " + fl.Name + "/" + d.Name},
		{"a user's token", "Bearer " + fx.tokens["admin"]},
		{"nothing", ""},
	} {
		r := doWithAuth(t, "GET", path, tt.auth)
		if r.status != http.StatusUnauthorized {
			t.Errorf("%s: status %d; want 401", tt.name, r.status)
		}
	}
	// A device's credential is no login on users' routes.
	if r := doWithAuth(t, "GET", "/api/v1/devices", mine("GET", "/api/v1/devices", time.Now())); r.status != http.StatusUnauthorized {
		t.Errorf("a device credential on a user route: %d", r.status)
	}
}

// TestDeviceAuthReplay: a credential seen on the wire (by a TLS-terminating
// proxy, say) works once, for the device, and never again.
func TestDeviceAuthReplay(t *testing.T) {
	t.Parallel()
	fl := fx.newFleet(t)
	d, key := newKeyedDevice(t, fl)
	cred := deviceCred(fl.Name, d.Name, key, "GET", "/api/v1/device", time.Now())
	if r := doWithAuth(t, "GET", "/api/v1/device", cred); r.status != http.StatusOK {
		t.Fatalf("first use: %d", r.status)
	}
	for range 3 {
		if r := doWithAuth(t, "GET", "/api/v1/device", cred); r.status != http.StatusUnauthorized {
			t.Fatalf("replayed credential: %d; want 401", r.status)
		}
	}
}

// TestDeviceAuthOldAgent: an agent that still sends its MQTT password is
// told to upgrade, not merely refused.
func TestDeviceAuthOldAgent(t *testing.T) {
	t.Parallel()
	fl := fx.newFleet(t)
	d, key := newKeyedDevice(t, fl)
	r := doWithAuth(t, "GET", "/api/v1/device", "Device "+fl.Name+"/"+d.Name+" "+control.DevicePassword(key, fl.Name, d.Name, time.Now()))
	if r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), "upgrade porthole-agent") {
		t.Fatalf("MQTT password on the API: %d %s", r.status, r.body)
	}
}

// TestDeviceAuthClock: a device whose clock is an hour off is told so with
// the server's time, and apiclient corrects for it and gets through.
func TestDeviceAuthClock(t *testing.T) {
	t.Parallel()
	fl := fx.newFleet(t)
	d, key := newKeyedDevice(t, fl)
	r := doWithAuth(t, "GET", "/api/v1/device", deviceCred(fl.Name, d.Name, key, "GET", "/api/v1/device", time.Now().Add(time.Hour)))
	if r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), "ahead of the server's") ||
		!strings.Contains(r.header.Get("Www-Authenticate"), "clock_skew") {
		t.Fatalf("credential an hour ahead: %d %s %v", r.status, r.body, r.header)
	}
	for _, off := range []time.Duration{-3 * time.Hour, 10 * time.Minute} {
		c, err := apiclient.New(fx.ts.URL, apiclient.Options{Fingerprint: fx.keys.TLSFingerprint(),
			Device: &apiclient.DeviceCredentials{Fleet: fl.Name, Device: d.Name, Key: key},
			Now:    func() time.Time { return time.Now().Add(off) }})
		must(t, err)
		for i := range 2 { // the second call uses what the first learnt
			if err := c.Do(t.Context(), "GET", "/api/v1/device", nil, nil, nil); err != nil {
				t.Fatalf("device clock %s off, call %d: %v", off, i, err)
			}
		}
	}
}

func doWithAuth(t *testing.T, method, path, authz string) response {
	t.Helper()
	req, err := http.NewRequest(method, fx.ts.URL+path, nil)
	must(t, err)
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := fx.ts.Client().Do(req)
	must(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	must(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// TestServerTime: a device reads the server's time from the pinned API,
// to check commands by when a clock of its own is off.
func TestServerTime(t *testing.T) {
	t.Parallel()
	c, err := apiclient.New(fx.ts.URL, apiclient.Options{Fingerprint: fx.keys.TLSFingerprint()})
	must(t, err)
	got, err := c.ServerTime(t.Context())
	if err != nil || time.Until(got).Abs() > 2*time.Second {
		t.Fatalf("ServerTime = %v, %v; want about now", got, err)
	}
}
