package proxydial

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole/internal/testnet"
)

// fakeProxy is an HTTP CONNECT proxy in the test process (over TLS with
// overTLS): answer says what it does with each CONNECT, on the hijacked
// connection. It records the requests it saw.
type fakeProxy struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request // guarded by mu
}

func newFakeProxy(t *testing.T, overTLS bool, answer func(r *http.Request, c net.Conn)) *fakeProxy {
	t.Helper()
	p := &fakeProxy{}
	p.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.reqs = append(p.reqs, r)
		p.mu.Unlock()
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijacking: %v", err)
			return
		}
		defer c.Close()
		answer(r, c)
	}))
	if overTLS {
		p.StartTLS()
	} else {
		p.Start()
	}
	t.Cleanup(p.Close)
	return p
}

// url is the proxy's URL, with userinfo if not empty.
func (p *fakeProxy) url(t *testing.T, userinfo string) *url.URL {
	t.Helper()
	u, err := url.Parse(p.URL)
	if err != nil {
		t.Fatal(err)
	}
	if userinfo != "" {
		user, pw, _ := strings.Cut(userinfo, ":")
		u.User = url.UserPassword(user, pw)
	}
	return u
}

func (p *fakeProxy) requests() []*http.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*http.Request(nil), p.reqs...)
}

// splice is a proxy's good answer: a tunnel to the target.
func splice(t *testing.T) func(r *http.Request, c net.Conn) {
	return func(r *http.Request, c net.Conn) {
		target, err := net.Dial("tcp", r.Host)
		if err != nil {
			io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
			return
		}
		defer target.Close()
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		go func() { io.Copy(target, c); target.(*net.TCPConn).CloseWrite() }()
		io.Copy(c, target)
	}
}

// always picks proxy for every target, loopback included (the fake proxy
// and its targets live on loopback).
func always(proxy *url.URL) ProxyFunc {
	return func(string) (*url.URL, error) { return proxy, nil }
}

func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("writing through the tunnel: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("read %q, %v through the tunnel; want %q", got, err, msg)
	}
}

// TestTunnel: a CONNECT with the target as request target and Host, the
// credentials of the proxy URL as Basic Proxy-Authorization (none without
// them), and a byte stream to the target; over a plain and a TLS proxy.
func TestTunnel(t *testing.T) {
	t.Parallel()
	target := testnet.Echo(t).String()
	tests := []struct {
		name     string
		overTLS  bool
		userinfo string
	}{
		{"http", false, ""},
		{"http with credentials", false, "alice:s3cret:with:colons"},
		{"https", true, "bob:pw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newFakeProxy(t, tt.overTLS, splice(t))
			d := &Dialer{Proxy: always(p.url(t, tt.userinfo))}
			if tt.overTLS {
				roots := x509.NewCertPool()
				roots.AddCert(p.Certificate())
				d.TLSConfig = &tls.Config{RootCAs: roots}
			}
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			c, err := d.DialContext(ctx, "tcp", target)
			if err != nil {
				t.Fatalf("DialContext = %v; want a tunnel", err)
			}
			defer c.Close()
			roundTrip(t, c, "hello through the proxy")

			reqs := p.requests()
			if len(reqs) != 1 {
				t.Fatalf("the proxy saw %d requests; want 1", len(reqs))
			}
			r := reqs[0]
			if r.RequestURI != target || r.Host != target {
				t.Errorf("CONNECT %q with Host %q; want %q for both", r.RequestURI, r.Host, target)
			}
			want := ""
			if tt.userinfo != "" {
				want = "Basic " + base64.StdEncoding.EncodeToString([]byte(tt.userinfo))
			}
			if got := r.Header.Get("Proxy-Authorization"); got != want {
				t.Errorf("Proxy-Authorization = %q; want %q", got, want)
			}
		})
	}
}

// TestEarlyBytes: what the proxy sends in the same segment as its answer
// belongs to the tunnel and is read first, not lost in a buffer.
func TestEarlyBytes(t *testing.T) {
	t.Parallel()
	p := newFakeProxy(t, false, func(r *http.Request, c net.Conn) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Note: early\r\n\r\nSSH-2.0-early\r\n")
		io.Copy(c, c) // then an echo
	})
	d := &Dialer{Proxy: always(p.url(t, ""))}
	c, err := d.DialContext(t.Context(), "tcp", "device.example:443")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len("SSH-2.0-early\r\n"))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "SSH-2.0-early\r\n" {
		t.Fatalf("first read %q, %v; want the bytes the proxy sent after its answer", got, err)
	}
	roundTrip(t, c, "and then the connection")
}

