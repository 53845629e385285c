package api

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/auth"
	"github.com/porthole/porthole/store"
	"github.com/porthole/porthole/web"
)

// testConsole stands in for the built console: the API's tests do not
// need npm.
var testConsole = func() *web.Console {
	c, err := web.New(fstest.MapFS{
		"index.html": {Data: []byte(`<!doctype html><title>Porthole</title><script type="module" src="/console/js/main.js"></script>`)},
		"js/main.js": {Data: []byte(`document.title = "Porthole";`)},
	})
	if err != nil {
		panic(err)
	}
	return c
}()

// newConsoleSession stores a console session for u, as a console login
// would, and returns its secret.
func newConsoleSession(t *testing.T, u *store.User) string {
	t.Helper()
	secret, hash := auth.NewSecret(consolePrefix)
	now := time.Now().UTC()
	must(t, fx.store.CreateToken(context.Background(), &store.Token{UserID: u.ID, Hash: hash, Name: "test console", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))
	return secret
}

// withConsoleSession makes req a browser's on the console's own page: the
// session's cookies, Sec-Fetch-Site same-origin, and, if csrf, the CSRF
// header as the console's script sends it.
func withConsoleSession(req *http.Request, secret string, csrf bool) {
	req.AddCookie(&http.Cookie{Name: apitype.ConsoleSessionCookie, Value: secret})
	req.AddCookie(&http.Cookie{Name: apitype.ConsoleCSRFCookie, Value: csrfToken(secret)})
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if csrf {
		req.Header.Set(apitype.CSRFHeader, csrfToken(secret))
	}
}

// browser sends requests to ts as the console's script would, with edit
// applied to each.
func browser(t *testing.T, ts *testServer, method, path string, body any, edit func(*http.Request)) response {
	t.Helper()
	req := newRequest(t, t.Context(), method, ts.ts.URL+path, body)
	if edit != nil {
		edit(req)
	}
	resp, err := ts.ts.Client().Do(req)
	must(t, err)
	defer resp.Body.Close()
	r := response{status: resp.StatusCode, header: resp.Header}
	r.body = readAll(t, resp)
	return r
}

// consoleLogin logs u in as the console does and returns the session's
// secret, read from its cookie.
func (ts *testServer) consoleLogin(t *testing.T, u *store.User, edit func(*http.Request)) (string, response) {
	t.Helper()
	r := browser(t, ts, "POST", "/api/v1/console/login", loginBody(u, testPassword, totpCode(t, u, ts.clock.Now())), func(req *http.Request) {
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		if edit != nil {
			edit(req)
		}
	})
	ts.clock.Advance(30 * time.Second)
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == apitype.ConsoleSessionCookie {
			return c.Value, r
		}
	}
	return "", r
}

