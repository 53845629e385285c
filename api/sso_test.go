package api

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/auth"
	"github.com/porthole/porthole/internal/testhydra"
	"github.com/porthole/porthole/sso"
	"github.com/porthole/porthole/store"
	"github.com/porthole/porthole/store/sqlitestore"
)

// ssoWorld is a portholed API relying on a real ory/hydra, with a fleet
// its groups map to.
type ssoWorld struct {
	*testServer
	idp   *testhydra.Provider
	st    store.Store // the world's own: a node refreshes every due login of its store
	fleet *store.Fleet
	group string // maps to operator in fleet

	cfg              sso.Config
	secret, callback string
}

func newSSOWorld(t *testing.T) *ssoWorld {
	t.Helper()
	idp := testhydra.Start(t)
	st, err := sqlitestore.Open(filepath.Join(t.TempDir(), "porthole.db"))
	must(t, err)
	t.Cleanup(func() { st.Close() })
	fl := &store.Fleet{Name: "acme"}
	must(t, st.CreateFleet(t.Context(), fl))
	w := &ssoWorld{idp: idp, st: st, fleet: fl, group: "support-eu"}
	// The server's address must be known before the provider registers
	// its redirect URI, and the provider before the server is made.
	ts := httptest.NewUnstartedServer(nil)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{fx.keys.TLS}}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	id, secret := idp.Client(t, ts.URL+"/api/v1/sso/callback")
	cfg := sso.Config{Issuer: idp.Issuer, ClientID: id, ClientSecret: secret,
		Roles: []sso.RoleMapping{{Group: w.group, Fleet: fl.Name, Role: store.RoleOperator}}}
	w.cfg, w.secret, w.callback = cfg, secret, ts.URL+"/api/v1/sso/callback"
	c, lb := newClock(), &logBuffer{}
	s := w.node(t, cfg, c, lb)
	ts.Config.Handler = s.Handler()
	w.testServer = &testServer{Server: s, ts: ts, clock: c, log: lb}
	return w
}

