package agent

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"log/slog"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/agent/agentconsent"
	"github.com/porthole/porthole/agent/agentowner"
	"github.com/porthole/porthole/agent/agentrecord"
	"github.com/porthole/porthole/agent/agentstate"
)

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
broker:
  url: mqtts://mqtt.example.com
  username: dev1
  password: secret
  ca_file: /etc/porthole/ca.pem
  client_cert: /etc/porthole/dev1.crt
  client_key: /etc/porthole/dev1.key
log_level: debug
allow_ports: [22, 8080]
run_as: pi
idle_timeout: 5m
max_duration: 1h
proxy: http://proxy.example:3128
`))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{LogLevel: "debug", AllowPorts: []int{22, 8080}, RunAs: "pi", IdleTimeout: 5 * time.Minute,
		MaxDuration: time.Hour, Proxy: "http://proxy.example:3128", Broker: BrokerConfig{
			URL: "mqtts://mqtt.example.com", Username: "dev1", Password: "secret",
			CAFile: "/etc/porthole/ca.pem", ClientCert: "/etc/porthole/dev1.crt", ClientKey: "/etc/porthole/dev1.key",
		}}
	if !reflect.DeepEqual(*cfg, want) || cfg.Level() != slog.LevelDebug {
		t.Errorf("ParseConfig = %+v; want %+v", *cfg, want)
	}
	for _, empty := range []string{"", "# nothing yet\n"} {
		if cfg, err := ParseConfig([]byte(empty)); err != nil || !reflect.DeepEqual(*cfg, Config{}) || cfg.Level() != slog.LevelInfo ||
			cfg.idleTimeout() != DefaultIdleTimeout || cfg.maxDuration() != DefaultMaxDuration ||
			cfg.Consent.ModeOrDefault() != agentconsent.Manual || cfg.Owner.SocketPath() != agentowner.DefaultSocket {
			t.Errorf("ParseConfig(%q) = %+v, %v; want the defaults", empty, cfg, err)
		}
	}
}

// TestParseConsentConfig: the owner's consent keys.
func TestParseConsentConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
consent: approve
approval_timeout: 2m
socket: /run/dev1/agent.sock
socket_group: owners
local_ui: localhost:7780
`))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Consent: agentconsent.Config{Mode: agentconsent.Approve, ApprovalTimeout: 2 * time.Minute},
		Owner: agentowner.Config{Socket: "/run/dev1/agent.sock", SocketGroup: "owners", LocalUI: "localhost:7780"}}
	if !reflect.DeepEqual(*cfg, want) || cfg.Consent.ModeOrDefault() != agentconsent.Approve || cfg.Owner.SocketPath() != "/run/dev1/agent.sock" {
		t.Errorf("ParseConfig = %+v; want %+v", *cfg, want)
	}
	for _, ok := range []string{"local_ui: '[::1]:7780'", "local_ui: 127.0.0.2:0", "consent: auto", "consent: manual"} {
		if _, err := ParseConfig([]byte(ok)); err != nil {
			t.Errorf("ParseConfig(%q): %v", ok, err)
		}
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		name, yaml, errHas string
	}{
		{"unknown key", "log_level: info\nconsnet: auto\n", `line 2: unknown key "consnet"`},
		{"a consent mode", "consent: trusting", `consent "trusting" must be manual, approve or auto`},
		{"a long approval", "approval_timeout: 11m", "approval_timeout must be between"},
		{"a relative socket", "socket: agent.sock", "must be an absolute path"},
		{"a socket group", "socket_group: 'a b'", "not a group name"},
		{"a page for the network", "local_ui: 0.0.0.0:7780", "listens only on the device itself"},
		{"a page by name", "local_ui: device.local:7780", "listens only on the device itself"},
		{"a page without a port", "local_ui: 127.0.0.1", "not host:port"},
		{"unknown nested key", "broker:\n  url: mqtt://x\n  pasword: x\n", `line 3: unknown key "pasword"`},
		{"log level", "log_level: loud", `log_level "loud" must be debug, info, warn or error`},
		{"scheme", "broker: {url: 'https://x'}", "must start with mqtts://"},
		{"no host", "broker: {url: 'mqtts://:8883'}", "names no host"},
		{"user in URL", "broker: {url: 'mqtts://u:p@x'}", "broker.username and broker.password"},
		{"path", "broker: {url: 'mqtts://x/y'}", "only scheme, host and port"},
		{"cert without key", "broker: {url: 'mqtts://x', client_cert: c}", "give both, or neither"},
		{"ca without url", "broker: {ca_file: ca.pem}", "set broker.url too"},
		{"cert over plain mqtt", "broker: {url: 'mqtt://x', client_cert: c, client_key: k}", "needs an mqtts://"},
		{"not a map", "- a\n- b\n", "cannot unmarshal"},
		{"a port out of range", "allow_ports: [22, 70000]", "70000 is not a port"},
		{"a negative limit", "idle_timeout: -1m", "cannot be negative"},
		{"a user name with a slash", "run_as: ../root", "not a user name"},
		{"a limit without a unit", "max_duration: 10", "cannot unmarshal"},
		{"a proxy without a scheme", "proxy: proxy.example:3128", "must start with http://"},
		{"a SOCKS proxy", "proxy: socks5://proxy.example:1080", "must start with http://"},
		{"a proxy with a path", "proxy: http://proxy.example:3128/x", "path"},
		{"a proxy word", "proxy: off", "write direct for none"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseConfig([]byte(tt.yaml)); err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("ParseConfig = %v; want an error containing %q", err, tt.errHas)
			}
		})
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return path
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadConfig(missing) = %v; want an error matching fs.ErrNotExist", err)
	}
	path := write("ok.yaml", "log_level: warn\n", 0o644)
	if cfg, err := LoadConfig(path); err != nil || cfg.LogLevel != "warn" {
		t.Errorf("LoadConfig = %+v, %v", cfg, err)
	}
	path = write("bad.yaml", "bogus: 1\n", 0o644)
	if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), "config "+path+`: line 1: unknown key "bogus"`) {
		t.Errorf("LoadConfig = %v; want an error naming the file, the line and the key", err)
	}

	// Whoever can write the config decides where the device connects.
	for _, mode := range []os.FileMode{0o666, 0o664, 0o646} {
		path := write("open.yaml", "", mode)
		if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), "chmod go-w "+path) {
			t.Errorf("LoadConfig of a %v file = %v; want a refusal saying chmod go-w", mode, err)
		}
	}
	secret := "broker: {url: 'mqtt://x', password: hunter2}\n"
	path = write("secret.yaml", secret, 0o644)
	if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), "chmod o-r "+path) || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("LoadConfig of a world-readable password = %v; want a refusal saying chmod o-r, without the password", err)
	}
	path = write("secret640.yaml", secret, 0o640)
	if cfg, err := LoadConfig(path); err != nil || cfg.Broker.Password != "hunter2" {
		t.Errorf("LoadConfig of a 0640 file with a password = %+v, %v; want it read", cfg, err)
	}
	path = write("proxypw.yaml", "proxy: http://dev1:hunter2@proxy.example:3128\n", 0o644)
	if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), "chmod o-r "+path) || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("LoadConfig of a world-readable proxy password = %v; want a refusal saying chmod o-r, without the password", err)
	}
	path = write("proxyuser.yaml", "proxy: http://dev1@proxy.example:3128\n", 0o644)
	if _, err := LoadConfig(path); err != nil {
		t.Errorf("LoadConfig of a proxy URL with a user name and no password = %v; want it read", err)
	}
}

