package cli

import (
	"net/http"
	"strings"
	"testing"

	"github.com/porthole/porthole/apitype"
)

// TestUsageOnlyForCommandLineMistakes: a wrong flag or argument prints the
// command's usage on stderr; a failure at run time does not.
func TestUsageOnlyForCommandLineMistakes(t *testing.T) {
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/devices": apiError(http.StatusInternalServerError, apitype.CodeInternal, "the database is down (error ID 7)"),
	})
	env := f.loggedIn(t)
	for _, tt := range []struct {
		name      string
		args      []string
		wantUsage bool
	}{
		{"unknown flag", []string{"devices", "--bogus"}, true},
		{"missing argument", []string{"devices", "rm"}, true},
		{"extra argument", []string{"fleets", "x"}, true},
		{"missing required flag", []string{"users", "revoke", "bob@example.com"}, true},
		{"unknown command", []string{"frobnicate"}, true},
		{"runtime error", []string{"devices"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, env, "", tt.args...)
			if r.err == nil {
				t.Fatal("no error")
			}
			if got := strings.Contains(r.stderr, "Usage:"); got != tt.wantUsage {
				t.Errorf("usage printed = %v; want %v\nstderr:\n%s", got, tt.wantUsage, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q; want nothing", r.stdout)
			}
		})
	}
	r := runCLI(t, env, "", "devices")
	if r.err == nil || r.err.Error() != "the database is down (error ID 7)" {
		t.Errorf("a server error reads %q; want the server's words", r.err)
	}
}

func TestHelpAndCompletion(t *testing.T) {
	env := testEnv(t)
	r := mustRun(t, env, "", "--help")
	for _, want := range []string{"porthole login", "porthole devices", "porthole enroll-token create", "PORTHOLE_SERVER", "PORTHOLE_TOKEN", "PORTHOLE_FINGERPRINT"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("root help lacks %q", want)
		}
	}
	if r := mustRun(t, env, ""); !strings.Contains(r.stdout, "Usage:") {
		t.Errorf("porthole alone printed %q; want the help", r.stdout)
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		r := mustRun(t, env, "", "completion", shell)
		if !strings.Contains(r.stdout, "porthole") || len(r.stdout) < 500 {
			t.Errorf("completion %s printed %d bytes", shell, len(r.stdout))
		}
	}
}

// TestFleetFlagCompletion: --fleet completes from the server's fleets.
func TestFleetFlagCompletion(t *testing.T) {
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/fleets": answer([]apitype.Fleet{{Name: "acme"}, {Name: "lab"}}),
	})
	r := mustRun(t, f.loggedIn(t), "", "__complete", "devices", "--fleet", "")
	if !strings.HasPrefix(r.stdout, "acme\nlab\n") {
		t.Errorf("completing --fleet printed %q; want acme and lab", r.stdout)
	}
}