// TestConsoleLogin: a console login sets the session in two cookies with
// the attributes that keep it from scripts, other sites and plain HTTP;
// the body holds no secret; the session works with the cookie only, and
// neither kind of secret works in the other's place.
func TestConsoleLogin(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{})
	u := newUser(t, false)
	secret, r := ts.consoleLogin(t, u, nil)
	resp := decodeAs[apitype.ConsoleLoginResponse](t, r, http.StatusOK)
	if resp.User.ID != u.ID || !resp.ExpiresAt.Equal(ts.clock.Now().Add(-30*time.Second).Add(DefaultTokenTTL)) {
		t.Errorf("answer %+v", resp)
	}
	if !strings.HasPrefix(secret, consolePrefix+"_") {
		t.Fatalf("session cookie %q; want a %s_ secret", secret, consolePrefix)
	}
	if strings.Contains(string(r.body), secret) || strings.Contains(string(r.body), csrfToken(secret)) {
		t.Errorf("the login's body holds a secret: %s", r.body)
	}
	cookies := map[string]*http.Cookie{}
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		cookies[c.Name] = c
	}
	for _, name := range []string{apitype.ConsoleSessionCookie, apitype.ConsoleCSRFCookie} {
		c := cookies[name]
		if c == nil {
			t.Fatalf("no cookie %s in %v", name, r.header["Set-Cookie"])
		}
		if !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Domain != "" {
			t.Errorf("cookie %s: %s; want Secure, SameSite=Strict, Path=/ and no Domain", name, c)
		}
		if c.HttpOnly != (name == apitype.ConsoleSessionCookie) {
			t.Errorf("cookie %s: HttpOnly = %v", name, c.HttpOnly)
		}
	}
	if got := cookies[apitype.ConsoleCSRFCookie].Value; got != csrfToken(secret) {
		t.Errorf("CSRF cookie %q; want the session's CSRF value", got)
	}
	toks, err := fx.store.ListTokens(t.Context(), u.ID)
	must(t, err)
	if len(toks) != 1 || toks[0].Hash != auth.HashSecret(secret) || !strings.HasPrefix(toks[0].Name, "console session from ") {
		t.Errorf("stored tokens %+v; want the session's hash alone", toks)
	}

	me := decodeAs[apitype.User](t, browser(t, ts, "GET", "/api/v1/me", nil, func(req *http.Request) { withConsoleSession(req, secret, false) }), http.StatusOK)
	if me.ID != u.ID {
		t.Errorf("me by cookie = %+v", me)
	}
	// The session's secret is no bearer token, and a bearer token is no
	// session.
	do(t, ts.ts, "GET", "/api/v1/me", secret, nil).wantError(t, http.StatusUnauthorized, apitype.CodeUnauthenticated)
	bearer, _, err := newToken(fx.store, u, time.Now().Add(time.Hour))
	must(t, err)
	browser(t, ts, "GET", "/api/v1/me", nil, func(req *http.Request) { withConsoleSession(req, bearer, false) }).
		wantError(t, http.StatusUnauthorized, apitype.CodeUnauthenticated)
	// Wrong credentials set no cookie.
	r = browser(t, ts, "POST", "/api/v1/console/login", loginBody(u, "wrong password", totpCode(t, u, ts.clock.Now())), nil)
	r.wantError(t, http.StatusUnauthorized, apitype.CodeUnauthenticated)
	if sc := r.header.Values("Set-Cookie"); len(sc) != 0 {
		t.Errorf("a refused login set cookies: %v", sc)
	}
}

