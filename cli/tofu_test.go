package cli

import (
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
)

func TestDecidePin(t *testing.T) {
	const srv = "https://p.example.com"
	fp, other := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64)
	for _, tt := range []struct {
		name          string
		trusted       bool
		pinned, given string
		wantPin       string
		wantNote      string // substring; "" for no note
		wantErr       string // substring; "" for no error
	}{
		{name: "first sight", wantPin: fp, wantNote: "pinned the server's certificate " + fp + " (first login to this server); check it with your operator"},
		{name: "same as pinned", pinned: fp, wantPin: fp},
		{name: "changed", pinned: other, wantErr: "WARNING: the certificate of the Porthole server at " + srv + " has changed"},
		{name: "changed says how to proceed", pinned: other, wantErr: "porthole login " + srv + " --fingerprint sha256:..."},
		{name: "given matches", given: fp, wantPin: fp, wantNote: "pinned"},
		{name: "given matches, upper case", given: strings.ToUpper(fp[:7]) + fp[7:], wantPin: fp, wantNote: "pinned"},
		{name: "given matches a changed pin", given: fp, pinned: other, wantPin: fp, wantNote: "pinned"},
		{name: "given matches the pin", given: fp, pinned: fp, wantPin: fp},
		{name: "given differs", given: other, wantErr: "not the one you gave"},
		{name: "given differs even if trusted", given: other, trusted: true, wantErr: "not the one you gave"},
		{name: "given malformed", given: "sha256:00", wantErr: "not of the form"},
		{name: "system trusted", trusted: true},
		{name: "system trusted, same pin kept", trusted: true, pinned: fp, wantPin: fp},
		{name: "system trusted, stale pin dropped", trusted: true, pinned: other, wantNote: "dropped the old pin"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, err := decidePin(srv, fp, tt.trusted, tt.pinned, tt.given)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("decidePin: err = %v; want one containing %q", err, tt.wantErr)
				}
				if tt.given != "sha256:00" && !errors.Is(err, apiclient.ErrFingerprintMismatch) {
					t.Errorf("decidePin: err = %v; want it to wrap ErrFingerprintMismatch", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("decidePin: %v", err)
			}
			if d.pin != tt.wantPin {
				t.Errorf("pin = %q; want %q", d.pin, tt.wantPin)
			}
			if (tt.wantNote == "") != (d.note == "") || !strings.Contains(d.note, tt.wantNote) {
				t.Errorf("note = %q; want %q", d.note, tt.wantNote)
			}
		})
	}
}

const (
	testEmail    = "ops@example.com"
	testPassword = "correct horse battery staple"
	testCode     = "123456"
)

// loginAPI is a fake server whose login accepts testEmail, testPassword
// and testCode, whose logout succeeds, and which answers the routes in
// extra too.
func loginAPI(t *testing.T, extra ...map[string]http.HandlerFunc) *fakeAPI {
	routes := map[string]http.HandlerFunc{
		"POST /api/v1/login": func(w http.ResponseWriter, r *http.Request) {
			var req apitype.LoginRequest
			if json.NewDecoder(r.Body).Decode(&req) != nil || req.Email != testEmail || req.Password != testPassword || req.TOTP != testCode {
				apiError(http.StatusUnauthorized, apitype.CodeUnauthenticated, "wrong email, password or code")(w, r)
				return
			}
			writeTestJSON(w, http.StatusOK, apitype.LoginResponse{
				Token: "pht_new", TokenID: "tok1", ExpiresAt: time.Now().Add(12 * time.Hour),
				User: apitype.User{ID: "u1", Email: testEmail},
			})
		},
		"POST /api/v1/logout": func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) },
	}
	for _, m := range extra {
		maps.Copy(routes, m)
	}
	return newFakeAPI(t, routes)
}

const goodAnswers = testEmail + "\n" + testPassword + "\n" + testCode + "\n"

