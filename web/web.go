// Package web serves Porthole's web console: the pages engineers use in a
// browser, built from the TypeScript in src/ (npm run build, which make
// build runs) into static/js/ and embedded in portholed with the rest of
// static/.
//
// A fresh clone compiles without Node: static/js/ is not in git, and a
// portholed built before the console was answers every console path with
// a page saying how to build it (Console.Built is false). docs/web.md says
// why the built script is not committed.
//
// Every answer carries a strict Content-Security-Policy (scripts and
// styles from this origin only, nothing inline, Trusted Types required so
// no script can turn text into HTML, no framing) and the other headers a
// page of credentials needs; see SecurityHeaders.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/porthole/porthole/internal/pageheaders"
)

// Prefix is where the console is served on the API's origin.
const Prefix = "/console/"

// entry is the console's page; the script it loads is entryScript.
const (
	entry       = "index.html"
	entryScript = "js/main.js"
)

// The browser terminal is a page of its own (terminal.html, at
// /console/terminal/DEVICE-ID), opened in a tab of its own by a device's
// Connect: it alone loads xterm.js and the WebAssembly SSH client, under
// TerminalCSP.
const (
	terminalEntry  = "terminal.html"
	terminalPrefix = "terminal/"
)

// The replay of a session's recording is a page of its own too
// (replay.html, at /console/replay/SESSION-ID): it plays the recording in
// xterm.js, under ReplayCSP. The console's first address for it,
// /console/sessions/SESSION-ID/replay, is sent there (oldReplay).
const (
	replayEntry  = "replay.html"
	replayPrefix = "replay/"
)

//go:embed static
var embedded embed.FS

// CSP is the console's Content-Security-Policy: everything from this
// origin only, nothing inline (no inline script, style or event handler
// runs, so text that reached the page as HTML still runs nothing), no
// plugins, no framing (clickjacking), forms post only here, and Trusted
// Types required: a DOM sink that parses HTML (innerHTML and the like)
// throws instead of taking a string, and no policy may be made to feed
// it, so the console builds its pages from text nodes alone.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; " +
	"require-trusted-types-for 'script'; trusted-types 'none'"

// TerminalCSP is CSP for the browser terminal's page, with two additions,
// each the narrowest that works (docs/web.md, "The browser terminal"):
//
//   - script-src 'wasm-unsafe-eval': the browser may compile the
//     WebAssembly SSH client served from this origin; it allows no eval of
//     JavaScript.
//   - 'unsafe-inline' for style elements and attributes only
//     (style-src-elem, style-src-attr): xterm.js's renderer writes the
//     measured cell size, its colours and its scrollbar's look into <style>
//     elements it makes, and 24-bit colours and the selection's into style
//     attributes. No HTML is parsed for it (Trusted Types stay required,
//     with no policy, so no string becomes markup), and a style runs no
//     script.
const TerminalCSP = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; " +
	"style-src-elem 'self' 'unsafe-inline'; style-src-attr 'unsafe-inline'; img-src 'self'; connect-src 'self'; " +
	"font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; " +
	"require-trusted-types-for 'script'; trusted-types 'none'"

// ReplayCSP is CSP for the replay's page, with the one addition of
// TerminalCSP that xterm.js needs: 'unsafe-inline' for style elements and
// attributes only (its renderer's measured cell size, colours and
// scrollbar). The replay runs no WebAssembly, so it has no
// 'wasm-unsafe-eval'; Trusted Types stay required, with no policy.
const ReplayCSP = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"style-src-elem 'self' 'unsafe-inline'; style-src-attr 'unsafe-inline'; img-src 'self'; connect-src 'self'; " +
	"font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; " +
	"require-trusted-types-for 'script'; trusted-types 'none'"

// speculationRules, which every console page names in its
// Speculation-Rules header (no inline script, so nothing for the CSP to
// allow), ask a browser that knows them (Chromium) to prerender the
// terminal's page behind a Connect link as soon as the device's page shows
// it, into the new tab Connect opens: the terminal's client is then
// fetched, compiled and started before Connect is pressed, and the page
// acts only once it is shown (terminal.ts). Other browsers ignore the
// header.
const (
	speculationRulesName = "speculation-rules.json"
	speculationRules     = `{"prerender": [{"source": "document", "where": {"href_matches": "/console/terminal/*"},
  "eagerness": "immediate", "target_hint": "_blank"}]}
`
)

// SecurityHeaders sets on h the headers every console answer carries.
func SecurityHeaders(h http.Header) {
	pageheaders.Set(h, CSP)
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), usb=(), serial=(), payment=()")
	// A browser keeps to HTTPS for this host from then on; it ignores the
	// header over a certificate it did not trust, so a self-signed
	// server is not locked out of anything.
	h.Set("Strict-Transport-Security", "max-age=31536000")
}

// Console serves the console's files. Create it with New or Embedded.
type Console struct {
	files map[string]file // by path under the root, "index.html", "js/main.js"
	built bool
}

