package agentowner

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"html"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/porthole/porthole/internal/pageheaders"

	"github.com/porthole/porthole/agent/agentstate"
	"github.com/porthole/porthole/humanize"
)

// The owner's local page (Config.LocalUI): the same API as the socket,
// under /api/v1/..., and a page that uses it. Anyone who can use the page
// can read the support code, open a support window and end sessions: it
// must be the owner's alone, as the socket is (root and the members of
// agentstate.OwnerGroup, by the socket's mode and group).
//
// Listening on loopback is not enough: every local user, and an engineer's
// shell on this very device (whatever run_as says), can reach
// 127.0.0.1. So the page lets in only browsers that bring a one-time login
// link, and the only way to get one is the owner's socket
// (porthole-agent ui or status, which ask the running agent for a fresh
// link): whoever may open the socket is the owner, so whoever may use the
// page is too, and nothing else has to agree with the socket's idea of
// the owner. Opening the link (GET /login?k=SECRET, within PageLinkTTL,
// once) sets a session cookie for this port (HttpOnly, SameSite=Strict)
// and sends the browser to the page; the page, its token and its API
// answer only to that cookie.
//
// Why not tell the owner by the connection's peer uid instead (matching
// the loopback 4-tuple in /proc/net/tcp to the socket's owning uid)? It
// would not hold: the agent itself dials loopback ports for engineers'
// port forwards, so a forward to the page's port would come from root;
// so would any other root-run local proxy or service a user can make
// dial loopback; /proc/net/tcp names the user that created a socket, not
// the process using an inherited or passed one; and group membership must
// then be looked up per connection. A secret handed out by the socket
// rests on the one check that already decides who the owner is.
//
// The link is single-use and short-lived because it may be seen where
// other users can look (a browser's command line in /proc, a terminal
// over the owner's shoulder): one that was used, or has expired, lets no
// one in.
//
// Beyond that, the page defends against the owner's browser being turned
// against it:
//
//   - DNS rebinding: requests whose Host is not this listener's own
//     address (127.0.0.1:PORT, localhost:PORT or [::1]:PORT) are refused,
//     so a page on evil.example resolving to 127.0.0.1 gets nothing.
//   - Cross-site requests: the cookie is SameSite=Strict, every API call
//     must carry the page's token (a random per-process value written into
//     the page) in X-Porthole-Token, and POSTs must be JSON; a foreign
//     origin can neither read the page for the token nor send that header
//     without a CORS preflight, which is never granted. POSTs with an
//     Origin header must come from the page's own origin.
//   - Framing (clickjacking on "End session now" or "Request support"):
//     frame-ancestors 'none' and X-Frame-Options DENY. The page runs no
//     inline script (its Content-Security-Policy allows only its own
//     files).

const (
	// PageLinkTTL is how long a login link to the page may wait to be
	// opened.
	PageLinkTTL = 10 * time.Minute
	// pageSessionTTL is how long a browser stays let in by one link.
	pageSessionTTL = 12 * time.Hour
	// pageAuthMax bounds the unused links and the browser sessions kept
	// (each): past it the oldest is forgotten.
	pageAuthMax = 16
)

// pageAuth holds the page's unused login links and the browser sessions
// they started, each secret with its expiry.
type pageAuth struct {
	mu       sync.Mutex
	links    map[string]time.Time // guarded by mu
	sessions map[string]time.Time // guarded by mu
}

// addLocked adds a fresh secret to m, valid for ttl, forgetting expired
// ones and, past pageAuthMax, the oldest.
func addLocked(m map[string]time.Time, ttl time.Duration, now time.Time) string {
	var oldest string
	for k, exp := range m {
		if !now.Before(exp) {
			delete(m, k)
		} else if oldest == "" || exp.Before(m[oldest]) {
			oldest = k
		}
	}
	if len(m) >= pageAuthMax {
		delete(m, oldest)
	}
	k := rand.Text()
	m[k] = now.Add(ttl)
	return k
}

// newLink is a fresh login link's secret.
func (a *pageAuth) newLink() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.links == nil {
		a.links = make(map[string]time.Time)
	}
	return addLocked(a.links, PageLinkTTL, time.Now())
}

// useLink spends a link: true if k was an unused, unexpired link, and
// then the new session's cookie value.
func (a *pageAuth) useLink(k string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	exp, ok := a.links[k]
	if k == "" || !ok {
		return "", false
	}
	delete(a.links, k)
	now := time.Now()
	if !now.Before(exp) {
		return "", false
	}
	if a.sessions == nil {
		a.sessions = make(map[string]time.Time)
	}
	return addLocked(a.sessions, pageSessionTTL, now), true
}

// valid says whether v is the cookie of a browser a link let in.
func (a *pageAuth) valid(v string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	exp, ok := a.sessions[v]
	return v != "" && ok && time.Now().Before(exp)
}

//go:embed page
var pageFiles embed.FS

// pageTokenMark is where page/index.html takes the page's token: the one
// value the page is given, escaped as an HTML attribute's. (html/template
// would do the same for this one value, at the price of a tenth of the
// agent's binary: it makes the linker keep every exported method.)
const pageTokenMark = "{{.Token}}"

