package relay

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole/internal/testwait"
	"github.com/porthole/porthole/relay/relayproto"
)

// flood holds connections from one source address that say nothing.
type flood struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (f *flood) add(c net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conns = append(f.conns, c)
}

// open dials n TCP connections to addr from the address from.
func (f *flood) open(t *testing.T, n int, from, addr string) {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	for range n {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("the flood's connection: %v", err)
		}
		f.add(c)
	}
}

// openTLS completes n TLS handshakes on the server's port with the relay's
// ALPN from the address from, and then says nothing. A handshake the
// server turns away (its per-source cap) does not count.
func (f *flood) openTLS(t *testing.T, n int, from, addr string, cfg *tls.Config) int {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	ok := 0
	for range n {
		tc, err := relayproto.Dial(context.Background(), addr, cfg, d.DialContext)
		if err != nil {
			continue
		}
		f.add(tc)
		ok++
	}
	return ok
}

func (f *flood) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
}

// TestIdleFlood: 300 TCP connections that say nothing, from one source, to
// the SSH relay (whose shared cap was 256 handshakes of 10 s each, with no
// per-source limit: issue 11, finding 2); 300 more to the server's port,
// and, from another source, 100 that complete TLS there and then send no
// hello. A device and an engineer from a third source still log in and
// reach each other, by either protocol; each flooding source holds its
// share of the relay's slots and no more; and the flood's connections are
// closed once HelloTimeout has passed, long before HandshakeTimeout.
//
// It runs alone (not in parallel): its 700 connections and 100 TLS
// handshakes would slow the other tests past their short waits.
func TestIdleFlood(t *testing.T) {
	const helloTimeout = 3 * time.Second
	e := newV2Env(t, func(c *Config) {
		c.MaxHandshakes = 256 // as it was
		c.HandshakeTimeout = time.Minute
		c.HelloTimeout = helloTimeout
	})
	f := &flood{}
	t.Cleanup(f.close)
	start := time.Now()
	if n := f.openTLS(t, 100, "127.0.0.3", e.addr, e.tls); n < 2*defaultMaxPerSource {
		t.Fatalf("only %d of the flood's TLS handshakes completed; the test needs more than the relay's share", n)
	}
	f.open(t, 300, "127.0.0.2", e.testEnv.addr)
	f.open(t, 300, "127.0.0.2", e.addr)
	share := 2 * defaultMaxPerSource // its slots, and as many waiting for one
	testwait.For(t, 5*time.Second, "each flooding source to hold its share of the relay's slots", func() bool {
		return e.relay.Stats().Handshakes == 2*share
	})

	// From 127.0.0.1: a device and an engineer of each protocol.
	e.open("ses_1", "acme", "dev1")
	dev := e.testEnv.mustDevice(t, "acme", "dev1", e.enroll("acme", "dev1"))
	dev.mustRegister(t, "ses_1")
	eng := e.mustEngineer(t, "ses_1", "acme", "dev1")
	ch, err := openDirect(eng, "ses_1")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, ch, "through the flood, by SSH")

	e.open("ses_2", "acme", "dev2")
	dev2 := e.mustDevice(t, "acme", "dev2", e.enroll("acme", "dev2"))
	if _, err := dev2.register("ses_2"); err != nil {
		t.Fatal(err)
	}
	c := e.engineer(t, e.certFor(t, newSigner(t), claimsFor("ses_2", "acme", "dev2")))
	roundTrip(t, c, "through the flood, by the second protocol")
	if st := e.relay.Stats(); st.Handshakes != 0 && st.Handshakes != 2*share {
		t.Errorf("the relay holds %d handshakes; want the flood's %d (or none, once they timed out)", st.Handshakes, 2*share)
	}

	// The flood's connections at the relay are closed after HelloTimeout,
	// well before HandshakeTimeout.
	testwait.For(t, helloTimeout+5*time.Second, "the flood's handshakes to be closed", func() bool {
		return e.relay.Stats().Handshakes == 0
	})
	if d := time.Since(start); d < helloTimeout {
		t.Errorf("the flood's handshakes were closed after %v; want HelloTimeout (%v)", d, helloTimeout)
	}
}

// TestBurstFromOneSource: twice MaxHandshakesPerSource logins at once from
// one address (a device opening sessions, engineers behind one NAT) all
// succeed: those past the source's share wait for a turn rather than being
// cut.
func TestBurstFromOneSource(t *testing.T) {
	t.Parallel()
	const perSource = 4
	e := newEnv(t, func(c *Config) { c.MaxHandshakesPerSource = perSource })
	key := e.enroll("acme", "dev1")
	const n = 2 * perSource
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := e.dialDevice(t, "acme", "dev1", key, nil)
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("one of %d logins at once from one source: %v", n, err)
		}
	}
}
