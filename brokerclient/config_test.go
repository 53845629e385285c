package brokerclient

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want string // in the error; empty: valid
	}{
		{"plain", Config{URL: "mqtt://broker.example.com"}, ""},
		{"tls", Config{URL: "mqtts://broker.example.com:8884", Username: "portholed", Password: "pw"}, ""},
		{"empty URL", Config{}, "the broker URL is empty"},
		{"other scheme", Config{URL: "https://broker.example.com"}, `has scheme "https": use mqtt:// or mqtts://`},
		{"path", Config{URL: "mqtt://broker.example.com/x"}, "should be just mqtt://host[:port]"},
		{"credentials in URL", Config{URL: "mqtt://u:secret@broker.example.com"}, "carries credentials"},
		{"no host", Config{URL: "mqtt://:1883"}, "should be just"},
		{"password without user", Config{URL: "mqtt://b", Password: "pw"}, "without a username"},
		{"cert without key", Config{URL: "mqtts://b", CertFile: "c.pem"}, "both its certificate file and its key file"},
		{"TLS files on plain", Config{URL: "mqtt://b", CAFile: notPEM}, "does not use TLS: use mqtts://"},
		{"missing CA file", Config{URL: "mqtts://b", CAFile: filepath.Join(dir, "none")}, "reading the broker's CA file"},
		{"CA file not PEM", Config{URL: "mqtts://b", CAFile: notPEM}, "holds no PEM certificate"},
		{"bad share group", Config{URL: "mqtt://b", ShareGroup: "a/b"}, "share group"},
		{"wildcard share group", Config{URL: "mqtt://b", ShareGroup: "+"}, "share group"},
		{"negative timeout", Config{URL: "mqtt://b", PublishTimeout: -1}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.cfg.validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("validate = %v; want ok", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("validate = %v; want an error saying %q", err, tt.want)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	s, err := Config{URL: "mqtts://broker.example.com"}.validate()
	if err != nil {
		t.Fatal(err)
	}
	if got := s.url.String(); got != "mqtts://broker.example.com:8883" {
		t.Errorf("url = %s; want the default port 8883", got)
	}
	if s.ShareGroup != "portholed" {
		t.Errorf("ShareGroup = %q; want portholed", s.ShareGroup)
	}
	if s.tls == nil || s.tls.ServerName != "broker.example.com" {
		t.Errorf("tls = %+v; want a config checking broker.example.com", s.tls)
	}
	other, err := Config{URL: "mqtt://b"}.validate()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.ClientID, "portholed-") || s.ClientID == other.ClientID {
		t.Errorf("client ids %q and %q; want distinct ones starting portholed-", s.ClientID, other.ClientID)
	}
	if other.url.Port() != "1883" || other.tls != nil {
		t.Errorf("mqtt:// url %s, tls %v; want port 1883 and no TLS", other.url, other.tls)
	}
}