type file struct {
	body  []byte
	ctype string
	etag  string
	// gzipped is the same file compressed (NAME.gz beside it, which make
	// web writes for the WebAssembly client), sent to a browser that takes
	// gzip; nil if there is none.
	gzipped []byte
}

// Embedded is the console built into this binary.
func Embedded() *Console {
	sub, err := fs.Sub(embedded, "static")
	if err != nil {
		panic(err) // "static" is a valid path: cannot happen
	}
	c, err := New(sub)
	if err != nil {
		panic(fmt.Sprintf("web: the embedded console: %v", err)) // a build that embedded a broken tree
	}
	return c
}

// New reads a console from fsys: index.html at its root, with the files it
// names. It is read whole, once: the console is small.
func New(fsys fs.FS) (*Console, error) {
	c := &Console{files: map[string]file{}}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			ctype = http.DetectContentType(body)
		}
		sum := sha256.Sum256(body)
		c.files[p] = file{body: body, ctype: ctype, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: reading the console: %w", err)
	}
	if _, ok := c.files[entry]; !ok {
		return nil, fmt.Errorf("web: the console has no %s", entry)
	}
	for name, f := range c.files {
		if gz, ok := c.files[name+".gz"]; ok {
			f.gzipped = gz.body
			c.files[name] = f
		}
	}
	_, c.built = c.files[entryScript]
	return c, nil
}

// Built reports whether the console's script was built into it; without
// it every page is the note saying how to build it.
func (c *Console) Built() bool { return c.built }

// notBuilt is the page of a portholed built before its console.
var notBuilt = []byte(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Porthole: no web console in this build</title></head>
<body><h1>This portholed has no web console</h1>
<p>It was compiled before the console's script was built. Build it with <code>make build</code>
(which runs <code>npm ci</code> and <code>npm run build</code> in <code>web/</code>), then run the new
<code>bin/portholed</code>. The API and the command-line tools work without it.</p></body></html>
`)

// ServeHTTP answers GET and HEAD under Prefix: a file of the console by
// its path, and the console's page for any other path (its own router
// reads the path: /console/devices/ID). Files that look like assets (a
// name with an extension) are not found rather than answered with the
// page, so a missing script fails loudly.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	SecurityHeaders(h)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "the console's files are read with GET", http.StatusMethodNotAllowed)
		return
	}
	if !c.built {
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write(notBuilt)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	f, found := c.files[name]
	switch {
	case strings.HasPrefix(name, terminalPrefix) && !strings.Contains(path.Base(name), "."):
		f, found = c.files[terminalEntry]
		if !found {
			http.NotFound(w, r)
			return
		}
		h.Set("Content-Security-Policy", TerminalCSP)
	case strings.HasPrefix(name, replayPrefix) && !strings.Contains(path.Base(name), "."):
		f, found = c.files[replayEntry]
		if !found {
			http.NotFound(w, r)
			return
		}
		h.Set("Content-Security-Policy", ReplayCSP)
	case oldReplay(name) != "":
		h.Set("Cache-Control", "no-cache")
		http.Redirect(w, r, Prefix+replayPrefix+url.PathEscape(oldReplay(name)), http.StatusFound)
		return
	case name == speculationRulesName:
		h.Set("Content-Type", "application/speculationrules+json")
		h.Set("Cache-Control", "no-cache")
		_, _ = io.WriteString(w, speculationRules)
		return
	case found && name != entry:
	case name == "" || name == entry || !strings.Contains(path.Base(name), "."):
		f = c.files[entry]
		h.Set("Speculation-Rules", `"`+Prefix+speculationRulesName+`"`)
	default:
		h.Set("Cache-Control", "no-store")
		http.Error(w, "the console has no file "+name, http.StatusNotFound)
		return
	}
	h.Set("Content-Type", f.ctype)
	// Names are not content-hashed: a browser asks again each time and is
	// answered 304 while the file is the same.
	h.Set("Cache-Control", "no-cache")
	body, etag := f.body, f.etag
	if f.gzipped != nil {
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			body, etag = f.gzipped, strings.TrimSuffix(f.etag, `"`)+`-gz"`
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("ETag", etag)
	http.ServeContent(w, r, "", zeroTime, bytes.NewReader(body))
}

// oldReplay is the session's ID in the replay's first address
// (sessions/ID/replay under Prefix), or "".
func oldReplay(name string) string {
	rest, ok := strings.CutPrefix(name, "sessions/")
	id, ok2 := strings.CutSuffix(rest, "/replay")
	if !ok || !ok2 || id == "" || strings.Contains(id, "/") {
		return ""
	}
	return id
}

// zeroTime makes ServeContent send no Last-Modified: ETag alone says
// whether a file changed (embedded files have no time).
var zeroTime = time.Time{}

// acceptsGzip reports whether r's client takes gzip.
func acceptsGzip(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept-Encoding"), ",") {
		coding, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") && strings.ReplaceAll(strings.TrimSpace(q), " ", "") != "q=0" {
			return true
		}
	}
	return false
}
