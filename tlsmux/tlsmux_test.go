package tlsmux

import (
	"crypto/tls"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole/internal/testtls"
)

// startMux serves a Mux on 127.0.0.1 with one route, "test", whose
// connections are answered "ok" and closed; it returns the address and the
// clients' TLS configuration.
func startMux(t *testing.T, cfg Config) (string, *tls.Config) {
	t.Helper()
	cert, client := testtls.Pair(t, "mux.test")
	cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	route := m.Route("test")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = m.Serve(ln) })
	wg.Go(func() {
		for {
			c, err := route.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("ok"))
			_ = c.Close()
		}
	})
	t.Cleanup(func() {
		start := time.Now()
		_ = m.Close()
		wg.Wait()
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Close took %v with connections waiting for their turn; want it at once", d)
		}
	})
	return ln.Addr().String(), withProtos(client, "test")
}

// reach dials addr from the local address from and reads the route's "ok".
func reach(addr, from string, cfg *tls.Config) error {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}, Config: cfg}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 2)
	_, err = c.Read(b)
	return err
}

// TestBurstFromOneSource: twice MaxPerSource handshakes at once from one
// address all succeed: those past the source's share wait their turn
// instead of being cut (issue 11: fifty `porthole ssh` at once from one
// host had some of their connections reset).
func TestBurstFromOneSource(t *testing.T) {
	t.Parallel()
	const perSource = 4
	addr, cfg := startMux(t, Config{MaxPerSource: perSource, HandshakeTimeout: 10 * time.Second})
	const n = 2 * perSource
	errs := make(chan error, n)
	for range n {
		go func() { errs <- reach(addr, "127.0.0.1", cfg) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("one of %d handshakes at once from one source: %v", n, err)
		}
	}
}

// TestIdleFloodFromOneSource: 300 connections from one address that never
// say a word take their source's share and its queue, nothing more: a
// client from another address completes its handshake at once.
func TestIdleFloodFromOneSource(t *testing.T) {
	t.Parallel()
	addr, cfg := startMux(t, Config{HandshakeTimeout: 30 * time.Second})
	var idle []net.Conn
	t.Cleanup(func() {
		for _, c := range idle {
			c.Close()
		}
	})
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	for range 300 {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("the attacker's connection: %v", err)
		}
		idle = append(idle, c)
	}
	start := time.Now()
	if err := reach(addr, "127.0.0.3", cfg); err != nil {
		t.Fatalf("a client from another address, after 300 idle connections from one: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the other client took %v; want it served at once", d)
	}
}

func withProtos(c *tls.Config, protos ...string) *tls.Config {
	c.NextProtos = protos
	return c
}