// TestRefusals: a proxy that says anything but 200, or not HTTP at all, or
// nothing, is an *Error naming the proxy (without its password), the
// target, and the status line it sent, with what to do.
func TestRefusals(t *testing.T) {
	t.Parallel()
	const target = "porthole.example.com:443"
	tests := []struct {
		name       string
		userinfo   string
		answer     string // written raw; "" closes without a word
		wantCode   int
		wantInMsg  []string
		wantGarble bool
	}{
		{name: "407 without credentials", answer: "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"corp\"\r\n\r\n",
			wantCode: 407, wantInMsg: []string{`answered "HTTP/1.1 407 Proxy Authentication Required"`, "give them in the proxy URL"}},
		{name: "407 with credentials", userinfo: "alice:hunter2", answer: "HTTP/1.1 407 Proxy Authentication Required\r\n\r\n",
			wantCode: 407, wantInMsg: []string{"HTTP/1.1 407", "did not take the user name and password"}},
		{name: "403", answer: "HTTP/1.0 403 Forbidden\r\nContent-Length: 5\r\n\r\nnope!",
			wantCode: 403, wantInMsg: []string{`answered "HTTP/1.0 403 Forbidden"`, "NO_PROXY"}},
		{name: "502", answer: "HTTP/1.1 502 Bad Gateway\r\n\r\n",
			wantCode: 502, wantInMsg: []string{`answered "HTTP/1.1 502 Bad Gateway"`}},
		{name: "2xx that is not 200", answer: "HTTP/1.1 204 No Content\r\n\r\n",
			wantCode: 204, wantInMsg: []string{"HTTP/1.1 204 No Content"}},
		{name: "garbage", answer: "SSH-2.0-OpenSSH_9.2\r\n\r\n",
			wantGarble: true, wantInMsg: []string{"something other than HTTP", "SSH-2.0-OpenSSH_9.2", "is it an HTTP proxy?"}},
		{name: "silence", answer: "",
			wantInMsg: []string{"cannot reach " + target + " through the proxy", "EOF"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newFakeProxy(t, false, func(r *http.Request, c net.Conn) { io.WriteString(c, tt.answer) })
			proxy := p.url(t, tt.userinfo)
			d := &Dialer{Proxy: always(proxy)}
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			c, err := d.DialContext(ctx, "tcp", target)
			if err == nil {
				c.Close()
				t.Fatal("DialContext made a connection; want a refusal")
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v; want a *proxydial.Error", err, err)
			}
			if pe.StatusCode != tt.wantCode || pe.Garbled != tt.wantGarble {
				t.Errorf("StatusCode, Garbled = %d, %v; want %d, %v", pe.StatusCode, pe.Garbled, tt.wantCode, tt.wantGarble)
			}
			msg := err.Error()
			for _, want := range append(tt.wantInMsg, "proxydial: ", proxy.Redacted(), target) {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not say %q", msg, want)
				}
			}
			if pw, ok := proxy.User.Password(); ok && strings.Contains(msg, pw) {
				t.Errorf("error %q shows the proxy's password", msg)
			}
		})
	}
}

// TestUnreachable: a proxy that is not there is named, as such, and the
// cause is kept for errors.Is.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	proxy := &url.URL{Scheme: "http", Host: addr}
	_, err = (&Dialer{Proxy: always(proxy)}).DialContext(t.Context(), "tcp", "porthole.example.com:443")
	var pe *Error
	if !errors.As(err, &pe) || pe.Err == nil || !strings.Contains(err.Error(), "cannot reach porthole.example.com:443 through the proxy http://"+addr) {
		t.Fatalf("error %v; want a *proxydial.Error saying the proxy cannot be reached", err)
	}
}

// TestSilentProxyDeadline: a proxy that takes the connection and never
// answers is given the caller's deadline, not forever.
func TestSilentProxyDeadline(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	p := newFakeProxy(t, false, func(r *http.Request, c net.Conn) { <-release })
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := (&Dialer{Proxy: always(p.url(t, ""))}).DialContext(ctx, "tcp", "porthole.example.com:443")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v; want one matching context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("DialContext returned after %v; want about the 200 ms deadline", d)
	}
}

