// Package testhydra runs a real OpenID provider of a test's own: ory/hydra
// (Apache-2.0) with an in-memory database on free loopback ports, and the
// login and consent app every hydra deployment needs, in the test's
// process: it signs in whoever submits a user name on its form, and puts
// the email and groups the test gave that user into the ID token.
//
// scripts/setup.sh builds hydra, pinned, into the module's .tools
// directory, where Start finds it (PORTHOLE_HYDRA names another). A test
// that starts one is skipped where it is not installed, except where
// CI=true, which makes it fail: CI must not pass by skipping. Only tests
// may import this package (a test in the module root checks).
package testhydra

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole/internal/freeport"
)

// Provider is a hydra process and its login and consent app.
type Provider struct {
	// Issuer is hydra's public URL, http://127.0.0.1:<port>.
	Issuer string
	// Admin is hydra's admin URL.
	Admin string

	app *httptest.Server

	mu    sync.Mutex      // guards users
	users map[string]User // by user name (the subject)
}

// User is someone the login app signs in: the claims the ID token gets.
type User struct {
	Email  string
	Groups []string
}

// Start runs hydra and returns once it is ready; it is killed when the
// test ends, and its output shown if the test failed.
func Start(t testing.TB) *Provider {
	t.Helper()
	bin := Binary(t)
	p := &Provider{users: map[string]User{}}
	p.app = httptest.NewServer(http.HandlerFunc(p.serveApp))
	t.Cleanup(p.app.Close)
	out, err := os.CreateTemp(t.TempDir(), "hydra-*.log")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(out.Name())
			t.Logf("hydra output:\n%s", b)
		}
	})
	// A free port can be taken by someone else before hydra binds it:
	// try again with others.
	for try := 0; ; try++ {
		public, err1 := freeport.Pick()
		admin, err2 := freeport.Pick()
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		p.Issuer = fmt.Sprintf("http://127.0.0.1:%d", public)
		p.Admin = fmt.Sprintf("http://127.0.0.1:%d", admin)
		cmd := exec.Command(bin, "serve", "all", "--dev")
		cmd.Env = append(os.Environ(), "DSN=memory", "LOG_LEVEL=warn", "SQA_OPT_OUT=true",
			"URLS_SELF_ISSUER="+p.Issuer, "URLS_LOGIN="+p.app.URL+"/login", "URLS_CONSENT="+p.app.URL+"/consent",
			"URLS_ERROR="+p.app.URL+"/error",
			fmt.Sprintf("SERVE_PUBLIC_PORT=%d", public), fmt.Sprintf("SERVE_ADMIN_PORT=%d", admin),
			"SERVE_PUBLIC_HOST=127.0.0.1", "SERVE_ADMIN_HOST=127.0.0.1",
			"SECRETS_SYSTEM=porthole-test-hydra-system-secret")
		cmd.Stdout, cmd.Stderr = out, out
		// A test binary that dies must not leave its provider running.
		cmd.SysProcAttr = dieWithTest()
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting hydra: %v", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-exited })
		if p.ready(exited) {
			// Elliptic keys for the access tokens, made now: hydra would
			// make RSA ones at the first login, which takes seconds.
			p.admin(t, "POST", "/admin/keys/hydra.jwt.access-token", map[string]string{"alg": "ES256", "use": "sig", "kid": "test"}, nil)
			return p
		}
		cmd.Process.Kill()
		<-exited
		if try == 2 {
			b, _ := os.ReadFile(out.Name())
			t.Fatalf("hydra did not get ready:\n%s", b)
		}
	}
}

// ready waits until hydra answers both ports, or it exits.
func (p *Provider) ready(exited <-chan struct{}) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		r1, err1 := http.Get(p.Admin + "/health/ready")
		r2, err2 := http.Get(p.Issuer + "/.well-known/openid-configuration")
		for _, r := range []*http.Response{r1, r2} {
			if r != nil {
				r.Body.Close()
			}
		}
		if err1 == nil && err2 == nil && r1.StatusCode == 200 && r2.StatusCode == 200 {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// Binary is the hydra program: $PORTHOLE_HYDRA, the module's .tools/hydra
// (scripts/setup.sh builds it there), or one on $PATH. It skips t when
// there is none, or fails it on CI.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("PORTHOLE_HYDRA"); p != "" {
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	if p := filepath.Join(filepath.Dir(file), "..", "..", ".tools", "hydra"); executable(p) {
		return p
	}
	if p, err := exec.LookPath("hydra"); err == nil {
		return p
	}
	const how = "run scripts/setup.sh, which builds it into .tools"
	if os.Getenv("CI") == "true" {
		t.Fatalf("ory/hydra, the OpenID provider of the SSO tests, is not installed, and CI=true requires it: %s", how)
	}
	t.Skipf("skipping: ory/hydra, the OpenID provider of the SSO tests, is not installed (%s)", how)
	return ""
}

