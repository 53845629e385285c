package api

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/store"
)

// newDeviceKey makes a device key as the agent does and returns its public
// half in authorized_keys format.
func newDeviceKey(t testing.TB) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	sshPub, err := ssh.NewPublicKey(pub)
	must(t, err)
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " root@device"
}

// enrollState is what an enrollment can change in a fleet: its devices
// and its tokens' remaining uses.
func enrollState(t *testing.T, fl *store.Fleet) (devices []string, usesLeft []int) {
	t.Helper()
	ctx := context.Background()
	ds, err := fx.store.ListDevices(ctx, store.DeviceFilter{FleetIDs: []string{fl.ID}})
	must(t, err)
	for _, d := range ds {
		devices = append(devices, d.Name)
	}
	ets, err := fx.store.ListEnrollmentTokens(ctx, fl.ID)
	must(t, err)
	for _, et := range ets {
		usesLeft = append(usesLeft, et.UsesLeft)
	}
	return devices, usesLeft
}

func TestEnroll(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fl := fx.newFleet(t)
	// An operator makes a token through the API.
	r := do(t, fx.ts, "POST", "/api/v1/fleets/"+fl.Name+"/enrollment-tokens", fx.tokens["operator"], map[string]any{})
	et := decodeAs[apitype.EnrollmentToken](t, r, http.StatusCreated)
	if !strings.HasPrefix(et.Token, "phe_") || et.UsesLeft != 1 || et.MaxUses != 1 || et.Fleet != fl.Name {
		t.Fatalf("new enrollment token = %+v", et)
	}
	if d := time.Until(et.ExpiresAt); d < 23*time.Hour || d > 24*time.Hour {
		t.Errorf("token expires in %v; want 24 h", d)
	}

	// The device enrolls through the Go client, pinning the certificate.
	client, err := apiclient.New(fx.ts.URL, apiclient.Options{Fingerprint: fx.keys.TLSFingerprint()})
	must(t, err)
	key := newDeviceKey(t)
	resp, err := client.Enroll(ctx, apitype.EnrollRequest{Token: et.Token, Name: "amp-1", PublicKey: key})
	must(t, err)
	if resp.Device.Name != "amp-1" || resp.Device.Fleet != fl.Name || resp.Device.ID == "" {
		t.Errorf("device = %+v", resp.Device)
	}
	for _, c := range []struct{ name, got, want string }{
		{"control_key", resp.ControlKey, fx.keys.ControlPublicKey()},
		{"user_ca", resp.UserCA, fx.keys.UserCAPublicKey()},
		{"host_ca", resp.HostCA, fx.keys.HostCAPublicKey()},
		{"tls_fingerprint", resp.TLSFingerprint, fx.keys.TLSFingerprint()},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q; want %q", c.name, c.got, c.want)
		}
	}
	checkHostCert(t, resp.HostCert, key, fl.Name, "amp-1")

	// The token is used up, and says so.
	r = do(t, fx.ts, "POST", "/api/v1/enroll", "", apitype.EnrollRequest{Token: et.Token, Name: "amp-2", PublicKey: newDeviceKey(t)})
	r.wantError(t, http.StatusUnauthorized, apitype.CodeTokenUsedUp)

	// Engineers of the fleet see the device.
	r = do(t, fx.ts, "GET", "/api/v1/devices?fleet="+fl.Name+"&name=amp-1", fx.tokens["auditor"], nil)
	ds := decodeAs[[]apitype.Device](t, r, http.StatusOK)
	if len(ds) != 1 || ds[0].ID != resp.Device.ID {
		t.Errorf("devices = %+v; want amp-1", ds)
	}
}