// node is another API node of the world's store and provider, with cfg.
func (w *ssoWorld) node(t *testing.T, cfg sso.Config, c *clock, lb *logBuffer) *Server {
	t.Helper()
	must(t, cfg.Validate())
	p, err := sso.New(cfg, w.secret, w.callback, nil)
	must(t, err)
	s, err := New(Config{Store: w.st, Keys: fx.keys, Now: c.Now, SSO: p,
		Logger: slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	must(t, err)
	return s
}

// user lets a new user sign in at the provider with groups; it returns
// their user name there and their email.
func (w *ssoWorld) user(groups ...string) (name, email string) {
	name = fx.name("sso")
	email = name + "@example.com"
	w.idp.SetUser(name, testhydra.User{Email: email, Groups: groups})
	return name, email
}

// browser is a new browser: a cookie jar, trusting the server.
func (w *ssoWorld) browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	must(t, err)
	return &http.Client{Transport: w.ts.Client().Transport, Jar: jar}
}

// get loads url in the browser, following redirects.
func get(t *testing.T, b *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := b.Get(url)
	must(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// consoleSignIn signs name in to the console in browser b and returns
// the last page.
func (w *ssoWorld) consoleSignIn(t *testing.T, b *http.Client, name string) (*http.Response, string) {
	t.Helper()
	form, _ := get(t, b, w.ts.URL+"/api/v1/sso/login")
	return w.idp.SignIn(t, b, form, name)
}

// me is GET /api/v1/me with the browser's console session.
func (w *ssoWorld) me(t *testing.T, b *http.Client) (int, apitype.User) {
	t.Helper()
	resp, body := get(t, b, w.ts.URL+"/api/v1/me")
	var u apitype.User
	if resp.StatusCode == http.StatusOK {
		must(t, json.Unmarshal([]byte(body), &u))
	}
	return resp.StatusCode, u
}

func wantPage(t *testing.T, what string, resp *http.Response, body string, status int, words string) {
	t.Helper()
	if resp.StatusCode != status || !strings.Contains(body, words) {
		t.Fatalf("%s: %d %q; want %d with %q", what, resp.StatusCode, body, status, words)
	}
}

// TestSSOConsole: the web console signs in at the provider with PKCE,
// state and nonce, and gets the same session cookies as a password
// login; the user's roles are their groups' mapping.
func TestSSOConsole(t *testing.T) {
	t.Parallel()
	w := newSSOWorld(t)
	name, email := w.user(w.group, "unmapped")
	b := w.browser(t)
	resp, body := w.consoleSignIn(t, b, name)
	wantPage(t, "sign-in", resp, body, http.StatusOK, "Signed in as "+email)
	if !strings.Contains(body, `url=/console/`) {
		t.Errorf("the sign-in's last page does not lead to the console: %s", body)
	}
	status, me := w.me(t, b)
	if status != http.StatusOK || me.Email != email || !me.SSO || len(me.Roles) != 1 || me.Roles[0] != (apitype.FleetRole{Fleet: w.fleet.Name, Role: "operator"}) {
		t.Fatalf("GET /api/v1/me = %d %+v; want %s, SSO, operator of %s", status, me, email, w.fleet.Name)
	}
	u, err := w.st.GetUserByEmail(t.Context(), email)
	must(t, err)
	if u.PasswordHash != "" || u.TOTPSecret != "" || !strings.HasSuffix(u.SSOSubject, " "+name) {
		t.Errorf("the SSO user = %+v; want no password, no TOTP, subject ending %q", u, name)
	}
	wantAudit(t, w.st, u.ID, audit.LoginSucceeded, "method", "sso")

	t.Run("no password login", func(t *testing.T) {
		r := do(t, w.ts, "POST", "/api/v1/login", "", apitype.LoginRequest{Email: email, Password: "x", TOTP: "123456"})
		if r.status != http.StatusUnauthorized {
			t.Errorf("a password login of an SSO user = %d %s; want 401", r.status, r.body)
		}
	})
	t.Run("replayed callback", func(t *testing.T) {
		// The callback's URL, state and code, sent again by the same
		// browser (its flow cookie is gone) and by another that holds a
		// flow of its own: both refused.
		cb := resp.Request.URL.String()
		if !strings.Contains(cb, "/api/v1/sso/callback") {
			cb = ""
			for r := resp; r != nil; r = r.Request.Response {
				if strings.Contains(r.Request.URL.Path, "/api/v1/sso/callback") {
					cb = r.Request.URL.String()
				}
			}
		}
		if cb == "" {
			t.Fatal("no callback URL in the redirects")
		}
		r, body := get(t, b, cb)
		wantPage(t, "replay, same browser", r, body, http.StatusForbidden, "state does not match")
		other := w.browser(t)
		get(t, other, w.ts.URL+"/api/v1/sso/login") // a flow of its own
		r, body = get(t, other, cb)
		wantPage(t, "replay, another browser", r, body, http.StatusForbidden, "state does not match")
	})
	t.Run("unmapped group", func(t *testing.T) {
		name, email := w.user("nobody-maps-this")
		resp, body := w.consoleSignIn(t, w.browser(t), name)
		wantPage(t, "sign-in", resp, body, http.StatusForbidden, "none of their groups at the provider (groups claim: nobody-maps-this)")
		evs, err := w.st.ListAudit(t.Context(), store.AuditFilter{Limit: 1000, Latest: true})
		must(t, err)
		for _, ev := range evs {
			if ev.Kind == audit.LoginFailed && ev.Actor.Name == email && ev.Detail["method"] == "sso" {
				return
			}
		}
		t.Errorf("no login_failed event (method sso) for %s", email)
	})
	t.Run("local email", func(t *testing.T) {
		local, _, err := CreateUser(t.Context(), w.st, fx.name("local")+"@example.com", testPassword, false)
		must(t, err)
		name := fx.name("sso")
		w.idp.SetUser(name, testhydra.User{Email: local.Email, Groups: []string{w.group}})
		resp, body := w.consoleSignIn(t, w.browser(t), name)
		wantPage(t, "sign-in", resp, body, http.StatusConflict, "is the email of a local account")
	})
}

// wantAudit checks that the audit log holds an event of kind by or about
// user with detail key=value.
func wantAudit(t *testing.T, st store.Store, userID string, kind audit.Kind, key, value string) {
	t.Helper()
	evs, err := st.ListAudit(t.Context(), store.AuditFilter{Limit: 1000, Latest: true})
	must(t, err)
	for _, ev := range evs {
		if ev.Kind == kind && (ev.Actor.ID == userID || ev.Detail["user_id"] == userID) && ev.Detail[key] == value {
			return
		}
	}
	t.Errorf("no %s event of user %s with %s=%s", kind, userID, key, value)
}

// cli is `porthole login --sso`'s side of the device grant.
type cli struct {
	w    *ssoWorld
	code apitype.DeviceCodeResponse
}

func (w *ssoWorld) startCLI(t *testing.T) *cli {
	t.Helper()
	r := do(t, w.ts, "POST", "/api/v1/sso/device-code", "", apitype.DeviceCodeRequest{ClientName: "laptop-7"})
	if r.status != http.StatusOK {
		t.Fatalf("POST /api/v1/sso/device-code = %d %s", r.status, r.body)
	}
	c := &cli{w: w}
	must(t, json.Unmarshal(r.body, &c.code))
	return c
}

// poll polls once after waiting the interval (on the server's clock); it
// returns the token, or the refusal's code.
func (c *cli) poll(t *testing.T, wait bool) (string, apitype.LoginResponse) {
	t.Helper()
	if wait {
		c.w.clock.Advance(time.Duration(c.code.Interval) * time.Second)
	}
	r := do(t, c.w.ts, "POST", "/api/v1/sso/token", "", apitype.DeviceTokenRequest{DeviceCode: c.code.DeviceCode})
	var login apitype.LoginResponse
	if r.status == http.StatusOK {
		must(t, json.Unmarshal(r.body, &login))
		return "", login
	}
	var e apitype.ErrorBody
	must(t, json.Unmarshal(r.body, &e))
	return e.Error.Code, login
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// confirm opens the verification page in browser b, checks what it says,
// and confirms; it returns the provider's login form.
func (c *cli) confirm(t *testing.T, b *http.Client) *http.Response {
	t.Helper()
	_, page := get(t, b, c.code.VerificationURIComplete)
	for _, want := range []string{c.code.UserCode, "127.0.0.1 laptop-7", "Confirm and sign in"} {
		if !strings.Contains(page, want) {
			t.Fatalf("the verification page lacks %q:\n%s", want, page)
		}
	}
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF field on the verification page:\n%s", page)
	}
	resp, err := b.PostForm(c.w.ts.URL+"/sso/device", url.Values{"csrf": {m[1]}, "user_code": {c.code.UserCode}})
	must(t, err)
	resp.Body.Close()
	return resp
}

// TestSSODevice: `porthole login --sso`'s device grant, served by
// portholed: the CLI polls while the engineer confirms the code in a
// browser and signs in at the provider, then gets one login, once.
func TestSSODevice(t *testing.T) {
	t.Parallel()
	w := newSSOWorld(t)
	name, email := w.user(w.group)
	c := w.startCLI(t)
	if !regexp.MustCompile(`^[B-Z]{4}-[B-Z]{4}$`).MatchString(c.code.UserCode) || c.code.ExpiresIn != 600 || c.code.Interval < 5 ||
		c.code.VerificationURI != w.ts.URL+"/sso/device" {
		t.Errorf("device code answer %+v", c.code)
	}
	if code, _ := c.poll(t, false); code != apitype.CodeAuthorizationPending {
		t.Errorf("first poll = %s; want authorization_pending", code)
	}
	if code, _ := c.poll(t, false); code != apitype.CodeSlowDown {
		t.Errorf("a poll at once after = %s; want slow_down", code)
	}
	b := w.browser(t)
	resp, body := w.idp.SignIn(t, b, c.confirm(t, b), name)
	wantPage(t, "sign-in", resp, body, http.StatusOK, "Signed in as "+email+". Go back to your terminal")
	code, login := c.poll(t, true)
	if code != "" || login.Token == "" || login.User.Email != email || len(login.User.Roles) != 1 {
		t.Fatalf("poll after the sign-in = %q %+v; want a login of %s", code, login, email)
	}
	if r := do(t, w.ts, "GET", "/api/v1/me", login.Token, nil); r.status != http.StatusOK {
		t.Errorf("GET /api/v1/me with the CLI's token = %d %s", r.status, r.body)
	}
	if code, _ := c.poll(t, true); code != apitype.CodeInvalidGrant {
		t.Errorf("a second collection of the login = %q; want invalid_grant", code)
	}
	if strings.Contains(string(do(t, w.ts, "GET", "/api/v1/tokens", login.Token, nil).body), "refresh") {
		t.Errorf("the token list shows the provider's refresh token")
	}

	t.Run("expired", func(t *testing.T) {
		c := w.startCLI(t)
		w.clock.Advance(deviceGrantTTL)
		if code, _ := c.poll(t, false); code != apitype.CodeExpiredToken {
			t.Errorf("poll after 10 minutes = %q; want expired_token", code)
		}
		_, page := get(t, w.browser(t), c.code.VerificationURIComplete)
		if !strings.Contains(page, "No sign-in waits") {
			t.Errorf("the verification page of an expired code:\n%s", page)
		}
	})
	t.Run("unknown device code", func(t *testing.T) {
		c := &cli{w: w, code: apitype.DeviceCodeResponse{DeviceCode: "phd_forged"}}
		if code, _ := c.poll(t, true); code != apitype.CodeInvalidGrant {
			t.Errorf("poll with a forged device code = %q; want invalid_grant", code)
		}
	})
	t.Run("unmapped group", func(t *testing.T) {
		name, _ := w.user("nobody-maps-this")
		c := w.startCLI(t)
		b := w.browser(t)
		resp, body := w.idp.SignIn(t, b, c.confirm(t, b), name)
		wantPage(t, "sign-in", resp, body, http.StatusForbidden, "none of their groups")
		if code, _ := c.poll(t, true); code != apitype.CodeAccessDenied {
			t.Errorf("poll after a refused sign-in = %q; want access_denied", code)
		}
	})
	t.Run("CSRF", func(t *testing.T) {
		c := w.startCLI(t)
		b := w.browser(t)
		// No page loaded first: no CSRF cookie.
		resp, err := b.PostForm(w.ts.URL+"/sso/device", url.Values{"csrf": {"guess"}, "user_code": {c.code.UserCode}})
		must(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantPage(t, "confirmation without the page", resp, string(body), http.StatusForbidden, "did not come from the page")
		// From another site's page.
		_, page := get(t, b, c.code.VerificationURIComplete)
		req, _ := http.NewRequest("POST", w.ts.URL+"/sso/device", strings.NewReader(url.Values{"csrf": {csrfField.FindStringSubmatch(page)[1]}, "user_code": {c.code.UserCode}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err = b.Do(req)
		must(t, err)
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		wantPage(t, "confirmation from another site", resp, string(body), http.StatusForbidden, "came from another site")
		if fr := resp.Header.Get("Content-Security-Policy"); !strings.Contains(fr, "frame-ancestors 'none'") {
			t.Errorf("the verification pages may be framed: CSP %q", fr)
		}
		if code, _ := c.poll(t, true); code != apitype.CodeAuthorizationPending {
			t.Errorf("poll = %q; want authorization_pending", code)
		}
	})
	t.Run("the browser's console session does not approve", func(t *testing.T) {
		// Mallory's browser is signed in to the console; Ann's terminal's
		// code confirmed there and signed in at the provider as Ann
		// logs in Ann, never the console session's holder.
		mallory, _ := w.user(w.group)
		ann, annEmail := w.user(w.group)
		b := w.browser(t)
		w.consoleSignIn(t, b, mallory)
		c := w.startCLI(t)
		resp, body := w.idp.SignIn(t, b, c.confirm(t, b), ann)
		wantPage(t, "sign-in", resp, body, http.StatusOK, "Signed in as "+annEmail)
		if code, login := c.poll(t, true); code != "" || login.User.Email != annEmail {
			t.Errorf("the terminal logged in as %q (%s); want %s", login.User.Email, code, annEmail)
		}
	})
	t.Run("rate limited", func(t *testing.T) {
		for range DefaultLoginFailuresPerAddress + 1 {
			r := doFrom(t, w.ts, "127.0.0.9", "POST", "/api/v1/sso/device-code", "", apitype.DeviceCodeRequest{})
			if r.status == http.StatusTooManyRequests {
				return
			}
		}
		t.Errorf("device codes are not rate-limited per address")
	})
}

// signInTwice logs name in with the CLI and in a browser's console; it
// returns the CLI's login and the browser.
func (w *ssoWorld) signInTwice(t *testing.T, name string) (apitype.LoginResponse, *http.Client) {
	t.Helper()
	c := w.startCLI(t)
	b := w.browser(t)
	w.idp.SignIn(t, b, c.confirm(t, b), name)
	_, login := c.poll(t, true)
	console := w.browser(t)
	w.consoleSignIn(t, console, name)
	return login, console
}

// TestSSORefresh: a due login is refreshed at the provider, on one node
// of several, and revoked at once where its groups no longer map.
func TestSSORefresh(t *testing.T) {
	t.Parallel()
	w := newSSOWorld(t)
	name, _ := w.user(w.group)
	login, console := w.signInTwice(t, name)
	if status, _ := w.me(t, console); status != http.StatusOK {
		t.Fatalf("console session: %d", status)
	}

	// Not due yet: nothing happens.
	if n, err := w.RefreshSSO(t.Context()); err != nil || n != 0 {
		t.Fatalf("RefreshSSO before due = %d, %v", n, err)
	}
	// Due: refreshed at the provider, still known; the provider rotates
	// its refresh token, and the new one is kept, sealed.
	before, err := w.st.TokenByHash(t.Context(), auth.HashSecret(login.Token), w.clock.Now())
	must(t, err)
	if before.SSORefresh == "" || strings.Contains(before.SSORefresh, "ory_rt_") {
		t.Errorf("the stored refresh token %q is not sealed", before.SSORefresh)
	}
	w.clock.Advance(sso.DefaultRefreshEvery + time.Second)
	if n, err := w.RefreshSSO(t.Context()); err != nil || n != 0 {
		t.Fatalf("RefreshSSO of a known user = %d, %v; want 0 revoked", n, err)
	}
	after, err := w.st.TokenByHash(t.Context(), auth.HashSecret(login.Token), w.clock.Now())
	must(t, err)
	if after.SSORefresh == before.SSORefresh || !after.SSORefreshAt.After(w.clock.Now()) {
		t.Fatalf("after a refresh: refresh token unchanged or not due later (%v, now %v)\n%s", after.SSORefreshAt, w.clock.Now(), w.log)
	}
	if r := do(t, w.ts, "GET", "/api/v1/me", login.Token, nil); r.status != http.StatusOK {
		t.Fatalf("after a good refresh: GET /api/v1/me = %d %s", r.status, r.body)
	}

	// The operator unmaps the user's group: at the next refresh, on any
	// node, the login goes, for the roles come only from the mapping.
	unmapped := w.cfg
	unmapped.Roles = []sso.RoleMapping{{Group: "someone-else", Fleet: w.fleet.Name, Role: store.RoleOperator}}
	other := w.node(t, unmapped, w.clock, w.log)
	name2, _ := w.user(w.group)
	c2 := w.startCLI(t)
	b2 := w.browser(t)
	w.idp.SignIn(t, b2, c2.confirm(t, b2), name2)
	_, login2 := c2.poll(t, true)
	w.clock.Advance(sso.DefaultRefreshEvery + time.Second)
	if n, err := other.RefreshSSO(t.Context()); err != nil || n < 1 {
		t.Fatalf("RefreshSSO after the group was unmapped = %d, %v; want its login revoked\n%s", n, err, w.log)
	}
	if r := do(t, w.ts, "GET", "/api/v1/me", login2.Token, nil); r.status != http.StatusUnauthorized {
		t.Errorf("a login whose group was unmapped: GET /api/v1/me = %d; want 401", r.status)
	}
	if r := do(t, w.ts, "GET", "/api/v1/me", login.Token, nil); r.status != http.StatusUnauthorized {
		t.Errorf("the first user's group is unmapped on that node too: GET /api/v1/me = %d; want 401", r.status)
	}
}

// TestSSORemovedAtProvider: a user removed at the provider loses their
// CLI login and console session at the next refresh.
func TestSSORemovedAtProvider(t *testing.T) {
	t.Parallel()
	w := newSSOWorld(t)
	name, email := w.user(w.group)
	login, console := w.signInTwice(t, name)
	w.idp.Remove(t, name)
	w.clock.Advance(sso.DefaultRefreshEvery + time.Second)
	if n, err := w.RefreshSSO(t.Context()); err != nil || n != 2 {
		t.Fatalf("RefreshSSO after the removal = %d, %v; want the 2 logins revoked\n%s", n, err, w.log)
	}
	if r := do(t, w.ts, "GET", "/api/v1/me", login.Token, nil); r.status != http.StatusUnauthorized {
		t.Errorf("the CLI's token after the removal: GET /api/v1/me = %d; want 401", r.status)
	}
	if status, _ := w.me(t, console); status != http.StatusUnauthorized {
		t.Errorf("the console session after the removal: GET /api/v1/me = %d; want 401", status)
	}
	u, err := w.st.GetUserByEmail(t.Context(), email)
	must(t, err)
	evs, err := w.st.ListAudit(t.Context(), store.AuditFilter{Limit: 1000, Latest: true})
	must(t, err)
	revoked := 0
	for _, ev := range evs {
		if ev.Kind == audit.TokenRevoked && ev.Detail["user"] == u.Email && strings.Contains(ev.Detail["why"], "refused its refresh token") {
			revoked++
		}
	}
	if revoked != 2 {
		t.Errorf("%d token_revoked events for the removal; want 2", revoked)
	}
}
