package api

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
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

	header := func(fleet, device string, key ed25519.PrivateKey, at time.Time) string {
		return "Device " + fleet + "/" + device + " " + control.DevicePassword(key, fleet, device, at)
	}
	for _, tt := range []struct{ name, auth string }{
		{"another device's key", header(fl.Name, d.Name, otherKey, time.Now())},
		{"a password from an hour ago", header(fl.Name, d.Name, key, time.Now().Add(-time.Hour))},
		{"a password for another fleet", "Device other/" + d.Name + " " + control.DevicePassword(key, fl.Name, d.Name, time.Now())},
		{"a device that does not exist", header(fl.Name, "nosuch", key, time.Now())},
		{"no password", "Device " + fl.Name + "/" + d.Name},
		{"a user's token", "Bearer " + fx.tokens["admin"]},
		{"nothing", ""},
	} {
		r := doWithAuth(t, "GET", "/api/v1/device", tt.auth)
		if r.status != http.StatusUnauthorized {
			t.Errorf("%s: status %d; want 401", tt.name, r.status)
		}
	}
	// A device's credential is no login on users' routes.
	if r := doWithAuth(t, "GET", "/api/v1/devices", header(fl.Name, d.Name, key, time.Now())); r.status != http.StatusUnauthorized {
		t.Errorf("a device credential on a user route: %d", r.status)
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
	return response{status: resp.StatusCode}
}
