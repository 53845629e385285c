package cli

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/apitype"
)

func enrollTokenAPI(t *testing.T, got chan apitype.CreateEnrollmentTokenRequest) *fakeAPI {
	return newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /api/v1/fleets/{fleet}/enrollment-tokens": func(w http.ResponseWriter, r *http.Request) {
			var req apitype.CreateEnrollmentTokenRequest
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
				t.Error(err)
			}
			got <- req
			writeTestJSON(w, http.StatusCreated, apitype.EnrollmentToken{
				ID: "et1", Fleet: r.PathValue("fleet"), Token: "phe_secret", UsesLeft: req.Uses, MaxUses: req.Uses,
				CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Duration(req.TTLSeconds) * time.Second),
			})
		},
	})
}

// TestEnrollTokenCreate: stdout holds the token alone, for scripts;
// stderr the exact command for the device, with the pinned fingerprint.
func TestEnrollTokenCreate(t *testing.T) {
	got := make(chan apitype.CreateEnrollmentTokenRequest, 1)
	f := enrollTokenAPI(t, got)
	r := mustRun(t, f.loggedIn(t), "", "enroll-token", "create", "--fleet", "acme", "--uses", "3", "--ttl", "7d")
	if req := <-got; req.Uses != 3 || req.TTLSeconds != 7*24*3600 {
		t.Errorf("sent %+v; want 3 uses, 7 days", req)
	}
	if r.stdout != "phe_secret\n" {
		t.Errorf("stdout = %q; want the token alone", r.stdout)
	}
	want := "porthole-agent enroll --server " + f.URL + " --token phe_secret --fingerprint " + f.fingerprint + " --name <name>"
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
	}
	if !strings.Contains(r.stderr, "enrolls 3 devices until") {
		t.Errorf("stderr does not say what the token is good for:\n%s", r.stderr)
	}

	r = mustRun(t, f.loggedIn(t), "", "enroll-token", "create", "--fleet", "acme", "--json")
	var tok apitype.EnrollmentToken
	if err := json.Unmarshal([]byte(r.stdout), &tok); err != nil || tok.Token != "phe_secret" {
		t.Errorf("--json printed %q (%v); want the token object", r.stdout, err)
	}
	if req := <-got; req.Uses != 1 || req.TTLSeconds != 24*3600 {
		t.Errorf("defaults sent %+v; want 1 use, 24 h", req)
	}
}

func TestEnrollTokenCreateWithoutPin(t *testing.T) {
	got := make(chan apitype.CreateEnrollmentTokenRequest, 1)
	f := enrollTokenAPI(t, got)
	env := f.loggedIn(t)
	// As if the system trusted the certificate: no pin, so no --fingerprint.
	// (The fake's certificate is self-signed, so the request itself fails;
	// this checks the flag validation and the error that follows.)
	delete(env, envFingerprint)
	r := runCLI(t, env, "", "enroll-token", "create", "--fleet", "acme")
	if r.err == nil || !strings.Contains(r.err.Error(), "not one this system trusts") || !strings.Contains(r.err.Error(), "porthole login "+f.URL) {
		t.Errorf("without a pin against a self-signed server: %v; want advice to log in and pin", r.err)
	}
}

func TestEnrollTokenCreateFlags(t *testing.T) {
	f := enrollTokenAPI(t, make(chan apitype.CreateEnrollmentTokenRequest, 1))
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--uses", "3"}, `required flag(s) "fleet" not set`},
		{[]string{"--fleet", "acme", "--uses", "0"}, "at least one device"},
		{[]string{"--fleet", "acme", "--ttl", "soon"}, "not a duration like 30m, 12h or 7d"},
	} {
		r := runCLI(t, f.loggedIn(t), "", append([]string{"enroll-token", "create"}, tt.args...)...)
		if r.err == nil || !strings.Contains(r.err.Error(), tt.want) {
			t.Errorf("create %v: %v; want %q", tt.args, r.err, tt.want)
		}
	}
	if seen := f.seen(); len(seen) != 0 {
		t.Errorf("bad flags still sent %v", seen)
	}
}
