package agentowner

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole/agent/agentconsent"
	"github.com/porthole/porthole/agent/internal/agenttest"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/internal/testwait"
)

func TestListenSocket(t *testing.T) {
	t.Parallel()
	path := filepath.Join(agenttest.ShortDir(t), "run", "agent.sock")
	ln, err := ListenSocket(path, "")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket %v, %v; want a socket, mode 0660", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("the socket's directory holds %d entries; want the socket alone", len(entries))
	}
	// A second agent on the same socket is told, and the first keeps it.
	if _, err := ListenSocket(path, ""); err == nil || !strings.Contains(err.Error(), "already serving") {
		t.Fatalf("a second ListenSocket: %v", err)
	}
	go func(ln net.Listener) { // its own: the test reuses the variable
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}(ln)
	ln.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("the socket is still there after Close: %v", err)
	}

	// A dead agent's socket is replaced.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	ln, err = ListenSocket(path, "")
	if err != nil {
		t.Fatalf("replacing a stale socket: %v", err)
	}
	ln.Close()

	// Something that is not a socket is left alone.
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ListenSocket(path, ""); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("ListenSocket over a file: %v", err)
	}
	if _, err := ListenSocket(path, "no-such-group-here"); err == nil {
		t.Error("a socket_group that does not exist was accepted")
	}
}

// fakeSessions stands in for the agent's Tunnels: the sessions open,
// which CloseAll ends.
type fakeSessions struct {
	mu     sync.Mutex
	open   []string            // guarded by mu
	closed control.CloseReason // guarded by mu: why CloseAll ended them
}

var _ Sessions = (*fakeSessions)(nil)

func (f *fakeSessions) add(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.open = append(f.open, id)
}

func (f *fakeSessions) Sessions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.open...)
}

func (f *fakeSessions) CloseAll(reason control.CloseReason) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.open, f.closed = nil, reason
}

// localAgent is the owner's control of a device lab/dev1, served on a
// socket in a temporary directory, with sessions only consent knows of
// (the agent's own tests run it with its Tunnels).
type localAgent struct {
	consent  *agentconsent.Consent
	sessions *fakeSessions
	local    *Server
	client   *Client
	socket   string
	dir      string
}

