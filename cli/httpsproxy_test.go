package cli

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/porthole/porthole/apiclient"
)

// connectProxy is an HTTP CONNECT proxy in the test process: answer does
// what it likes with each CONNECT on the raw connection. It records the
// request targets it was asked for. The test's end closes its connections
// (the CLI's idle keep-alive ones included).
type connectProxy struct {
	ln      net.Listener
	mu      sync.Mutex
	targets []string              // guarded by mu
	conns   map[net.Conn]struct{} // guarded by mu
}

func newConnectProxy(t *testing.T, answer func(target string, c net.Conn)) *connectProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &connectProxy{ln: ln, conns: map[net.Conn]struct{}{}}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns[c] = struct{}{}
			p.mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil || req.Method != http.MethodConnect {
					io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\n\r\n")
					return
				}
				p.mu.Lock()
				p.targets = append(p.targets, req.RequestURI)
				p.mu.Unlock()
				answer(req.RequestURI, c)
			})
		}
	})
	return p
}

func (p *connectProxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *connectProxy) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.targets...)
}

// tunnelTo answers every CONNECT with a tunnel to addr, whatever it asked
// for: the server's name resolves only at the proxy, as on a network whose
// only way out it is.
func tunnelTo(addr string) func(string, net.Conn) {
	return func(_ string, c net.Conn) {
		up, err := net.Dial("tcp", addr)
		if err != nil {
			io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
			return
		}
		defer up.Close()
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		go func() { io.Copy(up, c); up.(*net.TCPConn).CloseWrite() }()
		io.Copy(c, up)
	}
}

// TestHTTPSProxy: the CLI reaches the server through the proxy
// HTTPS_PROXY names, by CONNECT to the server's name and port; the pinned
// certificate is still checked, end to end, so a proxy that terminates TLS
// itself is refused; and a proxy's refusal is told in words that name the
// proxy, its answer and the variable.
func TestHTTPSProxy(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, map[string]http.HandlerFunc{"GET /api/v1/devices": answer(testDevices)})
	const server = "https://porthole.test" // resolvable only by the proxy
	env := func(p *connectProxy) map[string]string {
		env := f.loggedIn(t)
		env[envServer] = server
		env["HTTPS_PROXY"] = p.url()
		return env
	}

	t.Run("through", func(t *testing.T) {
		t.Parallel()
		p := newConnectProxy(t, tunnelTo(f.Listener.Addr().String()))
		r := mustRun(t, env(p), "", "devices", "--json")
		if !strings.Contains(r.stdout, `"dev2"`) {
			t.Errorf("devices through the proxy printed %q; want the devices", r.stdout)
		}
		if seen := p.seen(); len(seen) == 0 || seen[0] != "porthole.test:443" {
			t.Errorf("the proxy was asked for %v; want porthole.test:443", seen)
		}
	})

	t.Run("a proxy that terminates TLS", func(t *testing.T) {
		t.Parallel()
		mitm := newTestCert(t)
		p := newConnectProxy(t, func(_ string, c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
			tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{mitm}})
			_ = tc.Handshake()
			io.Copy(io.Discard, tc)
		})
		r := runCLI(t, env(p), "", "devices")
		if r.err == nil {
			t.Fatalf("devices trusted a proxy's own certificate:\n%s", r.stdout)
		}
		msg := r.err.Error()
		if !strings.Contains(msg, "certificate") || !strings.Contains(msg, f.fingerprint) || !strings.Contains(msg, apiclient.Fingerprint(mitm.Leaf)) {
			t.Errorf("error %q; want the pinned certificate and the proxy's named", msg)
		}
		if !strings.Contains(msg, "through the proxy "+p.url()) {
			t.Errorf("error %q; want the proxy named as the likely cause", msg)
		}
	})

	t.Run("407", func(t *testing.T) {
		t.Parallel()
		p := newConnectProxy(t, func(_ string, c net.Conn) {
			io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"corp\"\r\n\r\n")
		})
		r := runCLI(t, env(p), "", "devices")
		want := []string{"the proxy " + p.url() + " refused a tunnel to porthole.test:443",
			`"HTTP/1.1 407 Proxy Authentication Required"`, "http://USER:PASSWORD@HOST:PORT", "HTTPS_PROXY"}
		for _, w := range want {
			if r.err == nil || !strings.Contains(r.err.Error(), w) {
				t.Errorf("error %v; want it to say %q", r.err, w)
			}
		}
	})
}