// checkHostCert verifies an enrolled device's host certificate as an SSH
// client would: signed by the host CA, for the device's key and both its
// names, for about a year.
func checkHostCert(t *testing.T, line, deviceKey, fleet, device string) {
	t.Helper()
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	must(t, err)
	cert, ok := pub.(*ssh.Certificate)
	if !ok {
		t.Fatalf("host_cert is a %T, not a certificate", pub)
	}
	want, _, _, _, err := ssh.ParseAuthorizedKey([]byte(deviceKey))
	must(t, err)
	if !bytes.Equal(cert.Key.Marshal(), want.Marshal()) {
		t.Error("the host certificate is not for the device's key")
	}
	hostCA := fx.keys.HostCA.PublicKey()
	checker := &ssh.CertChecker{IsHostAuthority: func(auth ssh.PublicKey, _ string) bool {
		return bytes.Equal(auth.Marshal(), hostCA.Marshal())
	}}
	for _, name := range []string{device + "." + fleet + ".porthole", device + ".porthole"} {
		if err := checker.CheckHostKey(name+":22", nil, cert); err != nil {
			t.Errorf("host certificate for %s: %v", name, err)
		}
	}
	if err := checker.CheckHostKey(device+".other.porthole:22", nil, cert); err == nil {
		t.Error("the host certificate is valid for another fleet's name")
	}
	if life := time.Until(time.Unix(int64(cert.ValidBefore), 0)); life < 364*24*time.Hour || life > 366*24*time.Hour {
		t.Errorf("host certificate valid for %v more; want a year", life)
	}
}

func TestEnrollMultiUse(t *testing.T) {
	t.Parallel()
	fl := fx.newFleet(t)
	secret, _ := fx.newEnrollmentToken(t, fl, 3, time.Now().Add(time.Hour))
	for i := range 3 {
		r := do(t, fx.ts, "POST", "/api/v1/enroll", "", apitype.EnrollRequest{Token: secret, Name: fx.name("cam"), PublicKey: newDeviceKey(t)})
		if r.status != http.StatusOK {
			t.Fatalf("enrollment %d: status %d (%s)", i+1, r.status, r.body)
		}
	}
	r := do(t, fx.ts, "POST", "/api/v1/enroll", "", apitype.EnrollRequest{Token: secret, Name: "cam-last", PublicKey: newDeviceKey(t)})
	r.wantError(t, http.StatusUnauthorized, apitype.CodeTokenUsedUp)
	if devices, uses := enrollState(t, fl); len(devices) != 3 || len(uses) != 1 || uses[0] != 0 {
		t.Errorf("devices %v, uses left %v; want 3 devices and 0 uses", devices, uses)
	}
}