// TestLoginPinsOnFirstUse: the first login pins the self-signed certificate
// and says so; the next one to the same server is quiet about it.
func TestLoginPinsOnFirstUse(t *testing.T) {
	f := loginAPI(t)
	env := testEnv(t)
	r := mustRun(t, env, goodAnswers, "login", f.URL)
	if !strings.Contains(r.stderr, "pinned the server's certificate "+f.fingerprint+" (first login to this server)") {
		t.Errorf("first login does not say it pinned %s:\n%s", f.fingerprint, r.stderr)
	}
	if !strings.Contains(r.stderr, "logged in to "+f.URL+" as "+testEmail+" (token expires ") {
		t.Errorf("login does not say who is logged in where:\n%s", r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("login printed %q on stdout; want nothing", r.stdout)
	}
	if strings.Contains(r.stderr, testPassword) {
		t.Error("login echoed the password")
	}
	c := savedConfig(t, env)
	if c.Server != f.URL || c.Token != "pht_new" || c.TokenID != "tok1" || c.Email != testEmail || c.ExpiresAt.IsZero() || c.Pins[f.URL] != f.fingerprint {
		t.Errorf("saved login = %+v", c)
	}

	r = mustRun(t, env, goodAnswers, "login") // the saved server
	if strings.Contains(r.stderr, "pinned") {
		t.Errorf("second login talks about pinning again:\n%s", r.stderr)
	}
}

// TestLoginRefusesChangedCertificate: once a server's certificate is
// pinned, a different one stops login before the password is sent, and
// every other command too.
func TestLoginRefusesChangedCertificate(t *testing.T) {
	f := loginAPI(t)
	env := testEnv(t)
	mustRun(t, env, goodAnswers, "login", f.URL)
	newFP := f.swapCert(t)
	f.seen()

	r := runCLI(t, env, goodAnswers, "login", f.URL)
	if r.err == nil || !strings.Contains(r.err.Error(), "has changed") || !strings.Contains(r.err.Error(), newFP) {
		t.Fatalf("login to a server with another certificate: %v; want a loud refusal naming the new fingerprint", r.err)
	}
	if !errors.Is(r.err, apiclient.ErrFingerprintMismatch) {
		t.Errorf("the refusal does not wrap ErrFingerprintMismatch: %v", r.err)
	}
	if seen := f.seen(); len(seen) != 0 {
		t.Errorf("sent despite the changed certificate: %v", seen)
	}
	if c := savedConfig(t, env); c.Pins[f.URL] != f.fingerprint {
		t.Errorf("after a refused login the pin is %q; want the old one %q", c.Pins[f.URL], f.fingerprint)
	}

	// Any other command refuses the same way, with the same advice.
	r = runCLI(t, env, "", "fleets")
	if r.err == nil || !strings.Contains(r.err.Error(), "has changed") || !strings.Contains(r.err.Error(), "porthole login "+f.URL+" --fingerprint sha256:...") {
		t.Errorf("fleets against the changed certificate: %v; want the warning", r.err)
	}
	if seen := f.seen(); len(seen) != 0 {
		t.Errorf("the token was sent despite the changed certificate: %v", seen)
	}

	// The operator confirms the new certificate: --fingerprint replaces the pin.
	mustRun(t, env, goodAnswers, "login", f.URL, "--fingerprint", newFP)
	if c := savedConfig(t, env); c.Pins[f.URL] != newFP {
		t.Errorf("after login --fingerprint: pin %q; want %q", c.Pins[f.URL], newFP)
	}
}

func TestLoginWrongFingerprintGiven(t *testing.T) {
	f := loginAPI(t)
	env := testEnv(t)
	r := runCLI(t, env, goodAnswers, "login", f.URL, "--fingerprint", "sha256:"+strings.Repeat("00", 32))
	if r.err == nil || !strings.Contains(r.err.Error(), "not the one you gave") {
		t.Errorf("login with a wrong --fingerprint: %v; want a refusal", r.err)
	}
	if seen := f.seen(); len(seen) != 0 {
		t.Errorf("requests sent despite the wrong fingerprint: %v", seen)
	}
}

// TestPinIsEnforcedOnTheLoginRequest: the client that sends the password
// checks the pin itself, so a server that swaps its certificate between
// the first look and the login request gets nothing.
func TestPinIsEnforcedOnTheLoginRequest(t *testing.T) {
	f := loginAPI(t)
	g := loginAPI(t) // another server with another certificate
	c, err := apiclient.New(g.URL, apiclient.Options{Fingerprint: f.fingerprint})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Login(t.Context(), apitype.LoginRequest{Email: testEmail, Password: testPassword, TOTP: testCode})
	if !errors.Is(err, apiclient.ErrFingerprintMismatch) {
		t.Errorf("login to a server with another certificate than pinned: %v; want ErrFingerprintMismatch", err)
	}
	if seen := g.seen(); len(seen) != 0 {
		t.Errorf("the other server got %v", seen)
	}
}

func TestLoginRefused(t *testing.T) {
	f := loginAPI(t)
	env := testEnv(t)
	r := runCLI(t, env, testEmail+"\nwrong password\n"+testCode+"\n", "login", f.URL)
	if r.err == nil || r.err.Error() != "login refused: wrong email, password or code" {
		t.Errorf("login with a wrong password: %v; want the server's words", r.err)
	}
	if c := savedConfig(t, env); c.Token != "" || len(c.Pins) != 0 {
		t.Errorf("a refused login saved %+v", c)
	}
}

func TestLoginInputEnds(t *testing.T) {
	f := loginAPI(t)
	r := runCLI(t, testEnv(t), testEmail+"\n", "login", f.URL)
	if r.err == nil || !strings.Contains(r.err.Error(), "no Password given") {
		t.Errorf("login with the input ending early: %v; want 'no Password given'", r.err)
	}
}

func TestLoginAsksForServer(t *testing.T) {
	f := loginAPI(t)
	env := testEnv(t)
	r := mustRun(t, env, f.URL+"\n"+goodAnswers, "login")
	if !strings.Contains(r.stderr, "Porthole server URL: ") {
		t.Errorf("login without a server did not ask for one:\n%s", r.stderr)
	}
	if c := savedConfig(t, env); c.Server != f.URL {
		t.Errorf("saved server %q; want %q", c.Server, f.URL)
	}
}

func TestLogout(t *testing.T) {
	f := loginAPI(t)
	env := testEnv(t)
	mustRun(t, env, goodAnswers, "login", f.URL)
	f.seen()
	r := mustRun(t, env, "", "logout")
	if !strings.Contains(r.stderr, "logged out of "+f.URL) {
		t.Errorf("logout says:\n%s", r.stderr)
	}
	if seen := f.seen(); len(seen) != 1 || seen[0] != "POST /api/v1/logout" {
		t.Errorf("logout sent %v; want POST /api/v1/logout", seen)
	}
	c := savedConfig(t, env)
	if c.Token != "" || c.TokenID != "" || c.Pins[f.URL] != f.fingerprint || c.Server != f.URL {
		t.Errorf("after logout: %+v; want no token, the server and its pin kept", c)
	}
	r = mustRun(t, env, "", "logout")
	if !strings.Contains(r.stderr, "not logged in") {
		t.Errorf("a second logout says:\n%s", r.stderr)
	}
}

// TestLogoutUnreachable: the token is forgotten here even when the server
// cannot revoke it, and porthole says how to revoke it later.
func TestLogoutUnreachable(t *testing.T) {
	f := loginAPI(t)
	env := testEnv(t)
	mustRun(t, env, goodAnswers, "login", f.URL)
	f.Close()
	r := mustRun(t, env, "", "logout")
	if !strings.Contains(r.stderr, "could not revoke the token") || !strings.Contains(r.stderr, "porthole tokens revoke tok1") ||
		!strings.Contains(r.stderr, "is portholed running?") {
		t.Errorf("logout with the server down says:\n%s", r.stderr)
	}
	if c := savedConfig(t, env); c.Token != "" {
		t.Errorf("the token was kept: %+v", c)
	}
}

func savedConfig(t *testing.T, env map[string]string) Config {
	t.Helper()
	dir, err := configDir(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
