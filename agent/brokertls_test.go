package agent

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/porthole/porthole/agent/agentstate"
	"github.com/porthole/porthole/agent/internal/agenttest"
	"github.com/porthole/porthole/apiclient"
)

func TestPinVerifier(t *testing.T) {
	keys := agenttest.NewKeys(t)
	leaf, err := x509.ParseCertificate(keys.TLS.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pin := apiclient.Fingerprint(leaf)
	other := "sha256:" + strings.Repeat("0", 64)
	roots := x509.NewCertPool()
	roots.AddCert(leaf) // stands in for the system's roots
	cs := tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}

	for _, tt := range []struct {
		name    string
		pin     string
		host    string
		orRoots bool
		errHas  string // "" for accepted
	}{
		{"pinned", pin, "127.0.0.1:8883", false, ""},
		{"pinned, upper case", strings.ToUpper(pin[:7]) + strings.ToUpper(pin[7:]), "127.0.0.1:8883", false, ""},
		{"other pin", other, "127.0.0.1:8883", false, "presented the certificate " + pin + ", not " + other},
		// Enrolled with a pin: roots that trust the certificate do not
		// override it.
		{"other pin, roots not allowed", other, "localhost:8883", false, "that this device enrolled with"},
		{"other pin, roots vouch", other, "localhost:8883", true, ""},
		{"other pin, roots vouch for another name", other, "broker.example.com:8883", true, "neither " + other},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := pinVerifier(tt.pin, tt.host, roots, tt.orRoots)(cs)
			switch {
			case tt.errHas == "" && err != nil:
				t.Errorf("verify = %v; want accepted", err)
			case tt.errHas != "" && (err == nil || !strings.Contains(err.Error(), tt.errHas) || !errors.Is(err, ErrBrokerUntrusted)):
				t.Errorf("verify = %v; want ErrBrokerUntrusted containing %q", err, tt.errHas)
			}
		})
	}
	if err := pinVerifier(pin, "x:1", nil, true)(tls.ConnectionState{}); !errors.Is(err, ErrBrokerUntrusted) {
		t.Errorf("verify without a certificate = %v; want ErrBrokerUntrusted", err)
	}
}

func TestBrokerTLS(t *testing.T) {
	u, _ := url.Parse("mqtts://broker.example.com:8883")
	pin := "sha256:" + strings.Repeat("ab", 32)
	t.Run("pinned", func(t *testing.T) {
		cfg, err := brokerTLS(u, &agentstate.Enrollment{TLSFingerprint: pin, Fingerprint: pin}, BrokerConfig{})
		if err != nil || !cfg.InsecureSkipVerify || cfg.VerifyConnection == nil || cfg.ServerName != "broker.example.com" {
			t.Errorf("brokerTLS = %+v, %v; want a pin check in place of the chain check", cfg, err)
		}
	})
	t.Run("no pin recorded", func(t *testing.T) {
		cfg, err := brokerTLS(u, &agentstate.Enrollment{}, BrokerConfig{})
		if err != nil || cfg.InsecureSkipVerify || cfg.VerifyConnection != nil {
			t.Errorf("brokerTLS = %+v, %v; want the system's roots", cfg, err)
		}
	})
	t.Run("damaged pin", func(t *testing.T) {
		if _, err := brokerTLS(u, &agentstate.Enrollment{TLSFingerprint: "sha256:zz"}, BrokerConfig{}); err == nil || !strings.Contains(err.Error(), "damaged") {
			t.Errorf("brokerTLS = %v; want an error about the damaged fingerprint", err)
		}
	})
	t.Run("external ignores the pin", func(t *testing.T) {
		cfg, err := brokerTLS(u, &agentstate.Enrollment{TLSFingerprint: pin}, BrokerConfig{URL: u.String()})
		if err != nil || cfg.InsecureSkipVerify || cfg.VerifyConnection != nil || cfg.RootCAs != nil {
			t.Errorf("brokerTLS = %+v, %v; want the system's roots", cfg, err)
		}
	})
}