// TestEnrollRefusals: each bad enrollment is refused with its own answer
// and changes nothing: no device, no use of the token.
func TestEnrollRefusals(t *testing.T) {
	t.Parallel()
	fl := fx.newFleet(t)
	good, _ := fx.newEnrollmentToken(t, fl, 5, time.Now().Add(time.Hour))
	expired, _ := fx.newEnrollmentToken(t, fl, 5, time.Now().Add(-time.Minute))
	key := newDeviceKey(t)
	taken := fx.name("taken")
	do(t, fx.ts, "POST", "/api/v1/enroll", "", apitype.EnrollRequest{Token: good, Name: taken, PublicKey: key})

	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	ecPub, err := ssh.NewPublicKey(&ecKey.PublicKey)
	must(t, err)
	cert, err := fx.keys.SignHostCert(mustParseKey(t, key), fl.Name, "x", time.Now(), time.Hour)
	must(t, err)
	req := func(token, name, key string) apitype.EnrollRequest {
		return apitype.EnrollRequest{Token: token, Name: name, PublicKey: key}
	}
	for _, tt := range []struct {
		name   string
		body   any
		status int
		code   string
		text   string
	}{
		{"unknown token", req("phe_nosuchtoken", "d1", key), 401, apitype.CodeUnauthenticated, "not valid (typo, or it was deleted)"},
		{"expired token", req(expired, "d1", key), 401, apitype.CodeTokenExpired, "expired"},
		{"name taken", req(good, taken, newDeviceKey(t)), 409, apitype.CodeConflict, "a device named " + taken + " is already enrolled in fleet " + fl.Name},
		{"no token", req("", "d1", key), 400, apitype.CodeBadRequest, "token is required"},
		{"no name", req(good, "", key), 400, apitype.CodeBadRequest, "device name is required"},
		{"bad name", req(good, "Amp_1", key), 400, apitype.CodeBadRequest, `device name "Amp_1" is not allowed: use 1 to 63 lower-case letters, digits and hyphens`},
		{"long name", req(good, strings.Repeat("a", 64), key), 400, apitype.CodeBadRequest, "is not allowed"},
		{"no key", req(good, "d1", ""), 400, apitype.CodeBadRequest, "public_key is required"},
		{"garbage key", req(good, "d1", "ssh-ed25519 AAAAnotbase64"), 400, apitype.CodeBadRequest, "not one public key"},
		{"two keys", req(good, "d1", key+"\n"+newDeviceKey(t)), 400, apitype.CodeBadRequest, "not one public key"},
		{"key with options", req(good, "d1", `command="sh" `+key), 400, apitype.CodeBadRequest, "not one public key"},
		{"ecdsa key", req(good, "d1", string(ssh.MarshalAuthorizedKey(ecPub))), 400, apitype.CodeBadRequest, "devices use ed25519 keys"},
		{"certificate as key", req(good, "d1", authorizedKey(cert)), 400, apitype.CodeBadRequest, "devices use ed25519 keys"},
		{"unknown field", `{"token":"` + good + `","name":"d1","public_key":"` + key + `","fleet":"other"}`, 400, apitype.CodeBadRequest, `unknown field "fleet"`},
		{"wrong type", `{"token":"` + good + `","name":1,"public_key":"` + key + `"}`, 400, apitype.CodeBadRequest, `field "name" must be a string`},
		{"malformed JSON", `{"token":"` + good + `",`, 400, apitype.CodeBadRequest, "not valid JSON"},
		{"not an object", `["` + good + `"]`, 400, apitype.CodeBadRequest, "must be a JSON object"},
		{"two values", `{"token":"` + good + `","name":"d1","public_key":"` + key + `"} {}`, 400, apitype.CodeBadRequest, "more than one JSON value"},
		{"empty body", "", 400, apitype.CodeBadRequest, "the request body is empty"},
		{"oversized body", `{"token":"` + good + `","name":"d1","public_key":"` + key + `","x":"` + strings.Repeat("a", 64<<10) + `"}`,
			413, apitype.CodeTooLarge, "the request body is over 64 KiB"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			devBefore, usesBefore := enrollState(t, fl)
			e := do(t, fx.ts, "POST", "/api/v1/enroll", "", tt.body).wantError(t, tt.status, tt.code)
			if !strings.Contains(e.Message, tt.text) {
				t.Errorf("message = %q; want it to contain %q", e.Message, tt.text)
			}
			devAfter, usesAfter := enrollState(t, fl)
			if !slices.Equal(devAfter, devBefore) || !slices.Equal(usesBefore, usesAfter) {
				t.Errorf("a refused enrollment changed the fleet: devices %v -> %v, uses %v -> %v", devBefore, devAfter, usesBefore, usesAfter)
			}
		})
	}
}

func mustParseKey(t *testing.T, line string) ssh.PublicKey {
	t.Helper()
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	must(t, err)
	return pub
}

func TestEnrollRateLimit(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{EnrollFailuresPerAddress: 2})
	fl := fx.newFleet(t)
	good, _ := fx.newEnrollmentToken(t, fl, 1, time.Now().Add(24*time.Hour))
	for range 2 {
		r := do(t, ts.ts, "POST", "/api/v1/enroll", "", apitype.EnrollRequest{Token: "phe_guess", Name: "d1", PublicKey: newDeviceKey(t)})
		r.wantError(t, http.StatusUnauthorized, apitype.CodeUnauthenticated)
	}
	// Further tries from the address are refused, even with a good token.
	r := do(t, ts.ts, "POST", "/api/v1/enroll", "", apitype.EnrollRequest{Token: good, Name: "d1", PublicKey: newDeviceKey(t)})
	e := r.wantError(t, http.StatusTooManyRequests, apitype.CodeRateLimited)
	if want := "too many failed enrollments from your address; try again in 15 minutes"; e.Message != want {
		t.Errorf("message = %q; want %q", e.Message, want)
	}
	if r.header.Get("Retry-After") != "900" {
		t.Errorf("Retry-After = %q; want 900", r.header.Get("Retry-After"))
	}
	ts.clock.Advance(DefaultLimitWindow)
	r = do(t, ts.ts, "POST", "/api/v1/enroll", "", apitype.EnrollRequest{Token: good, Name: "d1", PublicKey: newDeviceKey(t)})
	if r.status != http.StatusOK {
		t.Errorf("after the window: status %d (%s); want 200", r.status, r.body)
	}
}