// pageIndex is page/index.html with token in place.
func pageIndex(token string) []byte {
	index, err := pageFiles.ReadFile("page/index.html")
	if err != nil || bytes.Count(index, []byte(pageTokenMark)) != 1 {
		panic("agentowner: page/index.html must hold " + pageTokenMark + " once") // the embedded page is fixed
	}
	return bytes.Replace(index, []byte(pageTokenMark), []byte(html.EscapeString(token)), 1)
}

// pageTokenHeader carries the page's token on API calls.
const pageTokenHeader = "X-Porthole-Token"

// ServePage serves the local page on ln until ctx ends, then closes ln.
func (l *Server) ServePage(ctx context.Context, ln net.Listener) error {
	addr := ln.Addr().(*net.TCPAddr)
	l.mu.Lock()
	l.page = "http://" + addr.String() + "/"
	l.mu.Unlock()
	l.log.Info("the owner's page is served; porthole-agent ui prints a link that opens it", "url", "http://"+addr.String()+"/")
	return serveUntil(ctx, ln, l.pageHandler(addr.Port))
}

// PageURL is the local page's address once it is served; "" until then.
// It lets no one in by itself: see PageLink.
func (l *Server) PageURL() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.page
}

// PageLink is a fresh one-time link that lets one browser into the page
// (opened within PageLinkTTL); "" while the page is not served. Only the
// owner's socket hands it out.
func (l *Server) PageLink() string {
	page := l.PageURL()
	if page == "" {
		return ""
	}
	return page + "login?k=" + url.QueryEscape(l.auth.newLink())
}

// pageCookiePrefix names the page's session cookie, followed by the
// page's port: cookies are shared by every port of a host, and two agents
// (or an agent and something else) on 127.0.0.1 must not overwrite each
// other's.
const pageCookiePrefix = "porthole_page_"

// pageNeedsLink is what the page says to a browser that brings no valid
// session: how the owner gets in, and nothing else.
var pageNeedsLink = "This page is only for the owner of this device. As root, or as a member of the " + agentstate.OwnerGroup +
	" group, run\n\n    porthole-agent ui\n\nand open the link it prints (it works once, within " + humanize.Duration(PageLinkTTL) + ").\n"

func (l *Server) pageHandler(port int) http.Handler {
	p := strconv.Itoa(port)
	hosts := map[string]bool{"127.0.0.1:" + p: true, "localhost:" + p: true, "[::1]:" + p: true}
	cookie := pageCookiePrefix + p
	api := http.StripPrefix("/api", l.apiHandler(true))
	index := pageIndex(l.token)
	static := http.FileServerFS(pageFiles)
	signedIn := func(r *http.Request) bool {
		c, err := r.Cookie(cookie)
		return err == nil && l.auth.valid(c.Value)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		pageheaders.Set(h, "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("Cache-Control", "no-store")
		if !hosts[strings.ToLower(r.Host)] {
			l.log.Warn("the owner's page refused a request for another host", "host", r.Host, "path", r.URL.Path)
			http.Error(w, "this page answers only to its own address (127.0.0.1:"+p+")", http.StatusMisdirectedRequest)
			return
		}
		switch {
		case r.URL.Path == "/login" && r.Method == http.MethodGet:
			if session, ok := l.auth.useLink(r.URL.Query().Get("k")); ok {
				http.SetCookie(w, &http.Cookie{Name: cookie, Value: session, Path: "/", HttpOnly: true,
					SameSite: http.SameSiteStrictMode, MaxAge: int(pageSessionTTL / time.Second)})
				l.log.Info("a browser opened the owner's page with a login link")
				http.Redirect(w, r, "/", http.StatusSeeOther)
				return
			}
			if signedIn(r) { // a reload of a link this browser used
				http.Redirect(w, r, "/", http.StatusSeeOther)
				return
			}
			l.log.Warn("the owner's page refused a login link that was used already, expired or never given", "remote", r.RemoteAddr)
			http.Error(w, "This link was used already or has expired.\n\n"+pageNeedsLink, http.StatusForbidden)
		case r.URL.Path == "/" && r.Method == http.MethodGet:
			if !signedIn(r) {
				http.Error(w, pageNeedsLink, http.StatusForbidden)
				return
			}
			h.Set("Content-Type", "text/html; charset=utf-8")
			w.Write(index)
		case r.URL.Path == "/app.js" || r.URL.Path == "/style.css":
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/page" + r.URL.Path
			static.ServeHTTP(w, r2)
		case strings.HasPrefix(r.URL.Path, "/api/"):
			if !signedIn(r) {
				localError(w, http.StatusForbidden, "this page is only for the owner of this device: run porthole-agent ui (as root or a member of the "+agentstate.OwnerGroup+" group) and open the link it prints")
				return
			}
			if subtle.ConstantTimeCompare([]byte(r.Header.Get(pageTokenHeader)), []byte(l.token)) != 1 {
				localError(w, http.StatusForbidden, "this request did not come from the owner's page")
				return
			}
			if r.Method != http.MethodGet {
				if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host {
					localError(w, http.StatusForbidden, "this request came from another site")
					return
				}
				if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					localError(w, http.StatusUnsupportedMediaType, "send JSON")
					return
				}
			}
			api.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}
