package web

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/porthole/porthole/agent/agentconsent"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/relay/relayproto"
	"github.com/porthole/porthole/webssh"
)

var testFiles = fstest.MapFS{
	"index.html":  {Data: []byte(`<!doctype html><title>Porthole</title><script type="module" src="/console/js/main.js"></script>`)},
	"console.css": {Data: []byte(`body{}`)},
	"js/main.js":  {Data: []byte(`document.title = "x";`)},
}

func get(t *testing.T, h http.Handler, method, path string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// TestServe: files by path, the page for the router's paths, 404 for a
// missing asset, 405 for other methods, 304 when unchanged; every answer
// with the security headers.
func TestServe(t *testing.T) {
	c, err := New(testFiles)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Built() {
		t.Fatal("Built() = false with js/main.js")
	}
	for _, tt := range []struct {
		method, path string
		status       int
		ctype, body  string
	}{
		{"GET", "/console/", 200, "text/html; charset=utf-8", "<title>Porthole"},
		{"GET", "/console/index.html", 200, "text/html; charset=utf-8", "<title>Porthole"},
		{"GET", "/console/devices/dev_123", 200, "text/html; charset=utf-8", "<title>Porthole"},
		{"HEAD", "/console/devices", 200, "text/html; charset=utf-8", ""},
		{"GET", "/console/js/main.js", 200, "text/javascript; charset=utf-8", "document.title"},
		{"GET", "/console/console.css", 200, "text/css; charset=utf-8", "body{}"},
		{"GET", "/console/js/missing.js", 404, "text/plain; charset=utf-8", "no file"},
		{"POST", "/console/", 405, "text/plain; charset=utf-8", "GET"},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			w := get(t, c, tt.method, tt.path, nil)
			if w.Code != tt.status || w.Header().Get("Content-Type") != tt.ctype || !strings.Contains(w.Body.String(), tt.body) {
				t.Fatalf("%d %q %q; want %d %q with %q", w.Code, w.Header().Get("Content-Type"), w.Body, tt.status, tt.ctype, tt.body)
			}
			if got := w.Header().Get("Content-Security-Policy"); got != CSP {
				t.Errorf("Content-Security-Policy = %q", got)
			}
			if w.Header().Get("X-Frame-Options") != "DENY" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("headers %v", w.Header())
			}
		})
	}
	w := get(t, c, "GET", "/console/js/main.js", nil)
	etag := w.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if w := get(t, c, "GET", "/console/js/main.js", http.Header{"If-None-Match": {etag}}); w.Code != http.StatusNotModified {
		t.Errorf("If-None-Match the same ETag: %d; want 304", w.Code)
	}
}

// TestNotBuilt: a console without its script (a portholed compiled before
// `make web`) says so on every page, and how to build it.
func TestNotBuilt(t *testing.T) {
	c, err := New(fstest.MapFS{"index.html": testFiles["index.html"]})
	if err != nil {
		t.Fatal(err)
	}
	if c.Built() {
		t.Fatal("Built() = true without the script")
	}
	w := get(t, c, "GET", "/console/devices/x", nil)
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "make build") || strings.Contains(w.Body.String(), "<script") {
		t.Errorf("%d %s", w.Code, w.Body)
	}
	if w.Header().Get("Content-Security-Policy") != CSP {
		t.Error("the note has no Content-Security-Policy")
	}
	if _, err := New(fstest.MapFS{}); err == nil {
		t.Error("New accepted a console with no index.html")
	}
}

// TestEmbedded: the console in this binary is whole (its page and
// stylesheet are in git; the script is there once `make web` ran).
func TestEmbedded(t *testing.T) {
	c := Embedded()
	for _, name := range []string{"index.html", "console.css", "icon.svg"} {
		if _, ok := c.files[name]; !ok {
			t.Errorf("the embedded console has no %s", name)
		}
	}
	t.Logf("the embedded console has its script: %v", c.Built())
}

