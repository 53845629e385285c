package agent

import (
	"bytes"
	"context"
	"crypto/subtle"
	"embed"
	"html/template"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// The owner's local page (Config.LocalUI): the same API as the socket,
// under /api/v1/..., and a page that uses it. Anyone who can load the page
// can read the support code and end sessions, so it listens on loopback
// only (Config.Validate refuses anything else) and defends against the
// browser being turned against it:
//
//   - DNS rebinding: requests whose Host is not this listener's own
//     address (127.0.0.1:PORT, localhost:PORT or [::1]:PORT) are refused,
//     so a page on evil.example resolving to 127.0.0.1 gets nothing.
//   - Cross-site requests: every API call must carry the page's token (a
//     random per-process value written into the page) in X-Porthole-Token,
//     and POSTs must be JSON; a foreign origin can neither read the page
//     for the token nor send that header without a CORS preflight, which
//     is never granted. POSTs with an Origin header must come from the
//     page's own origin.
//   - Framing (clickjacking on "End session now" or "Request support"):
//     frame-ancestors 'none' and X-Frame-Options DENY. The page runs no
//     inline script (its Content-Security-Policy allows only its own
//     files).

//go:embed local_page
var pageFiles embed.FS

var pageTemplate = template.Must(template.ParseFS(pageFiles, "local_page/index.html"))

// pageTokenHeader carries the page's token on API calls.
const pageTokenHeader = "X-Porthole-Token"

// ServePage serves the local page on ln until ctx ends, then closes ln.
func (l *Local) ServePage(ctx context.Context, ln net.Listener) error {
	addr := ln.Addr().(*net.TCPAddr)
	l.mu.Lock()
	l.page = "http://" + addr.String() + "/"
	l.mu.Unlock()
	l.log.Info("the owner's page is served", "url", "http://"+addr.String()+"/")
	return serveUntil(ctx, ln, l.pageHandler(addr.Port))
}

// PageURL is the local page's URL once it is served; "" until then.
func (l *Local) PageURL() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.page
}

func (l *Local) pageHandler(port int) http.Handler {
	p := strconv.Itoa(port)
	hosts := map[string]bool{"127.0.0.1:" + p: true, "localhost:" + p: true, "[::1]:" + p: true}
	api := http.StripPrefix("/api", l.apiHandler())
	var index bytes.Buffer
	if err := pageTemplate.Execute(&index, struct{ Token string }{l.token}); err != nil {
		panic(err) // the embedded template and its data are fixed
	}
	static := http.FileServerFS(pageFiles)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		if !hosts[strings.ToLower(r.Host)] {
			l.log.Warn("the owner's page refused a request for another host", "host", r.Host, "path", r.URL.Path)
			http.Error(w, "this page answers only to its own address (127.0.0.1:"+p+")", http.StatusMisdirectedRequest)
			return
		}
		switch {
		case r.URL.Path == "/" && r.Method == http.MethodGet:
			h.Set("Content-Type", "text/html; charset=utf-8")
			w.Write(index.Bytes())
		case r.URL.Path == "/app.js" || r.URL.Path == "/style.css":
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/local_page" + r.URL.Path
			static.ServeHTTP(w, r2)
		case strings.HasPrefix(r.URL.Path, "/api/"):
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
