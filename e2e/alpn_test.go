package e2e

import (
	"bytes"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// alpnFirewall forwards TCP to a server, except connections whose TLS
// ClientHello asks for one of blocked ALPN protocols: those it resets, as
// a firewall that lets HTTPS out but inspects what TLS clients ask for
// does.
type alpnFirewall struct {
	ln      net.Listener
	target  atomic.Pointer[string]
	blocked map[string]*atomic.Int32 // by protocol
	wg      sync.WaitGroup
}

func newALPNFirewall(t *testing.T, protocols ...string) *alpnFirewall {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &alpnFirewall{ln: ln, blocked: map[string]*atomic.Int32{}}
	for _, p := range protocols {
		f.blocked[p] = new(atomic.Int32)
	}
	f.wg.Go(f.serve)
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
}

func (f *alpnFirewall) port() int { return f.ln.Addr().(*net.TCPAddr).Port }

func (f *alpnFirewall) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.wg.Go(func() { f.handle(c) })
	}
}

func (f *alpnFirewall) handle(c net.Conn) {
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	hello := make([]byte, 4096)
	n, err := c.Read(hello)
	if err != nil {
		return
	}
	hello = hello[:n]
	for p, count := range f.blocked {
		// An ALPN protocol name travels as its length and its bytes.
		if bytes.Contains(hello, append([]byte{byte(len(p))}, p...)) {
			count.Add(1)
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // a reset, as such firewalls send
			}
			return
		}
	}
	_ = c.SetReadDeadline(time.Time{})
	target := f.target.Load()
	if target == nil {
		return
	}
	s, err := net.Dial("tcp", *target)
	if err != nil {
		return
	}
	defer s.Close()
	if _, err := s.Write(hello); err != nil {
		return
	}
	done := make(chan struct{})
	go func() { io.Copy(c, s); c.Close(); close(done) }()
	io.Copy(s, c)
	s.Close()
	<-done
}

// TestALPNBlocked: behind a firewall that lets HTTPS out but resets TLS
// connections asking for MQTT's or the relay's ALPN protocol, the device
// comes online (MQTT over a WebSocket) and `porthole ssh` reaches it (the
// relay over WebSockets on both legs), all on the server's one port.
func TestALPNBlocked(t *testing.T) {
	t.Parallel()
	fw := newALPNFirewall(t, "mqtt", "porthole-relay/2")
	s := startDevOn(t, "127.0.0.1", "-v", "--public-port", strconv.Itoa(fw.port()))
	if !strings.HasSuffix(s.env["PORTHOLE_SERVER"], ":"+strconv.Itoa(fw.port())) {
		t.Fatalf("the dev server calls itself %s; want the firewall's port %d", s.env["PORTHOLE_SERVER"], fw.port())
	}
	// Where it really listens, from its log, for the firewall to forward to.
	WaitFor(t, 20*time.Second, "portholed dev to log where it listens", func() bool {
		m := regexp.MustCompile(`api=https://(127\.0\.0\.1:\d+)`).FindStringSubmatch(s.proc.Stderr())
		if m != nil {
			fw.target.Store(&m[1])
		}
		return m != nil
	})

	agent := s.device(t, "dev1", "consent: auto\n")
	r := Run(t, s.env, "", bins.CLI, "ssh", "dev1", "--", "echo", "through-websockets")
	if r.Err != nil || !strings.Contains(r.Stdout, "through-websockets") {
		t.Fatalf("porthole ssh behind the firewall: %v\n%s%s\nagent:\n%s", r.Err, r.Stdout, r.Stderr, agent.Stderr())
	}
	if n := fw.blocked["mqtt"].Load(); n == 0 {
		t.Error("the firewall never reset an MQTT connection: the test did not try MQTT's ALPN first")
	}
	if n := fw.blocked["porthole-relay/2"].Load(); n < 2 {
		t.Errorf("the firewall reset %d relay connections; want the device's and the engineer's", n)
	}
	if !strings.Contains(agent.Stderr(), "reached the broker by a WebSocket") || !strings.Contains(agent.Stderr(), "reached the relay by a WebSocket") {
		t.Errorf("the agent does not say it fell back to WebSockets:\n%s", agent.Stderr())
	}
}
