package brokerclient

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/internal/testmosquitto"
)

// testCA is a certificate authority that writes PEM files for Mosquitto and
// the client into dir.
type testCA struct {
	t    testing.TB
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	File string // the CA certificate
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	ca := &testCA{t: t, dir: t.TempDir()}
	ca.cert, ca.key = ca.issue(&x509.Certificate{
		Subject:               pkix.Name{CommonName: name},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}, nil, nil)
	ca.File = ca.write(name+".crt", "CERTIFICATE", ca.cert.Raw)
	return ca
}

// issue signs tmpl with parent's key (itself if parent is nil).
func (ca *testCA) issue(tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	ca.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		ca.t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		ca.t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		ca.t.Fatal(err)
	}
	return cert, key
}

// leaf issues a certificate for cn and writes it and its key, returning
// their paths. A server certificate is for 127.0.0.1.
func (ca *testCA) leaf(cn string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	ca.t.Helper()
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: cn}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	cert, key := ca.issue(tmpl, ca.cert, ca.key)
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		ca.t.Fatal(err)
	}
	name := strings.ReplaceAll(cn, "/", "_")
	return ca.write(name+".crt", "CERTIFICATE", cert.Raw), ca.write(name+".key", "EC PRIVATE KEY", der)
}

func (ca *testCA) write(name, typ string, der []byte) string {
	ca.t.Helper()
	path := filepath.Join(ca.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		ca.t.Fatal(err)
	}
	return path
}

// startTLSMosquitto adds to the shipped configuration a TLS listener that
// authenticates clients by certificate, their common name being the
// username, as the comments in the shipped file describe.
func startTLSMosquitto(t *testing.T, ca *testCA) *testmosquitto.Broker {
	t.Helper()
	certFile, keyFile := ca.leaf("broker", x509.ExtKeyUsageServerAuth)
	return startMosquitto(t, strings.Join([]string{
		"listener {{port:tls}} 127.0.0.1",
		"certfile " + certFile,
		"keyfile " + keyFile,
		"cafile " + ca.File,
		"require_certificate true",
		"use_identity_as_username true",
		"use_username_as_clientid true",
		"allow_anonymous false",
		"acl_file {{dir}}/acl",
		"",
	}, "\n"))
}

func TestMutualTLS(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "porthole-test-ca")
	m := startTLSMosquitto(t, ca)
	url := "mqtts://" + m.Addr("tls")
	serverCert, serverKey := ca.leaf("portholed", x509.ExtKeyUsageClientAuth)
	server := connectServer(t, m, func(c *Config) {
		c.URL, c.Username, c.Password = url, "", ""
		c.CAFile, c.CertFile, c.KeyFile = ca.File, serverCert, serverKey
	})
	states := watch(t, server, control.StateFilter)

	// A device with a certificate for CN=acme/dev1 is acme/dev1 to the ACL.
	devCert, devKey := ca.leaf("acme/dev1", x509.ExtKeyUsageClientAuth)
	dev := dialTLSDevice(t, m.Addr("tls"), ca.File, devCert, devKey)
	cmd := mustTopic(t, control.CmdTopic, "acme", "dev1")
	cmd2 := mustTopic(t, control.CmdTopic, "acme", "dev2")
	state := mustTopic(t, control.StateTopic, "acme", "dev1")
	dev.subscribe(t, cmd2, cmd)
	for _, topic := range []string{cmd2, cmd} {
		if err := server.Publish(topic, []byte("open"), false, 1); err != nil {
			t.Fatalf("Publish over TLS: %v", err)
		}
	}
	dev.waitMessage(t, message{cmd, "open"})
	dev.only(t, "acme/dev1 by certificate", message{cmd, "open"})
	dev.sendUntilSeen(t, states, state, "online")
}

func TestUntrustedBrokerCertificate(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "porthole-test-ca")
	m := startTLSMosquitto(t, ca)
	other := newTestCA(t, "someone-else")
	serverCert, serverKey := ca.leaf("portholed", x509.ExtKeyUsageClientAuth)
	server := newServer(t, m, func(c *Config) {
		c.URL, c.Username, c.Password = "mqtts://"+m.Addr("tls"), "", ""
		c.CAFile, c.CertFile, c.KeyFile = other.File, serverCert, serverKey
	})
	start := time.Now()
	err := server.Connect(context.Background())
	var certErr *tls.CertificateVerificationError
	if !errors.As(err, &certErr) || !strings.Contains(err.Error(), "its TLS certificate is not trusted") {
		t.Errorf("Connect = %v; want a sentence saying the certificate is not trusted", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Connect took %s to give up on an untrusted certificate; want it at once", d)
	}
}

func TestBrokerWantsClientCertificate(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "porthole-test-ca")
	m := startTLSMosquitto(t, ca)
	server := newServer(t, m, func(c *Config) {
		c.URL, c.CAFile = "mqtts://"+m.Addr("tls"), ca.File
	})
	err := connectOnce(server)
	want := "brokerclient: cannot reach the MQTT broker at mqtts://" + m.Addr("tls") + ": "
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Connect without a client certificate = %v; want it to start %q", err, want)
	}
}

// dialTLSDevice logs in to a certificate listener with a device
// certificate and no password.
func dialTLSDevice(t testing.TB, addr, caFile, certFile, keyFile string) *testDevice {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := loginDevice(conn, "", "", "", nil)
	if err != nil {
		t.Fatalf("device by certificate: %v", err)
	}
	t.Cleanup(d.close)
	return d
}