// TestPageHasNoInlineCode: the console's pages (its own, the terminal's
// and the replay's) load their scripts and styles from files: the
// Content-Security-Policy runs nothing inline.
func TestPageHasNoInlineCode(t *testing.T) {
	for _, name := range []string{"index.html", terminalEntry, replayEntry} {
		page, err := os.ReadFile(filepath.Join("static", name))
		if err != nil {
			t.Fatal(err)
		}
		for _, re := range []string{`<script(?:\s[^>]*)?>[^<]`, `<style`, `\son[a-z]+=`, `style=`, `javascript:`} {
			if m := regexp.MustCompile(`(?i)` + re).Find(page); m != nil {
				t.Errorf("%s has inline code: %q", name, m)
			}
		}
	}
}

// htmlSinks are the ways a script turns a string into markup or code.
// The console uses none: it builds pages from text nodes (src/dom.ts), and
// its Content-Security-Policy (Trusted Types) makes the browser refuse
// them besides.
var htmlSinks = regexp.MustCompile(`\.(innerHTML|outerHTML|insertAdjacentHTML|srcdoc)\b|document\.write|\beval\s*\(|new\s+Function\b|setTimeout\s*\(\s*["'\x60]|createContextualFragment|DOMParser|\.setHTML`)

// TestNoHTMLSinks: no source file of the console turns text into HTML or
// code, so a device's name or labels can only ever be shown as text.
func TestNoHTMLSinks(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("src", "*.ts"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no sources in src/: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if m := htmlSinks.FindString(line); m != "" && !strings.HasPrefix(strings.TrimSpace(line), "//") {
				t.Errorf("%s:%d: %s", f, i+1, strings.TrimSpace(line))
			}
		}
	}
}

// TestCloseWords: the console has words for every reason a session
// closes for.
func TestCloseWords(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("src", "words.ts"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range control.CloseReasons() {
		if !regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(string(r)) + `: "`).Match(b) {
			t.Errorf("src/words.ts's closeWords has no words for %q", r)
		}
	}
}

// TestConsentWords: the device page has words for every consent mode an
// owner's agent.yaml may set (which the agent reports).
func TestConsentWords(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("src", "device.ts"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, _ := strings.Cut(string(b), "export const consentWords")
	table, _, _ = strings.Cut(table, "};")
	for _, m := range []agentconsent.Mode{agentconsent.Manual, agentconsent.Approve, agentconsent.Auto} {
		if !regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(string(m)) + `: "`).MatchString(table) {
			t.Errorf("src/device.ts's consentWords has no words for %q", m)
		}
	}
}

// TestGzipped: a file with a NAME.gz beside it (the WebAssembly client) is
// sent compressed to a browser that takes gzip, and as it is to others.
func TestGzipped(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("wasm bytes"))
	zw.Close()
	c, err := New(fstest.MapFS{
		"index.html":       {Data: []byte("<!doctype html>")},
		"js/main.js":       {Data: []byte("")},
		"vendor/x.wasm":    {Data: []byte("wasm bytes")},
		"vendor/x.wasm.gz": {Data: gz.Bytes()},
		"vendor/xterm.mjs": {Data: []byte("export {}")},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		accept, encoding string
	}{{"gzip, deflate, br", "gzip"}, {"", ""}, {"gzip;q=0", ""}} {
		r := httptest.NewRequest("GET", "/console/vendor/x.wasm", nil)
		r.Header.Set("Accept-Encoding", tt.accept)
		w := httptest.NewRecorder()
		c.ServeHTTP(w, r)
		if w.Code != 200 || w.Header().Get("Content-Encoding") != tt.encoding || w.Header().Get("Content-Type") != "application/wasm" {
			t.Errorf("Accept-Encoding %q: %d, %v", tt.accept, w.Code, w.Header())
		}
		want := []byte("wasm bytes")
		if tt.encoding == "gzip" {
			want = gz.Bytes()
		}
		if !bytes.Equal(w.Body.Bytes(), want) {
			t.Errorf("Accept-Encoding %q: body %q", tt.accept, w.Body.Bytes())
		}
	}
}

