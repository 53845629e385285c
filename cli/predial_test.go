package cli

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/porthole/porthole/internal/testtls"
	"github.com/porthole/porthole/relay/relayproto"
)

// relayListener is a TLS listener that takes the relay's ALPN protocol,
// as the relay's port does, and hands over each connection once its
// handshake is done.
func relayListener(t *testing.T) (string, *tls.Config, <-chan *tls.Conn) {
	t.Helper()
	cert, client := testtls.Pair(t, "relay.example.com")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{relayproto.ALPN}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns := make(chan *tls.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			if tc.Handshake() == nil {
				conns <- tc
			}
		}
	}()
	return ln.Addr().String(), client, conns
}

// closedByClient waits for the client to close c.
func closedByClient(t *testing.T, c net.Conn, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("%s: the relay read %v; want the connection closed (EOF)", what, err)
	}
}

// TestPreDial: the relay connection dialed while the session is asked for
// is used once, for the address it was dialed to, while fresh; otherwise
// it is closed, also when it is dropped before its dial ends.
func TestPreDial(t *testing.T) {
	addr, cfg, conns := relayListener(t)
	ctx := t.Context()

	p := startPreDial(ctx, addr, cfg, nil)
	tc, ok, err := p.take(ctx, addr)
	if tc == nil || !ok || err != nil {
		t.Fatalf("take of the address dialed: %v, %v, %v", tc, ok, err)
	}
	defer tc.Close()
	if tc.ConnectionState().NegotiatedProtocol != relayproto.ALPN {
		t.Errorf("the pre-dialed connection speaks %q", tc.ConnectionState().NegotiatedProtocol)
	}
	<-conns
	if again, ok, _ := p.take(ctx, addr); again != nil || ok {
		t.Error("a second take got the connection again")
	}

	p = startPreDial(ctx, addr, cfg, nil)
	if got, ok, _ := p.take(ctx, "127.0.0.1:1"); got != nil || ok {
		t.Error("take for another address (the session placed on another relay node) got the connection")
	}
	closedByClient(t, <-conns, "placed elsewhere")

	p = startPreDial(ctx, addr, cfg, nil)
	<-p.done
	p.at = p.at.Add(-2 * preDialFresh)
	if got, ok, _ := p.take(ctx, addr); got != nil || ok {
		t.Error("take of a connection older than the relay's hello timeout allows got it")
	}
	closedByClient(t, <-conns, "stale")

	p = startPreDial(ctx, addr, cfg, nil)
	p.drop()
	<-p.done
	if got, ok, _ := p.take(ctx, addr); got != nil || ok {
		t.Error("take after drop got a connection")
	}
	select {
	case c := <-conns:
		closedByClient(t, c, "dropped while dialing")
	case <-time.After(time.Second): // the dial may not have reached the listener
	}
	// A dial that failed is told, once, so that the caller does not wait
	// for a second one.
	refused := "127.0.0.1:1"
	p = startPreDial(ctx, refused, cfg, nil)
	if got, ok, err := p.take(ctx, refused); got != nil || !ok || err == nil {
		t.Errorf("take of a refused dial: %v, %v, %v; want its error", got, ok, err)
	}
	var nilPre *preDial
	if got, ok, _ := nilPre.take(ctx, addr); got != nil || ok {
		t.Error("a nil preDial gave a connection")
	}
	nilPre.drop()
}