func executable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// SetUser lets name sign in with these claims (or changes them, for the
// next login or refresh).
func (p *Provider) SetUser(name string, u User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users[name] = u
}

// Client registers a confidential client redirecting to redirectURI and
// returns its ID and secret.
func (p *Provider) Client(t testing.TB, redirectURI string) (id, secret string) {
	t.Helper()
	secret = "porthole-test-client-secret"
	body := map[string]any{"client_secret": secret,
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
		"scope": "openid email profile offline_access", "redirect_uris": []string{redirectURI},
		"token_endpoint_auth_method": "client_secret_basic"}
	var out struct {
		ClientID string `json:"client_id"`
	}
	p.admin(t, "POST", "/admin/clients", body, &out)
	return out.ClientID, secret
}

// Remove removes name at the provider, as an administrator does: it
// revokes their consent sessions (and the tokens issued with them) and
// their login sessions, so that their refresh tokens are refused.
func (p *Provider) Remove(t testing.TB, name string) {
	t.Helper()
	p.mu.Lock()
	delete(p.users, name)
	p.mu.Unlock()
	q := url.Values{"subject": {name}, "all": {"true"}}.Encode()
	p.admin(t, "DELETE", "/admin/oauth2/auth/sessions/consent?"+q, nil, nil)
	p.admin(t, "DELETE", "/admin/oauth2/auth/sessions/login?"+url.Values{"subject": {name}}.Encode(), nil, nil)
}

// admin calls hydra's admin API, failing t on an error status.
func (p *Provider) admin(t testing.TB, method, path string, body, out any) {
	t.Helper()
	if err := p.call(method, path, body, out); err != nil {
		t.Fatal(err)
	}
}

func (p *Provider) call(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, p.Admin+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("hydra admin %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("hydra admin %s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// SignIn submits the login app's form as name, in a browser whose last
// page (resp, already read into page) is that form; the client follows
// the redirects back to the relying party and the last response is
// returned with its body read.
func (p *Provider) SignIn(t testing.TB, client *http.Client, formPage *http.Response, name string) (*http.Response, string) {
	t.Helper()
	challenge := formPage.Request.URL.Query().Get("login_challenge")
	if challenge == "" {
		t.Fatalf("the browser is at %s, not at the provider's login form", formPage.Request.URL)
	}
	resp, err := client.PostForm(p.app.URL+"/login", url.Values{"login_challenge": {challenge}, "username": {name}})
	if err != nil {
		t.Fatalf("signing in at the provider: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// serveApp is the login and consent app.
func (p *Provider) serveApp(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/login" && r.Method == http.MethodGet:
		ch := r.URL.Query().Get("login_challenge")
		// A page a browser shows as one (a form alone would be sniffed as
		// text).
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>Sign in</title><form method="post" action="/login"><input type="hidden" name="login_challenge" value="%s">`+
			`<input name="username"><button>Sign in</button></form>`, html.EscapeString(ch))
	case r.URL.Path == "/login":
		name := r.FormValue("username")
		p.mu.Lock()
		_, known := p.users[name]
		p.mu.Unlock()
		ch := url.QueryEscape(r.FormValue("login_challenge"))
		if !known {
			p.redirect(w, r, "/admin/oauth2/auth/requests/login/reject?login_challenge="+ch,
				map[string]any{"error": "access_denied", "error_description": "unknown user"})
			return
		}
		p.redirect(w, r, "/admin/oauth2/auth/requests/login/accept?login_challenge="+ch,
			map[string]any{"subject": name, "remember": false})
	case r.URL.Path == "/consent":
		ch := r.URL.Query().Get("consent_challenge")
		var req struct {
			Subject        string   `json:"subject"`
			RequestedScope []string `json:"requested_scope"`
			RequestedAud   []string `json:"requested_access_token_audience"`
		}
		if err := p.call("GET", "/admin/oauth2/auth/requests/consent?consent_challenge="+url.QueryEscape(ch), nil, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		p.mu.Lock()
		u := p.users[req.Subject]
		p.mu.Unlock()
		groups := u.Groups
		if groups == nil {
			groups = []string{}
		}
		p.redirect(w, r, "/admin/oauth2/auth/requests/consent/accept?consent_challenge="+url.QueryEscape(ch),
			map[string]any{"grant_scope": req.RequestedScope, "grant_access_token_audience": req.RequestedAud, "remember": false,
				"session": map[string]any{"id_token": map[string]any{"email": u.Email, "email_verified": true, "groups": groups}}})
	default:
		http.Error(w, "the login app has no "+r.URL.Path+" ("+r.URL.Query().Get("error_description")+")", http.StatusNotFound)
	}
}

// redirect accepts or rejects a challenge at hydra and sends the browser
// where hydra says.
func (p *Provider) redirect(w http.ResponseWriter, r *http.Request, path string, body any) {
	var out struct {
		RedirectTo string `json:"redirect_to"`
	}
	if err := p.call("PUT", path, body, &out); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	http.Redirect(w, r, out.RedirectTo, http.StatusFound)
}