// TestTerminalPage: /console/terminal/ID is the terminal's page under
// TerminalCSP; every other page keeps CSP, without the terminal's two
// additions.
func TestTerminalPage(t *testing.T) {
	c, err := New(fstest.MapFS{
		"index.html":    {Data: []byte("console")},
		"terminal.html": {Data: []byte("terminal")},
		"js/main.js":    {Data: []byte("")},
	})
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"/console/terminal/dev_1": "terminal", "/console/devices/dev_1": "console", "/console/": "console"} {
		w := httptest.NewRecorder()
		c.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		csp := w.Header().Get("Content-Security-Policy")
		if w.Body.String() != want {
			t.Errorf("%s: %q; want the %s page", path, w.Body.String(), want)
		}
		if (want == "terminal") != (csp == TerminalCSP) || (want == "console" && csp != CSP) {
			t.Errorf("%s: CSP %q", path, csp)
		}
	}
	if strings.Contains(CSP, "unsafe") {
		t.Error("the console's CSP allows something unsafe")
	}
}

// TestSpeculationRules: the console's pages (not the terminal's or the
// replay's) name the speculation rules in a header, and the rules, served
// with their own media type, prerender only the terminal's pages behind
// links, into the new tab a Connect link opens.
func TestSpeculationRules(t *testing.T) {
	c, err := New(fstest.MapFS{
		"index.html":    {Data: []byte("console")},
		"terminal.html": {Data: []byte("terminal")},
		"replay.html":   {Data: []byte("replay")},
		"js/main.js":    {Data: []byte("")},
	})
	if err != nil {
		t.Fatal(err)
	}
	for path, named := range map[string]bool{"/console/": true, "/console/devices/dev_1": true,
		"/console/terminal/dev_1": false, "/console/replay/ses_1": false, "/console/js/main.js": false} {
		got := get(t, c, "GET", path, nil).Header().Get("Speculation-Rules")
		if want := map[bool]string{true: `"/console/speculation-rules.json"`}[named]; got != want {
			t.Errorf("%s: Speculation-Rules %q; want %q", path, got, want)
		}
	}
	w := get(t, c, "GET", "/console/speculation-rules.json", nil)
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/speculationrules+json" {
		t.Fatalf("the rules: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	var rules struct {
		Prerender []struct {
			Source     string
			TargetHint string `json:"target_hint"`
			Where      struct {
				HrefMatches string `json:"href_matches"`
			}
		}
	}
	if err := json.Unmarshal(w.Body.Bytes(), &rules); err != nil {
		t.Fatalf("the rules are not JSON: %v\n%s", err, w.Body)
	}
	if len(rules.Prerender) != 1 || rules.Prerender[0].Source != "document" || rules.Prerender[0].Where.HrefMatches != "/console/terminal/*" || rules.Prerender[0].TargetHint != "_blank" {
		t.Errorf("the rules: %s", w.Body)
	}
}

