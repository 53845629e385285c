package api

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/store"
)

// brokenStore fails the way a database that went away does, with causes
// that must reach the log and never the caller.
type brokenStore struct{ store.Store }

const brokenCause = "disk on fire at /var/lib/porthole/secret.db"

func (brokenStore) Ping(context.Context) error { return errors.New(brokenCause) }

func (brokenStore) ListFleets(context.Context) ([]*store.Fleet, error) {
	return nil, errors.New(brokenCause)
}

func (brokenStore) ListUsers(context.Context) ([]*store.User, error) { panic(brokenCause) }

func TestHealth(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"/healthz", "/readyz"} {
		if r := do(t, fx.ts, "GET", path, "", nil); r.status != http.StatusOK || string(r.body) != "ok\n" {
			t.Errorf("%s: %d %q; want 200 ok", path, r.status, r.body)
		}
	}
	ts := newServer(t, Config{Store: brokenStore{fx.store}})
	if r := do(t, ts.ts, "GET", "/healthz", "", nil); r.status != http.StatusOK {
		t.Errorf("healthz with the database down: %d; want 200 (the process is alive)", r.status)
	}
	r := do(t, ts.ts, "GET", "/readyz", "", nil)
	e := r.wantError(t, http.StatusServiceUnavailable, apitype.CodeNotReady)
	if strings.Contains(e.Message, "fire") || !strings.Contains(ts.log.String(), brokenCause) {
		t.Errorf("message %q leaks the cause, or the log lacks it:\n%s", e.Message, ts.log)
	}
}

// TestInternalErrors: a failure's cause goes to the log under an ID, and
// the caller gets only the ID; a panic is answered the same way.
func TestInternalErrors(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{Store: brokenStore{fx.store}})
	idRE := regexp.MustCompile(`^internal error \(ID ([0-9a-f]+)\); the server log has details$`)
	for _, path := range []string{"/api/v1/fleets", "/api/v1/users"} {
		r := do(t, ts.ts, "GET", path, fx.tokens["admin"], nil)
		e := r.wantError(t, http.StatusInternalServerError, apitype.CodeInternal)
		m := idRE.FindStringSubmatch(e.Message)
		if m == nil {
			t.Fatalf("%s: message = %q", path, e.Message)
		}
		if r.header.Get("X-Request-Id") != m[1] {
			t.Errorf("%s: X-Request-Id %q; want the error's ID %s", path, r.header.Get("X-Request-Id"), m[1])
		}
		if strings.Contains(string(r.body), "fire") {
			t.Errorf("%s: the answer leaks the cause: %s", path, r.body)
		}
		logged := false
		for _, line := range strings.Split(ts.log.String(), "\n") {
			logged = logged || (strings.Contains(line, m[1]) && strings.Contains(line, brokenCause))
		}
		if !logged {
			t.Errorf("%s: no log line has both the ID %s and the cause:\n%s", path, m[1], ts.log)
		}
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{})
	do(t, ts.ts, "GET", "/healthz", "", nil)
	do(t, ts.ts, "GET", "/api/v1/no-such-path", "", nil)
	do(t, ts.ts, "POST", "/api/v1/login", "", apitype.LoginRequest{Email: "nobody@example.com", Password: "x", TOTP: "123456"})
	r := do(t, ts.ts, "GET", "/metrics", "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("metrics: status %d", r.status)
	}
	for _, want := range []string{
		`porthole_api_requests_total{code="200",route="GET /healthz"} 1`,
		`porthole_api_requests_total{code="404",route="unmatched"} 1`,
		`porthole_api_requests_total{code="401",route="POST /api/v1/login"} 1`,
		`porthole_api_request_duration_seconds_count{route="GET /healthz"} 1`,
		`porthole_api_login_failures_total{reason="unknown_user"} 1`,
		"go_goroutines",
		"process_cpu_seconds_total",
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Raw paths never become labels.
	if strings.Contains(string(r.body), "no-such-path") {
		t.Error("a request's raw path became a metric label")
	}
}