// TestDirect: without a proxy for the target, the dialer dials it itself.
func TestDirect(t *testing.T) {
	t.Parallel()
	target := testnet.Echo(t).String()
	c, err := (&Dialer{Proxy: Direct}).DialContext(t.Context(), "tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, "direct")
}

// TestFixed: the proxy applies to every target but NO_PROXY's, localhost
// and loopback, as net/http decides.
func TestFixed(t *testing.T) {
	t.Parallel()
	proxy := &url.URL{Scheme: "http", Host: "proxy.corp:3128"}
	pick := Fixed(proxy, "internal.example, .lan,10.0.0.0/8, 192.168.1.5:8443")
	tests := []struct {
		addr string
		want bool // through the proxy
	}{
		{"porthole.example.com:443", true},
		{"192.0.2.10:8443", true},
		{"internal.example:443", false},
		{"mqtt.internal.example:8883", false},
		{"printer.lan:443", false},
		{"10.20.30.40:443", false},
		{"192.168.1.5:8443", false},
		{"192.168.1.5:443", true},
		{"localhost:8443", false},
		{"127.0.0.1:8443", false},
		{"[::1]:8443", false},
	}
	for _, tt := range tests {
		got, err := pick(tt.addr)
		if err != nil || (got != nil) != tt.want || (got != nil && got != proxy) {
			t.Errorf("pick(%q) = %v, %v; want through the proxy: %v", tt.addr, got, err, tt.want)
		}
	}
}

// env is a getenv of the variables in vars.
type env map[string]string

func (e env) get(k string) string { return e[k] }

// TestFromGetenv: HTTPS_PROXY (lower case first) and NO_PROXY; a bare
// host:port is http://; a bad value fails every dial, saying which
// variable.
func TestFromGetenv(t *testing.T) {
	t.Parallel()
	vars := env{"HTTP_PROXY": "http://not-for-tls:80", "ALL_PROXY": "socks5://nor-this:1080"}
	if got, err := FromGetenv(vars.get)("porthole.example.com:443"); got != nil || err != nil {
		t.Errorf("with only HTTP_PROXY and ALL_PROXY: %v, %v; want direct", got, err)
	}
	vars["HTTPS_PROXY"] = "http://upper:3128"
	vars["https_proxy"] = "proxy.corp:3128"
	vars["NO_PROXY"] = "skip.example"
	pick := FromGetenv(vars.get)
	if got, err := pick("porthole.example.com:443"); err != nil || got == nil || got.String() != "http://proxy.corp:3128" {
		t.Errorf("https_proxy=proxy.corp:3128: %v, %v; want http://proxy.corp:3128", got, err)
	}
	if got, err := pick("skip.example:443"); got != nil || err != nil {
		t.Errorf("NO_PROXY=skip.example: %v, %v; want direct", got, err)
	}
	vars["https_proxy"] = "socks5://user:topsecret@proxy.corp:1080"
	_, err := FromGetenv(vars.get)("porthole.example.com:443")
	if err == nil || !strings.Contains(err.Error(), "HTTPS_PROXY") || !strings.Contains(err.Error(), "http://") || strings.Contains(err.Error(), "topsecret") {
		t.Errorf("https_proxy=socks5://...: %v; want an error naming HTTPS_PROXY, asking for http://, without the password", err)
	}
}

// TestParseSetting: the config file's words and URLs.
func TestParseSetting(t *testing.T) {
	t.Parallel()
	vars := env{"HTTPS_PROXY": "http://from-env:3128", "NO_PROXY": "skip.example"}
	tests := []struct {
		setting string
		want    string // the proxy for porthole.example.com:443; "" for direct
		wantErr string
	}{
		{"", "http://from-env:3128", ""},
		{"direct", "", ""},
		{"none", "", ""},
		{"http://proxy.corp:3128", "http://proxy.corp:3128", ""},
		{" http://proxy.corp:3128 ", "http://proxy.corp:3128", ""}, // as a YAML value may come
		{"https://u:p@proxy.corp", "https://u:p@proxy.corp", ""},
		{"proxy.corp:3128", "", "must start with http://"},
		{"socks5://proxy.corp:1080", "", "must start with http://"},
		{"http://proxy.corp:3128/path", "", "path"},
		{"http://:3128", "", "names no host"},
		{"http://proxy.corp:99999", "", "no valid port"},
		{"http://user:pa ss@proxy.corp:3128%", "", "user:xxxxx@"},
	}
	for _, tt := range tests {
		pick, err := ParseSetting(tt.setting, vars.get)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "pa ss") {
				t.Errorf("ParseSetting(%q) = %v; want an error saying %q (and no password)", tt.setting, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseSetting(%q) = %v", tt.setting, err)
			continue
		}
		got, err := pick("porthole.example.com:443")
		if s := urlString(got); err != nil || s != tt.want {
			t.Errorf("ParseSetting(%q) picks %q, %v; want %q", tt.setting, s, err, tt.want)
		}
		if got, _ := pick("skip.example:443"); got != nil {
			t.Errorf("ParseSetting(%q) picks %v for a NO_PROXY host; want direct", tt.setting, got)
		}
	}
}

func urlString(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.String()
}