// TestReplayPage: /console/replay/ID is the replay's page under ReplayCSP
// (the terminal's style allowance, no WebAssembly); the replay's first
// address, /console/sessions/ID/replay, is sent there; other pages keep
// CSP.
func TestReplayPage(t *testing.T) {
	c, err := New(fstest.MapFS{
		"index.html":  {Data: []byte("console")},
		"replay.html": {Data: []byte("replay")},
		"js/main.js":  {Data: []byte("")},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path, body, csp string
	}{
		{"/console/replay/ses_1", "replay", ReplayCSP},
		{"/console/sessions", "console", CSP},
		{"/console/sessions/ses_1", "console", CSP},
		{"/console/", "console", CSP},
	} {
		w := httptest.NewRecorder()
		c.ServeHTTP(w, httptest.NewRequest("GET", tt.path, nil))
		if w.Code != 200 || w.Body.String() != tt.body || w.Header().Get("Content-Security-Policy") != tt.csp {
			t.Errorf("%s: %d %q, CSP %q; want the %s page under %q", tt.path, w.Code, w.Body.String(), w.Header().Get("Content-Security-Policy"), tt.body, tt.csp)
		}
	}
	for path, want := range map[string]string{
		"/console/sessions/ses_1/replay":     "/console/replay/ses_1",
		"/console/sessions/a%3Fb%20c/replay": "/console/replay/a%3Fb%20c",
	} {
		w := httptest.NewRecorder()
		c.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != http.StatusFound || w.Header().Get("Location") != want {
			t.Errorf("%s: %d to %q; want %d to %q", path, w.Code, w.Header().Get("Location"), http.StatusFound, want)
		}
		if w.Header().Get("Content-Security-Policy") != CSP {
			t.Errorf("%s: the redirect has CSP %q", path, w.Header().Get("Content-Security-Policy"))
		}
	}
	if strings.Contains(ReplayCSP, "wasm") || strings.Count(ReplayCSP, "'unsafe-inline'") != 2 || !strings.Contains(ReplayCSP, "trusted-types 'none'") {
		t.Errorf("ReplayCSP allows more than the styles xterm.js writes: %s", ReplayCSP)
	}
}

// TestTerminalPreloads: the terminal's page asks at once for every file
// its script will load (terminal.html's preload links), so that none
// waits for the script that finds it needs it: the modules terminal.js
// imports, all the way down, the ones it imports as it runs, and the SSH
// client, as the fetch that compiles it asks for it (a preload of another
// kind would be fetched twice). The relay's WebSocket is the one the
// relay serves, with the browser's subprotocol, and the version line the
// page sends after its hello the client's.
func TestTerminalPreloads(t *testing.T) {
	page, err := os.ReadFile(filepath.Join("static", "terminal.html"))
	if err != nil {
		t.Fatal(err)
	}
	preloaded := map[string]string{} // href: the link's attributes
	for _, m := range regexp.MustCompile(`<link ([^>]*)>`).FindAllSubmatch(page, -1) {
		attrs := string(m[1])
		if href := regexp.MustCompile(`href="([^"]+)"`).FindStringSubmatch(attrs); href != nil && strings.Contains(attrs, "preload") {
			preloaded[href[1]] = attrs
		}
	}
	want := map[string]string{"/console/js/terminal.js": `rel="modulepreload"`}
	imports := regexp.MustCompile(`(?m)^import (?:[^t][^;]*|t[^y][^;]*) from "\./([a-z]+)\.js";$`)
	dynamic := regexp.MustCompile(`import\("(/console/[^"]+)"`)
	seen := map[string]bool{}
	var walk func(name string)
	walk = func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		src, err := os.ReadFile(filepath.Join("src", name+".ts"))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range imports.FindAllSubmatch(src, -1) {
			want["/console/js/"+string(m[1])+".js"] = `rel="modulepreload"`
			walk(string(m[1]))
		}
		for _, m := range dynamic.FindAllSubmatch(src, -1) {
			want[string(m[1])] = `rel="modulepreload"`
		}
	}
	walk("terminal")
	src, err := os.ReadFile(filepath.Join("src", "terminal.ts"))
	if err != nil {
		t.Fatal(err)
	}
	client := regexp.MustCompile(`const clientURL = "([^"]+)"`).FindSubmatch(src)
	if client == nil {
		t.Fatal("terminal.ts has no clientURL")
	}
	want[string(client[1])] = `rel="preload" href="` + string(client[1]) + `" as="fetch" crossorigin`
	if len(want) < 7 {
		t.Errorf("found only %v in terminal.ts's imports", want)
	}
	for href, attrs := range want {
		if got, ok := preloaded[href]; !ok || !strings.Contains(got, attrs) {
			t.Errorf("terminal.html does not preload %s (%s); it has %q", href, attrs, got)
		}
	}
	for href := range preloaded {
		if _, ok := want[href]; !ok {
			t.Errorf("terminal.html preloads %s, which the terminal does not load", href)
		}
	}
	for _, s := range []string{`const relayPath = "` + relayproto.WebSocketPath + `"`, `const relayProtocol = "` + relayproto.BrowserSubprotocol + `"`,
		`const clientVersion = "` + webssh.ClientVersion + `"`} {
		if !bytes.Contains(src, []byte(s)) {
			t.Errorf("terminal.ts has no %s", s)
		}
	}
}
