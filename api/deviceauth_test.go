package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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

// deviceCred is the Authorization header of a device's request with body
// (sent with its Content-Digest, as doWithAuth and doDevice do), made with
// key at at.
func deviceCred(fleet, device string, key ed25519.PrivateKey, method, requestURI string, body []byte, at time.Time) string {
	return "Device " + fleet + "/" + device + " " + control.SignDeviceRequest(key, fleet, device, method, requestURI, control.BodyDigest(body), at)
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
		return deviceCred(fl.Name, d.Name, key, method, uri, nil, at)
	}
	for _, tt := range []struct{ name, auth string }{
		{"another device's key", deviceCred(fl.Name, d.Name, otherKey, "GET", path, nil, time.Now())},
		{"a credential from an hour ago", mine("GET", path, time.Now().Add(-time.Hour))},
		{"a credential for another fleet", "Device other/" + d.Name + " " + control.SignDeviceRequest(key, fl.Name, d.Name, "GET", path, control.BodyDigest(nil), time.Now())},
		{"a device that does not exist", deviceCred(fl.Name, "nosuch", key, "GET", path, nil, time.Now())},
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
	cred := deviceCred(fl.Name, d.Name, key, "GET", "/api/v1/device", nil, time.Now())
	if r := doWithAuth(t, "GET", "/api/v1/device", cred); r.status != http.StatusOK {
		t.Fatalf("first use: %d", r.status)
	}
	for range 3 {
		if r := doWithAuth(t, "GET", "/api/v1/device", cred); r.status != http.StatusUnauthorized {
			t.Fatalf("replayed credential: %d; want 401", r.status)
		}
	}
}

// TestDeviceAuthReplayAcrossNodes: with the nonces in the store that
// every API node shares (StoreNonces), a credential used on one node is
// refused by another; with each node's memory alone, it was not.
func TestDeviceAuthReplayAcrossNodes(t *testing.T) {
	t.Parallel()
	fl := fx.newFleet(t)
	d, key := newKeyedDevice(t, fl)
	a := newServer(t, Config{DeviceNonces: StoreNonces(fx.store)})
	b := newServer(t, Config{DeviceNonces: StoreNonces(fx.store)})
	cred := deviceCred(fl.Name, d.Name, key, "GET", "/api/v1/device", nil, time.Now())
	if r := doWithAuthOn(t, a.ts, "GET", "/api/v1/device", cred); r.status != http.StatusOK {
		t.Fatalf("first use, on node a: %d %s", r.status, r.body)
	}
	if r := doWithAuthOn(t, b.ts, "GET", "/api/v1/device", cred); r.status != http.StatusUnauthorized {
		t.Fatalf("the credential replayed to node b: %d; want 401", r.status)
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
	r := doWithAuth(t, "GET", "/api/v1/device", deviceCred(fl.Name, d.Name, key, "GET", "/api/v1/device", nil, time.Now().Add(time.Hour)))
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
	return doWithAuthOn(t, fx.ts, method, path, authz)
}

// doWithAuthOn is doWithAuth against the server ts.
func doWithAuthOn(t *testing.T, ts *httptest.Server, method, path, authz string) response {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, nil)
	must(t, err)
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	req.Header.Set(control.ContentDigestHeader, control.FormatContentDigest(control.BodyDigest(nil)))
	resp, err := ts.Client().Do(req)
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

// TestDeviceAuthBody: a credential is good for the body it was made for
// only. Whoever sits between the device and the server (a party that ends
// TLS before it) and puts another body on a credential it saw, or drops
// the digest, is refused, and nothing of that body is acted on.
func TestDeviceAuthBody(t *testing.T) {
	t.Parallel()
	fl := fx.newFleet(t)
	d, key := newKeyedDevice(t, fl)
	send := func(method, path string, signed, sent []byte, digest bool) response {
		t.Helper()
		req, err := http.NewRequest(method, fx.ts.URL+path, bytes.NewReader(sent))
		must(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", deviceCred(fl.Name, d.Name, key, method, req.URL.RequestURI(), signed, time.Now()))
		if digest {
			req.Header.Set(control.ContentDigestHeader, control.FormatContentDigest(control.BodyDigest(signed)))
		}
		resp, err := fx.ts.Client().Do(req)
		must(t, err)
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		must(t, err)
		return response{status: resp.StatusCode, body: data}
	}
	asked := []byte(`{"reason":"the printer","for_s":600}`)
	forged := []byte(`{"reason":"call +1 555 0100 for a refund","for_s":600}`)
	if r := send("POST", "/api/v1/device/requests", asked, forged, true); r.status != http.StatusUnauthorized ||
		!strings.Contains(string(r.body), "not the one the device's credential was made for") {
		t.Errorf("another body under a credential: %d %s; want 401", r.status, r.body)
	}
	if r := send("POST", "/api/v1/device/requests", asked, asked, false); r.status != http.StatusUnauthorized {
		t.Errorf("no Content-Digest: %d %s; want 401", r.status, r.body)
	}
	reqs, err := fx.store.ListSupportRequests(t.Context(), store.SupportRequestFilter{DeviceID: d.ID})
	must(t, err)
	if len(reqs) != 0 {
		t.Fatalf("a refused body reached the queue: %+v", reqs)
	}
	if r := send("POST", "/api/v1/device/requests", asked, asked, true); r.status != http.StatusCreated {
		t.Errorf("the body the credential was made for: %d %s; want 201", r.status, r.body)
	}

	// A recording chunk swapped on its way is refused, and not stored.
	ses := fx.newSession(t, d)
	path := "/api/v1/device/sessions/" + ses.ID + "/files/events.jsonl?offset=0"
	if r := send("PUT", path, []byte("{\"event\":\"ls\"}\n"), []byte("{\"event\":\"nothing\"}\n"), true); r.status != http.StatusUnauthorized {
		t.Errorf("a swapped chunk: %d %s; want 401", r.status, r.body)
	}
	if _, err := os.Stat(filepath.Join(recordingDir(ses), "events.jsonl")); err == nil {
		if data, _ := os.ReadFile(filepath.Join(recordingDir(ses), "events.jsonl")); len(data) > 0 {
			t.Errorf("a swapped chunk was stored: %q", data)
		}
	}
}
