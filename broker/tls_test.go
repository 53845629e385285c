package broker

import (
	"crypto/tls"
	"errors"
	"net"
	"testing"

	"github.com/eclipse/paho.golang/packets"
	"github.com/porthole/porthole/internal/testtls"
)

// TestTLS: in production Serve gets a TLS listener; here a second one,
// beside the plain listener startBroker made.
func TestTLS(t *testing.T) {
	t.Parallel()
	tb := startBroker(t, nil)
	d := tb.enroll(t, "acme", "dev-1")
	cert, client := testtls.Pair(t, "broker.test")
	serverTLS, roots := &tls.Config{Certificates: []tls.Certificate{cert}}, client.RootCAs

	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- tb.Serve(tls.NewListener(tcp, serverTLS)) }()
	t.Cleanup(func() {
		tb.Close()
		if err := <-served; !errors.Is(err, ErrClosed) {
			t.Errorf("Serve(TLS) = %v; want ErrClosed", err)
		}
	})

	conn, err := tls.Dial("tcp", tcp.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "broker.test"})
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	c, _, err := connectOver(t, packets.NewThreadSafeConn(conn), d.login(), nil)
	if err != nil {
		t.Fatalf("Connect over TLS: %v", err)
	}
	if reason, err := c.subscribe(t, d.cmdTopic()); err != nil || reason != 1 {
		t.Fatalf("Subscribe over TLS = %#x, %v; want QoS 1", reason, err)
	}
	if err := tb.Publish(d.cmdTopic(), []byte("open"), false, 1); err != nil {
		t.Fatal(err)
	}
	if m := c.expectMessage(t); string(m.Payload) != "open" {
		t.Errorf("received %q; want open", m.Payload)
	}
}
