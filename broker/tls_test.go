package broker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
)

// TestTLS: in production Serve gets a TLS listener; here a second one,
// beside the plain listener startBroker made.
func TestTLS(t *testing.T) {
	t.Parallel()
	tb := startBroker(t, nil)
	d := tb.enroll(t, "acme", "dev-1")
	serverTLS, roots := selfSignedTLS(t)

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

// selfSignedTLS makes a server certificate for broker.test and the pool that
// trusts it.
func selfSignedTLS(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		DNSNames:     []string{"broker.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, roots
}