// TestConsoleCSRF: with the cookie, a request that changes something needs
// the session's CSRF header and this origin; reading needs neither. A
// login from another origin is refused too (login CSRF).
func TestConsoleCSRF(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{})
	u := newUser(t, false)
	secret, r := ts.consoleLogin(t, u, nil)
	if r.status != http.StatusOK {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	other := newConsoleSession(t, u)
	for _, tc := range []struct {
		name string
		edit func(*http.Request)
	}{
		{"no header", func(req *http.Request) { withConsoleSession(req, secret, false) }},
		{"the cookie's value planted", func(req *http.Request) {
			withConsoleSession(req, secret, false)
			req.Header.Set(apitype.CSRFHeader, "planted")
		}},
		{"another session's value", func(req *http.Request) {
			withConsoleSession(req, secret, false)
			req.Header.Set(apitype.CSRFHeader, csrfToken(other))
		}},
		{"the session's secret as the value", func(req *http.Request) {
			withConsoleSession(req, secret, false)
			req.Header.Set(apitype.CSRFHeader, secret)
		}},
		{"from another site", func(req *http.Request) {
			withConsoleSession(req, secret, true)
			req.Header.Set("Sec-Fetch-Site", "cross-site")
		}},
		{"from a sibling subdomain (same site)", func(req *http.Request) {
			withConsoleSession(req, secret, true)
			req.Header.Set("Sec-Fetch-Site", "same-site")
		}},
		{"Origin of another host, no Sec-Fetch-Site", func(req *http.Request) {
			withConsoleSession(req, secret, true)
			req.Header.Del("Sec-Fetch-Site")
			req.Header.Set("Origin", "https://evil.example.com")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			browser(t, ts, "POST", "/api/v1/logout", nil, tc.edit).wantError(t, http.StatusForbidden, apitype.CodeCSRF)
			browser(t, ts, "DELETE", "/api/v1/tokens/no-such-token", nil, tc.edit).wantError(t, http.StatusForbidden, apitype.CodeCSRF)
		})
	}
	// The session is still there: none of those logged it out.
	browser(t, ts, "GET", "/api/v1/me", nil, func(req *http.Request) { withConsoleSession(req, secret, false) })
	if toks, err := fx.store.ListTokens(t.Context(), u.ID); err != nil || len(toks) != 2 {
		t.Fatalf("tokens after refused requests: %v %v", toks, err)
	}
	// The Origin of this very server passes, as a browser without
	// Sec-Fetch-Site sends it.
	r = browser(t, ts, "DELETE", "/api/v1/tokens/no-such-token", nil, func(req *http.Request) {
		withConsoleSession(req, secret, true)
		req.Header.Del("Sec-Fetch-Site")
		req.Header.Set("Origin", ts.ts.URL)
	})
	r.wantError(t, http.StatusNotFound, apitype.CodeNotFound)

	// Login CSRF.
	v := newUser(t, false)
	_, r = ts.consoleLogin(t, v, func(req *http.Request) { req.Header.Set("Sec-Fetch-Site", "cross-site") })
	r.wantError(t, http.StatusForbidden, apitype.CodeCSRF)
	_, r = ts.consoleLogin(t, v, func(req *http.Request) {
		req.Header.Del("Sec-Fetch-Site")
		req.Header.Set("Origin", "https://evil.example.com")
	})
	r.wantError(t, http.StatusForbidden, apitype.CodeCSRF)
	if toks, err := fx.store.ListTokens(t.Context(), v.ID); err != nil || len(toks) != 0 {
		t.Errorf("a login from another origin stored tokens: %v %v", toks, err)
	}
}

// TestConsoleLogout: logging out with the cookie revokes the session in
// the store, tells the browser to drop both cookies, and ends the
// session's presence stream at once.
func TestConsoleLogout(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{PresenceResync: time.Hour})
	u := newUser(t, false)
	secret, _ := ts.consoleLogin(t, u, nil)
	events := openPresence(t, ts, "", func(req *http.Request) { withConsoleSession(req, secret, false) })
	events.next(t, apitype.PresenceSnapshot)

	r := browser(t, ts, "POST", "/api/v1/logout", nil, func(req *http.Request) { withConsoleSession(req, secret, true) })
	if r.status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", r.status, r.body)
	}
	cleared := map[string]bool{}
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		cleared[c.Name] = c.MaxAge < 0 && c.Value == ""
	}
	if !cleared[apitype.ConsoleSessionCookie] || !cleared[apitype.ConsoleCSRFCookie] {
		t.Errorf("logout's Set-Cookie %v; want both cookies cleared", r.header["Set-Cookie"])
	}
	if r.header.Get("Clear-Site-Data") == "" {
		t.Error("logout sent no Clear-Site-Data")
	}
	if ev := events.next(t, apitype.PresenceEnd); !strings.Contains(ev.data, endLoggedOut) {
		t.Errorf("the stream ended with %q; want %s", ev.data, endLoggedOut)
	}
	browser(t, ts, "GET", "/api/v1/me", nil, func(req *http.Request) { withConsoleSession(req, secret, false) }).
		wantError(t, http.StatusUnauthorized, apitype.CodeUnauthenticated)
	if toks, err := fx.store.ListTokens(t.Context(), u.ID); err != nil || len(toks) != 0 {
		t.Errorf("tokens after logout: %v %v", toks, err)
	}
}