func newLocalAgent(t *testing.T, mode agentconsent.Mode) *localAgent {
	t.Helper()
	dir := t.TempDir()
	c, err := agentconsent.New(agentconsent.Options{Config: agentconsent.Config{Mode: mode}, Fleet: "lab", Device: "dev1", Log: agenttest.OpenLog(t, dir)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	sessions := &fakeSessions{}
	l, err := New(Options{Consent: c, Sessions: sessions, StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(agenttest.ShortDir(t), "agent.sock")
	ln, err := ListenSocket(path, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.ServeSocket(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeSocket: %v", err)
		}
	})
	return &localAgent{consent: c, sessions: sessions, local: l, client: NewClient(path), socket: path, dir: dir}
}

// TestLocalSocket drives the owner's commands over the socket.
func TestLocalSocket(t *testing.T) {
	t.Parallel()
	a := newLocalAgent(t, agentconsent.Manual)
	ctx := t.Context()
	st, err := a.client.Status(ctx)
	if err != nil || st.Mode != agentconsent.Manual || st.Device != "dev1" || st.Window != nil || st.Pending == nil || st.Sessions == nil {
		t.Fatalf("status %+v, %v", st, err)
	}
	ans, err := a.client.Request(ctx, "it hums", 10*time.Minute)
	if err != nil || !ans.Opened || !regexp.MustCompile(`^\w{4}-\w{4}-\w{4}$`).MatchString(ans.Window.Code) || ans.Window.Reason != "it hums" {
		t.Fatalf("request %+v, %v", ans, err)
	}
	again, err := a.client.Request(ctx, "", 0)
	if err != nil || again.Opened || again.Window.Code != ans.Window.Code {
		t.Fatalf("request again %+v, %v; want the same window", again, err)
	}
	if _, err := a.client.Request(ctx, "", 48*time.Hour); err == nil || !strings.Contains(err.Error(), "24h") {
		t.Errorf("a two-day window: %v", err)
	}
	if _, err := a.client.Answer(ctx, "", true); err == nil || !strings.Contains(err.Error(), "no session is waiting") {
		t.Errorf("approve with nothing waiting: %v", err)
	}

	// An open session shows, and revoke ends it and closes the window.
	if g, reason := a.consent.Admit(ctx, agenttest.OpenCmd("s1"), func(control.State) {}); g == nil {
		t.Fatalf("admit in the window: %q", reason)
	}
	a.sessions.add("s1")
	if st, _ := a.client.Status(ctx); len(st.Sessions) != 1 || st.Sessions[0].ID != "s1" {
		t.Errorf("status %+v; want the session", st)
	}
	rev, err := a.client.Revoke(ctx)
	if err != nil || !rev.WindowClosed || rev.Sessions != 1 {
		t.Fatalf("revoke %+v, %v; want the window closed and one session ended", rev, err)
	}
	if a.sessions.Sessions() != nil || a.sessions.closed != control.CloseRevoked {
		t.Errorf("after revoke: sessions %v, closed as %q; want none, %s", a.sessions.Sessions(), a.sessions.closed, control.CloseRevoked)
	}
	st, _ = a.client.Status(ctx)
	if st.Window != nil {
		t.Error("the window is still open after revoke")
	}
	hist, err := a.client.History(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, raw := range hist {
		var ev struct{ Event string }
		json.Unmarshal(raw, &ev)
		names = append(names, ev.Event)
	}
	got := strings.Join(names, " ")
	for _, want := range []string{"support_window_opened", "session_admitted", "support_window_closed", "owner_revoked"} {
		if !strings.Contains(got, want) {
			t.Errorf("history %q lacks %s", got, want)
		}
	}
	if h, _ := a.client.History(ctx, 1); len(h) != 1 {
		t.Errorf("history of 1: %d events", len(h))
	}

	// No agent: the owner is told what to do.
	_, err = NewClient(filepath.Join(agenttest.ShortDir(t), "none.sock")).Status(ctx)
	if err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("status with no agent: %v", err)
	}
}

// servePage serves a's local page on 127.0.0.1:0 for the test; it returns
// the page's base URL (no trailing slash).
func servePage(t *testing.T, a *localAgent) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.local.ServePage(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	testwait.For(t, 5*time.Second, "the page to be served", func() bool { return a.local.PageURL() != "" })
	return "http://" + ln.Addr().String()
}

// pageBrowser is an HTTP client with a cookie jar, as a browser is.
func pageBrowser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

// get fetches url with c and returns its status and body.
func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestLocalPageLogin: the page lets in only a browser that brings a login
// link from the owner's socket, once; the link's browser stays in.
func TestLocalPageLogin(t *testing.T) {
	t.Parallel()
	a := newLocalAgent(t, agentconsent.Manual)
	base := servePage(t, a)
	if a.local.PageURL() != base+"/" {
		t.Errorf("PageURL %q; want %q", a.local.PageURL(), base+"/")
	}

	// Without a link: the way in, nothing else.
	stranger := pageBrowser(t)
	if status, body := get(t, stranger, base+"/"); status != http.StatusForbidden || strings.Contains(body, a.local.token) || !strings.Contains(body, "porthole-agent ui") {
		t.Fatalf("the page without a link: %d %q; want 403 saying porthole-agent ui", status, body)
	}

	// The socket's status hands out a link; it opens the page.
	st, err := a.client.Status(t.Context())
	if err != nil || !strings.HasPrefix(st.Page, base+"/login?k=") {
		t.Fatalf("the socket's status: page %q, %v; want a login link", st.Page, err)
	}
	owner := pageBrowser(t)
	if status, body := get(t, owner, st.Page); status != 200 || !strings.Contains(body, `content="`+a.local.token+`"`) {
		t.Fatalf("the page from its link: %d, token in it: %v", status, strings.Contains(body, a.local.token))
	}
	if status, body := get(t, owner, base+"/"); status != 200 || !strings.Contains(body, a.local.token) {
		t.Errorf("the page again, in the link's browser: %d", status)
	}
	if status, _ := get(t, owner, st.Page); status != 200 {
		t.Errorf("the used link, in its own browser: %d; want the page", status)
	}
	// The same link is spent for everyone else.
	if status, body := get(t, stranger, st.Page); status != http.StatusForbidden || !strings.Contains(body, "used already") || strings.Contains(body, a.local.token) {
		t.Errorf("a used link in another browser: %d %q; want 403 saying it was used", status, body)
	}
	if status, _ := get(t, stranger, base+"/login?k="+a.local.token); status != http.StatusForbidden {
		t.Errorf("the page's token as a link: %d; want 403", status)
	}

	// The page's own status names its address, not another link.
	req, _ := http.NewRequest("GET", base+"/api/v1/status", nil)
	req.Header.Set(pageTokenHeader, a.local.token)
	resp, err := owner.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var pst Status
	json.NewDecoder(resp.Body).Decode(&pst)
	resp.Body.Close()
	if resp.StatusCode != 200 || pst.Page != base+"/" {
		t.Errorf("the page's status: %d, page %q; want %q", resp.StatusCode, pst.Page, base+"/")
	}

	// An expired link lets no one in.
	k := strings.TrimPrefix(a.local.PageLink(), base+"/login?k=")
	a.local.auth.mu.Lock()
	a.local.auth.links[k] = time.Now().Add(-time.Second)
	a.local.auth.mu.Unlock()
	if status, _ := get(t, pageBrowser(t), base+"/login?k="+k); status != http.StatusForbidden {
		t.Errorf("an expired link: %d; want 403", status)
	}
}

// TestLocalPageDefences: the page answers only to its own address, its API
// only to the browser a link let in and to calls carrying its token, and
// POSTs only as JSON from its own origin.
func TestLocalPageDefences(t *testing.T) {
	t.Parallel()
	a := newLocalAgent(t, agentconsent.Manual)
	base := servePage(t, a)
	host := strings.TrimPrefix(base, "http://")
	owner := pageBrowser(t)
	if status, _ := get(t, owner, a.local.PageLink()); status != 200 {
		t.Fatalf("the page from its link: %d", status)
	}

	call := func(c *http.Client, method, path, hostHeader, token, origin, ctype, body string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Host = hostHeader
		if token != "" {
			req.Header.Set(pageTokenHeader, token)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}

	status, _, h := call(owner, "GET", "/", host, "", "", "", "")
	if status != 200 {
		t.Fatalf("the page: %d", status)
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	if h.Get("X-Frame-Options") != "DENY" {
		t.Error("the page may be framed")
	}
	if status, _, _ := call(http.DefaultClient, "GET", "/app.js", host, "", "", "", ""); status != 200 {
		t.Errorf("app.js: %d", status)
	}
	port := host[strings.LastIndex(host, ":")+1:]
	// A browser that calls it localhost keeps its cookie under that name.
	if status, body, _ := call(owner, "GET", strings.TrimPrefix(a.local.PageLink(), base), "localhost:"+port, "", "", "", ""); status != 200 {
		t.Errorf("a link opened as localhost: %d %s", status, body)
	}
	if status, body, _ := call(owner, "GET", "/api/v1/status", "localhost:"+port, a.local.token, "", "", ""); status != 200 {
		t.Errorf("status as localhost: %d %s", status, body)
	}

	for _, tt := range []struct {
		name                                  string
		noCookie                              bool
		method, path, host, token, origin, ct string
		want                                  int
	}{
		{"a rebound name", false, "GET", "/", "evil.example:" + port, "", "", "", http.StatusMisdirectedRequest},
		{"a rebound name's API", false, "GET", "/api/v1/status", "evil.example:" + port, a.local.token, "", "", http.StatusMisdirectedRequest},
		{"the token without the link's cookie", true, "GET", "/api/v1/status", host, a.local.token, "", "", http.StatusForbidden},
		{"a revoke without the link's cookie", true, "POST", "/api/v1/revoke", host, a.local.token, "http://" + host, "application/json", http.StatusForbidden},
		{"no token", false, "GET", "/api/v1/status", host, "", "", "", http.StatusForbidden},
		{"a wrong token", false, "POST", "/api/v1/revoke", host, "x" + a.local.token, "", "application/json", http.StatusForbidden},
		{"another origin", false, "POST", "/api/v1/request", host, a.local.token, "http://evil.example", "application/json", http.StatusForbidden},
		{"a form post", false, "POST", "/api/v1/request", host, a.local.token, "", "application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
	} {
		c := owner
		if tt.noCookie {
			c = http.DefaultClient
		}
		if status, body, _ := call(c, tt.method, tt.path, tt.host, tt.token, tt.origin, tt.ct, "{}"); status != tt.want {
			t.Errorf("%s: %d %s; want %d", tt.name, status, body, tt.want)
		}
	}
	if a.consent.Status().Window != nil {
		t.Fatal("a refused request opened a window")
	}
	status, body, _ := call(owner, "POST", "/api/v1/request", host, a.local.token, "http://"+host, "application/json", `{"reason":"from the page"}`)
	if status != 200 || a.consent.Status().Window == nil {
		t.Fatalf("the page's own request: %d %s", status, body)
	}
}

// TestPageIndex: the page's token lands in its meta tag, escaped as an
// attribute's value, and nowhere else.
func TestPageIndex(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, token, want string }{
		{"plain", "ABC234", `<meta name="porthole-token" content="ABC234">`},
		{"markup", `x"><script>&'`, `<meta name="porthole-token" content="x&#34;&gt;&lt;script&gt;&amp;&#39;">`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			page := string(pageIndex(tt.token))
			if !strings.Contains(page, tt.want) {
				t.Errorf("pageIndex(%q) has no %s", tt.token, tt.want)
			}
			if strings.Contains(page, pageTokenMark) || strings.Count(page, "porthole-token") != 1 {
				t.Errorf("pageIndex(%q) left the mark, or has the token's tag twice", tt.token)
			}
		})
	}
}