func TestClientCertificate(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := selfSignedPEM(t)
	certFile, keyFile := filepath.Join(dir, "dev.crt"), filepath.Join(dir, "dev.key")
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("mqtts://iot.example.com:8883")
	bc := BrokerConfig{URL: u.String(), ClientCert: certFile, ClientKey: keyFile}
	cfg, err := brokerTLS(u, &agentstate.Enrollment{}, bc)
	if err != nil || len(cfg.Certificates) != 1 {
		t.Fatalf("brokerTLS = %+v, %v; want the client certificate", cfg, err)
	}

	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := brokerTLS(u, &agentstate.Enrollment{}, bc); err == nil || !strings.Contains(err.Error(), "chmod 600 "+keyFile) {
		t.Errorf("brokerTLS with a readable key = %v; want a refusal saying chmod 600", err)
	}
	if err := os.Chmod(keyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	bc.ClientCert = keyFile
	if _, err := brokerTLS(u, &agentstate.Enrollment{}, bc); err == nil || !strings.Contains(err.Error(), "do not make a certificate and its key") {
		t.Errorf("brokerTLS with a key for a certificate = %v", err)
	}
}

// selfSignedPEM makes a certificate and its key in PEM.
func selfSignedPEM(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lab/dev1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

func TestParseConfigSeveralUnknownKeys(t *testing.T) {
	_, err := ParseConfig([]byte("a: 1\nb: 2\n"))
	if want := `line 1: unknown key "a"; line 2: unknown key "b"`; err == nil || err.Error() != want {
		t.Errorf("ParseConfig = %v; want %q", err, want)
	}
}

// TestParseRecordingsConfig: record_input and the recordings section of
// agent.yaml reach the recorder's Config, and its errors name their line
// in the whole file (agentrecord's TestRecordConfigErrors tries the
// section's values).
func TestParseRecordingsConfig(t *testing.T) {
	for _, tt := range []struct{ yaml, want string }{
		{"recordings:\n  max_session: lots\n", `line 2: "lots" is not a size`},
		{"recordings:\n  keep: forever\n", `line 2: "forever" is not a length of time`},
		{"recordings:\n  keep: 20000w\n", `line 2: "20000w" is not a length of time`},
		{"recordings:\n  max_session: 100\n", "too small"},
		{"recordings:\n  max_total: 10MiB\n", "must leave room for one whole session"},
		{"recordings:\n  max_sesion: 1MiB\n", `line 2: unknown key "max_sesion"`},
	} {
		if _, err := ParseConfig([]byte(tt.yaml)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseConfig(%q) = %v; want %q", tt.yaml, err, tt.want)
		}
	}
	cfg, err := ParseConfig([]byte("record_input: true\nrecordings:\n  max_session: 1.5MiB\n  max_events: 512KiB\n  max_total: 1GB\n  keep: 2w\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := agentrecord.Config{MaxSession: 3 << 19, MaxEvents: 512 << 10, MaxTotal: 1e9, Keep: agentrecord.Age(14 * 24 * time.Hour)}
	if !cfg.RecordInput || cfg.Recordings != want {
		t.Errorf("parsed %+v; want record_input and %+v", cfg, want)
	}
}