// TestConsoleSessionFixation: the session a login hands out is always a
// new one of the server's making: a cookie the browser brought (planted by
// someone, or a session of another user on a shared browser) is neither
// kept nor made valid, and a valid one is revoked.
func TestConsoleSessionFixation(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{})
	victim, previous := newUser(t, false), newUser(t, false)
	planted := consolePrefix + "_attackerchoseninadvance"
	old := newConsoleSession(t, previous)
	for _, brought := range []string{planted, old} {
		secret, r := ts.consoleLogin(t, victim, func(req *http.Request) {
			req.AddCookie(&http.Cookie{Name: apitype.ConsoleSessionCookie, Value: brought})
		})
		if r.status != http.StatusOK || secret == "" || secret == brought {
			t.Fatalf("login with cookie %q brought: %d, session %q", brought, r.status, secret)
		}
		if r := browser(t, ts, "GET", "/api/v1/me", nil, func(req *http.Request) { withConsoleSession(req, brought, false) }); r.status != http.StatusUnauthorized {
			t.Errorf("the cookie brought to the login: %d %s\n%s", r.status, r.body, ts.log)
		}
	}
	if toks, err := fx.store.ListTokens(t.Context(), previous.ID); err != nil || len(toks) != 0 {
		t.Errorf("the session the browser held before is still stored: %v %v\n%s", toks, err, ts.log)
	}
}

// TestConsoleCookieOtherUsersRoutes: a console session reaches only what
// its own user may: another user's token, a fleet and a device of a fleet
// it has no role in, and that fleet's presence answer as missing ones do,
// and change nothing.
func TestConsoleCookieOtherUsersRoutes(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{})
	auditor := fx.users["auditor"] // of acme, not of other
	secret := newConsoleSession(t, auditor)
	as := func(req *http.Request) { withConsoleSession(req, secret, true) }
	_, otherTok, err := newToken(fx.store, fx.users["other"], time.Now().Add(time.Hour))
	must(t, err)
	otherDev := fx.newDevice(t, fx.other)

	browser(t, ts, "DELETE", "/api/v1/tokens/"+otherTok.ID, nil, as).wantError(t, http.StatusNotFound, apitype.CodeNotFound)
	if _, err := fx.store.TokenByHash(t.Context(), otherTok.Hash, time.Now()); err != nil {
		t.Errorf("another user's token after the attempt: %v", err)
	}
	browser(t, ts, "GET", "/api/v1/fleets/"+fx.other.Name, nil, as).wantError(t, http.StatusNotFound, apitype.CodeNotFound)
	browser(t, ts, "GET", "/api/v1/devices/"+otherDev.ID, nil, as).wantError(t, http.StatusNotFound, apitype.CodeNotFound)
	browser(t, ts, "PUT", "/api/v1/devices/"+otherDev.ID+"/labels", map[string]any{"labels": map[string]string{"x": "y"}}, as).
		wantError(t, http.StatusNotFound, apitype.CodeNotFound)
	browser(t, ts, "GET", "/api/v1/presence?fleet="+fx.other.Name, nil, as).wantError(t, http.StatusNotFound, apitype.CodeNotFound)
	browser(t, ts, "POST", "/api/v1/fleets", map[string]any{"name": fx.name("fleet")}, as).wantError(t, http.StatusForbidden, apitype.CodeForbidden)
	d, err := fx.store.GetDevice(t.Context(), otherDev.ID)
	must(t, err)
	if len(d.Labels) != 0 {
		t.Errorf("another fleet's device got labels %v", d.Labels)
	}
	// Its own fleet's presence, by contrast, streams; without another
	// fleet's device in it.
	events := openPresence(t, ts, "", as)
	if snap := events.next(t, apitype.PresenceSnapshot); strings.Contains(snap.data, otherDev.ID) {
		t.Errorf("the auditor's snapshot lists a device of fleet other: %s", snap.data)
	}
}

