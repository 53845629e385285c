package cli

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/porthole/porthole/apitype"
)

// TestReauthNotInteractive: without a terminal (piped input, or under
// porthole proxy, which ssh runs) nothing is read from stdin: the run
// fails in words that say to run porthole reauth first, and no code is
// sent.
func TestReauthNotInteractive(t *testing.T) {
	t.Parallel()
	f, asked, codes := reauthAPI(t)
	env := f.loggedIn(t)
	for _, tt := range []struct {
		args []string
		then string
	}{
		{[]string{"ssh", "dev2.acme"}, "then connect again"},
		{[]string{"proxy", "dev2.acme"}, "then connect again"},
		{[]string{"requests", "approve", "req_q2x7p4t8w6zak3m9"}, "then approve again"},
	} {
		r := runCLI(t, env, "123456\n", tt.args...)
		if r.err == nil || !strings.Contains(r.err.Error(), "run `porthole reauth` first, "+tt.then) ||
			!strings.Contains(r.err.Error(), "within the last 15m") {
			t.Errorf("porthole %s: %v", strings.Join(tt.args, " "), r.err)
		}
	}
	if n := asked.Load(); n != 3 {
		t.Errorf("session requests: %d; want one per run", n)
	}
	select {
	case c := <-codes:
		t.Errorf("a code was sent without a terminal: %q", c)
	default:
	}
}

// TestReauthCommand: porthole reauth reads the code (a line when piped)
// and sends it; a wrong one fails in words.
func TestReauthCommand(t *testing.T) {
	t.Parallel()
	f, _, codes := reauthAPI(t)
	env := f.loggedIn(t)
	r := mustRun(t, env, "123456\n", "reauth")
	if got := <-codes; got != "123456" || !strings.Contains(r.stderr, "re-authenticated") {
		t.Errorf("sent %q; stderr %q", got, r.stderr)
	}
	r = runCLI(t, env, "999999\n", "reauth")
	if r.err == nil || !strings.Contains(r.err.Error(), "wrong code") {
		t.Errorf("wrong code: %v", r.err)
	}
}

// reauthAPI is a fake API whose fleet asks for a fresh second factor: a
// session request or a four-eyes approval (asked counts both) is refused
// with reauth_required until a code is sent to POST /api/v1/reauth; then
// (the retry) the device is offline, which ends the run without a data
// path, and the approval goes through. codes holds the codes sent.
func reauthAPI(t *testing.T) (*fakeAPI, *atomic.Int32, chan string) {
	t.Helper()
	var fresh atomic.Bool
	var asked atomic.Int32
	codes := make(chan string, 4)
	create := func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		if !fresh.Load() {
			apiError(http.StatusForbidden, apitype.CodeReauthRequired,
				"fleet acme asks for a fresh second factor (your authenticator code or a passkey) within the last 15m to open a session (your last was 2h ago)")(w, r)
			return
		}
		apiError(http.StatusConflict, apitype.CodeDeviceOffline, "dev2 is offline (test)")(w, r)
	}
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/devices":                answer(testDevices),
		"POST /api/v1/sessions":              create,
		"POST /api/v1/devices/{id}/sessions": create,
		"POST /api/v1/requests/{id}/approve": func(w http.ResponseWriter, r *http.Request) {
			asked.Add(1)
			if !fresh.Load() {
				apiError(http.StatusForbidden, apitype.CodeReauthRequired,
					"fleet acme asks for a fresh second factor (your authenticator code or a passkey) within the last 15m to approve a session (your last was 2h ago)")(w, r)
				return
			}
			writeTestJSON(w, http.StatusOK, apitype.SupportRequest{ID: r.PathValue("id"), Kind: apitype.RequestFourEyes,
				Fleet: "acme", Device: "dev2", Session: "ses_1", RequestedBy: "bob@example.com", State: apitype.RequestClosed})
		},
		"POST /api/v1/reauth": func(w http.ResponseWriter, r *http.Request) {
			var req apitype.ReauthRequest
			_ = json.NewDecoder(r.Body).Decode(&req)
			codes <- req.TOTP
			if req.TOTP != "123456" {
				apiError(http.StatusForbidden, apitype.CodeWrongCode, "wrong code: it is not the current code of your authenticator app")(w, r)
				return
			}
			fresh.Store(true)
			writeTestJSON(w, http.StatusOK, apitype.ReauthResponse{FactorAt: time.Now()})
		},
	})
	return f, &asked, codes
}

// TestSessionOlderServer: a server that predates POST /api/v1/sessions
// answers it 405, and porthole looks the device up first, as it did
// before, then asks for the session by the device's ID.
func TestSessionOlderServer(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/devices":   answer(testDevices),
		"POST /api/v1/sessions": apiError(http.StatusMethodNotAllowed, apitype.CodeMethodNotAllow, "POST is not allowed here"),
		"POST /api/v1/devices/{id}/sessions": apiError(http.StatusConflict, apitype.CodeDeviceOffline,
			"dev2 is offline (the route by ID)"),
	})
	r := runCLI(t, f.loggedIn(t), "", "ssh", "dev2", "--", "true")
	if r.err == nil || !strings.Contains(r.err.Error(), "dev2 is offline (the route by ID)") {
		t.Errorf("porthole ssh against an older server: %v; want the answer of the route by ID", r.err)
	}
	var posts []string
	for _, req := range f.seen() {
		if strings.HasPrefix(req, "POST ") {
			posts = append(posts, req)
		}
	}
	if want := []string{"POST /api/v1/sessions", "POST /api/v1/devices/d2/sessions"}; !slices.Equal(posts, want) {
		t.Errorf("requests %q; want %q", posts, want)
	}
}
