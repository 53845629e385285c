package cli

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/porthole/porthole/apitype"
)

func TestUsersCreate(t *testing.T) {
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /api/v1/users": func(w http.ResponseWriter, r *http.Request) {
			var req apitype.CreateUserRequest
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Email != "bob@example.com" || !req.Admin || req.Password != "" {
				t.Errorf("create user request %+v, %v", req, err)
			}
			writeTestJSON(w, http.StatusCreated, apitype.CreateUserResponse{
				User: apitype.User{ID: "u2", Email: req.Email, Admin: req.Admin}, Password: "k7m2q-9xdtt", TOTPURI: "otpauth://totp/Porthole:bob?secret=ABC",
			})
		},
	})
	r := mustRun(t, f.loggedIn(t), "", "users", "create", "bob@example.com", "--admin")
	if r.stdout != "password: k7m2q-9xdtt\ntotp_uri: otpauth://totp/Porthole:bob?secret=ABC\n" {
		t.Errorf("users create printed:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "created user bob@example.com") {
		t.Errorf("users create says %q", r.stderr)
	}
}

func TestUsersGrantRevoke(t *testing.T) {
	roles := make(chan string, 2)
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"PUT /api/v1/fleets/{fleet}/members/{user}": func(w http.ResponseWriter, r *http.Request) {
			var m apitype.Member
			if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
				t.Error(err)
			}
			roles <- r.PathValue("fleet") + " " + r.PathValue("user") + " " + m.Role
			writeTestJSON(w, http.StatusOK, m)
		},
		"DELETE /api/v1/fleets/{fleet}/members/{user}": func(w http.ResponseWriter, r *http.Request) {
			roles <- r.PathValue("fleet") + " " + r.PathValue("user") + " -"
			w.WriteHeader(http.StatusNoContent)
		},
	})
	env := f.loggedIn(t)
	r := mustRun(t, env, "", "users", "grant", "bob@example.com", "--fleet", "acme", "--role", "operator")
	if got := <-roles; got != "acme bob@example.com operator" {
		t.Errorf("grant sent %q", got)
	}
	if !strings.Contains(r.stderr, "bob@example.com is now operator of fleet acme") {
		t.Errorf("grant says %q", r.stderr)
	}
	mustRun(t, env, "", "users", "revoke", "bob@example.com", "--fleet", "acme")
	if got := <-roles; got != "acme bob@example.com -" {
		t.Errorf("revoke sent %q", got)
	}
	r = runCLI(t, env, "", "users", "grant", "bob@example.com", "--fleet", "acme", "--role", "root")
	if r.err == nil || !strings.Contains(r.err.Error(), `role "root" is not one of owner, operator, auditor`) {
		t.Errorf("grant of a made-up role: %v", r.err)
	}
}

func TestUsersTable(t *testing.T) {
	f := newFakeAPI(t, map[string]http.HandlerFunc{"GET /api/v1/users": answer([]apitype.User{
		{Email: "zoe@example.com"},
		{Email: "ann@example.com", Admin: true, Roles: []apitype.FleetRole{{Fleet: "acme", Role: "owner"}, {Fleet: "lab", Role: "auditor"}}},
	})})
	r := mustRun(t, f.loggedIn(t), "", "users")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "ann@example.com") || !strings.Contains(lines[1], "acme:owner,lab:auditor") ||
		!strings.Contains(lines[2], "zoe@example.com") {
		t.Errorf("users table:\n%s", r.stdout)
	}
}

func TestFleets(t *testing.T) {
	created := make(chan string, 1)
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/fleets": answer([]apitype.Fleet{{Name: "lab", Role: "auditor"}, {Name: "acme", Role: "owner"}}),
		"POST /api/v1/fleets": func(w http.ResponseWriter, r *http.Request) {
			var req apitype.CreateFleetRequest
			_ = json.NewDecoder(r.Body).Decode(&req)
			created <- req.Name
			writeTestJSON(w, http.StatusCreated, apitype.Fleet{Name: req.Name})
		},
	})
	env := f.loggedIn(t)
	r := mustRun(t, env, "", "fleets")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "acme") || !strings.Contains(lines[1], "owner") || !strings.HasPrefix(lines[2], "lab") {
		t.Errorf("fleets table:\n%s", r.stdout)
	}
	r = mustRun(t, env, "", "fleets", "create", "newco")
	if <-created != "newco" || !strings.Contains(r.stderr, "created fleet newco") {
		t.Errorf("fleets create says %q", r.stderr)
	}
}

// TestTokensRevokeCurrent: revoking the token of this very login logs out.
func TestTokensRevokeCurrent(t *testing.T) {
	revoked := make(chan string, 2)
	f := loginAPI(t, map[string]http.HandlerFunc{"DELETE /api/v1/tokens/{id}": func(w http.ResponseWriter, r *http.Request) {
		revoked <- r.PathValue("id")
		w.WriteHeader(http.StatusNoContent)
	}})
	env := testEnv(t)
	mustRun(t, env, goodAnswers, "login", f.URL)
	r := mustRun(t, env, "", "tokens", "revoke", "other")
	if <-revoked != "other" || savedConfig(t, env).Token == "" {
		t.Errorf("revoking another token: %q; want still logged in", r.stderr)
	}
	r = mustRun(t, env, "", "tokens", "revoke", "tok1")
	if <-revoked != "tok1" || savedConfig(t, env).Token != "" || !strings.Contains(r.stderr, "you are logged out") {
		t.Errorf("revoking this login's token: %q; want logged out", r.stderr)
	}
}