// TestConsoleHeaders: the console's pages carry the strict policy, the
// root sends a browser to the console, and a server without a console
// says so.
func TestConsoleHeaders(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"/console/", "/console/devices/dev_1", "/console/js/main.js"} {
		r := do(t, fx.ts, "GET", path, "", nil)
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %d", path, r.status)
		}
		h := r.header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'",
			"base-uri 'none'", "require-trusted-types-for 'script'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: Content-Security-Policy %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-") || strings.Contains(csp, "*") || strings.Contains(csp, "data:") {
			t.Errorf("GET %s: Content-Security-Policy %q allows more than this origin", path, csp)
		}
		for k, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
			"Referrer-Policy": "no-referrer", "Cross-Origin-Opener-Policy": "same-origin"} {
			if got := h.Get(k); got != want {
				t.Errorf("GET %s: %s = %q; want %q", path, k, got, want)
			}
		}
	}
	r := do(t, fx.ts, "GET", "/", "", nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), "/console/js/main.js") {
		t.Errorf("GET / did not lead to the console: %d %s", r.status, r.body)
	}
	noConsole := newServer(t, Config{})
	do(t, noConsole.ts, "GET", "/console/", "", nil).wantError(t, http.StatusNotFound, apitype.CodeNotFound)
	do(t, noConsole.ts, "GET", "/", "", nil).wantError(t, http.StatusNotFound, apitype.CodeNotFound)
}

// TestConsoleIdle: a console session its person does not use for the
// idle timeout ends (revoked, audited, in words), even though the page
// kept reading lists in the background meanwhile; a request the person
// made keeps it alive. Bearer tokens (the CLI's) have no idle timeout.
func TestConsoleIdle(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{ConsoleIdle: 30 * time.Minute})
	u := newUser(t, false)
	secret := newConsoleSession(t, u)
	cli := ts.login(t, u).Token
	me := func(bg bool) response {
		return browser(t, ts, "GET", "/api/v1/me", nil, func(req *http.Request) {
			withConsoleSession(req, secret, false)
			if bg {
				req.Header.Set(apitype.BackgroundHeader, "1")
			}
		})
	}
	// Used by its person after 20 minutes: alive for 30 more.
	ts.clock.Advance(20 * time.Minute)
	if r := me(false); r.status != http.StatusOK {
		t.Fatalf("after 20 minutes: %d %s", r.status, r.body)
	}
	// Only the page's background reads for 20 minutes: they answer, and
	// do not keep it alive.
	for range 2 {
		ts.clock.Advance(10 * time.Minute)
		if r := me(true); r.status != http.StatusOK {
			t.Fatalf("a background read while the session lives: %d %s", r.status, r.body)
		}
	}
	ts.clock.Advance(15 * time.Minute)
	e := me(false).wantError(t, http.StatusUnauthorized, apitype.CodeUnauthenticated)
	if !strings.Contains(e.Message, "ended after 30 min without use") {
		t.Errorf("refusal: %q", e.Message)
	}
	revoked := userEvents(t, u, audit.TokenRevoked)
	if len(revoked) != 1 || !strings.Contains(revoked[0].Detail["why"], "idle") {
		t.Errorf("token_revoked: %+v", revoked)
	}
	// The CLI's login, unused as long, still works.
	if r := do(t, ts.ts, "GET", "/api/v1/me", cli, nil); r.status != http.StatusOK {
		t.Errorf("a bearer token after an hour unused: %d", r.status)
	}
}

// TestConsoleIdleStream: a tab left open ends with its session: the
// presence stream, which is no use by the person, ends as logged out once
// the session has been idle for the timeout.
func TestConsoleIdleStream(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{ConsoleIdle: 30 * time.Minute, PresenceResync: 50 * time.Millisecond})
	fl := fx.newFleet(t)
	u := newUser(t, false)
	must(t, fx.store.SetRole(t.Context(), fl.ID, u.ID, store.RoleAuditor))
	secret := newConsoleSession(t, u)
	events := openPresence(t, ts, "", func(req *http.Request) { withConsoleSession(req, secret, false) })
	events.next(t, apitype.PresenceSnapshot)
	ts.clock.Advance(32 * time.Minute)
	if ev := events.next(t, apitype.PresenceEnd); !strings.Contains(ev.data, endLoggedOut) {
		t.Errorf("the stream ended with %s", ev.data)
	}
	if len(userEvents(t, u, audit.TokenRevoked)) != 1 {
		t.Errorf("the idle session was not revoked")
	}
}
