package daemon

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string // substring; empty: no error
		check   func(t *testing.T, c *Config)
	}{
		{
			name: "defaults",
			yaml: "data_dir: /var/lib/portholed\npublic_url: https://porthole.example.com:9443\n",
			check: func(t *testing.T, c *Config) {
				if c.Listen != ":9443" {
					t.Errorf("Listen = %q; want :9443 (the public URL's port)", c.Listen)
				}
				if c.Database != "sqlite" {
					t.Errorf("Database = %q; want sqlite", c.Database)
				}
				if c.Broker.Listen != ":8883" || c.Broker.PublicURL != "mqtts://porthole.example.com:8883" {
					t.Errorf("Broker.PublicURL = %q", c.Broker.PublicURL)
				}
				if c.Relay.Listen != ":2222" || c.Relay.PublicAddr != "porthole.example.com:2222" {
					t.Errorf("Relay = %+v; want :2222, public on the public host", c.Relay)
				}
				if c.TokenTTL != 12*time.Hour {
					t.Errorf("TokenTTL = %v; want 12h", c.TokenTTL)
				}
				if c.RecordingsDir != "/var/lib/portholed/recordings" || c.RecordingsMaxSession != 0 || c.RecordingsMaxFile != 0 {
					t.Errorf("recordings: %q, caps %d and %d; want data_dir/recordings, the API's defaults", c.RecordingsDir, c.RecordingsMaxSession, c.RecordingsMaxFile)
				}
			},
		},
		{
			name: "recordings",
			yaml: "data_dir: /x\npublic_url: https://a:1\nrecordings_dir: /srv/recordings\nrecordings_max_session: 1GiB\nrecordings_max_file: 512KiB\n",
			check: func(t *testing.T, c *Config) {
				if c.RecordingsDir != "/srv/recordings" || c.RecordingsMaxSession != 1<<30 || c.RecordingsMaxFile != 512<<10 {
					t.Errorf("recordings: %q, caps %d and %d", c.RecordingsDir, c.RecordingsMaxSession, c.RecordingsMaxFile)
				}
			},
		},
		{name: "bad recordings cap", yaml: "data_dir: /x\npublic_url: https://a:1\nrecordings_max_file: lots\n", wantErr: `line 3: "lots" is not a size`},
		{name: "negative recordings cap", yaml: "data_dir: /x\npublic_url: https://a:1\nrecordings_max_session: -5\n", wantErr: "not a size"},
		{
			name:    "unknown key names key and line",
			yaml:    "data_dir: /x\npublic_url: https://a:1\nlisten_addr: :80\n",
			wantErr: `line 3: unknown key "listen_addr"`,
		},
		{
			name:    "unknown nested key",
			yaml:    "data_dir: /x\npublic_url: https://a:1\ntls:\n  cert: a\n",
			wantErr: `line 4: unknown key "cert"`,
		},
		{
			name: "sso",
			yaml: "data_dir: /x\npublic_url: https://a:1\nsso:\n  issuer: https://login.example.com/realms/support\n  client_id: porthole\n" +
				"  client_secret_file: /etc/portholed/sso.secret\n  roles:\n    - {group: support-eu, fleet: acme, role: operator}\n  admins_group: admins\n",
			check: func(t *testing.T, c *Config) {
				if !c.SSO.Enabled() || c.SSO.GroupsClaim != "groups" || c.SSO.RefreshEvery != 5*time.Minute || len(c.SSO.Roles) != 1 || c.SSO.Roles[0].Role != "operator" {
					t.Errorf("SSO = %+v; want on, groups claim groups, refresh every 5m, one mapping", c.SSO)
				}
			},
		},
		{name: "sso bad role", yaml: "data_dir: /x\npublic_url: https://a:1\nsso:\n  issuer: https://l\n  client_id: p\n  client_secret: s\n  roles: [{group: g, fleet: acme, role: root}]\n",
			wantErr: `sso.roles[0] (group "g"): role "root" must be owner, operator or auditor`},
		{name: "sso unknown key", yaml: "data_dir: /x\npublic_url: https://a:1\nsso:\n  issuer_url: https://l\n", wantErr: `unknown key "issuer_url"`},
		{name: "sso without secret", yaml: "data_dir: /x\npublic_url: https://a:1\nsso:\n  issuer: https://l\n  client_id: p\n", wantErr: "sso.client_secret (or sso.client_secret_file) is required"},
		{name: "missing data dir", yaml: "listen: :8443\n", wantErr: "data_dir is required"},
		{name: "http public url", yaml: "data_dir: /x\npublic_url: http://a:1\n", wantErr: "must be an https:// URL"},
		{name: "half tls", yaml: "data_dir: /x\npublic_url: https://a:1\ntls:\n  cert_file: a\n", wantErr: "both cert_file and key_file"},
		{name: "bad database", yaml: "data_dir: /x\npublic_url: https://a:1\ndatabase: mysql://x\n", wantErr: "database"},
		{
			name: "broker listen sets the public port",
			yaml: "data_dir: /x\npublic_url: https://porthole.example.com\nbroker:\n  listen: 127.0.0.1:9883\n",
			check: func(t *testing.T, c *Config) {
				if c.Broker.Listen != "127.0.0.1:9883" || c.Broker.PublicURL != "mqtts://porthole.example.com:9883" {
					t.Errorf("Broker = %+v; want listen 127.0.0.1:9883, public URL on port 9883", c.Broker)
				}
			},
		},
		{
			name: "relay listen sets the public port; sessions' limits",
			yaml: "data_dir: /x\npublic_url: https://porthole.example.com\nrelay:\n  listen: :443\nsessions:\n  idle_timeout: 5m\n",
			check: func(t *testing.T, c *Config) {
				if c.Relay.PublicAddr != "porthole.example.com:443" || c.Sessions.IdleTimeout != 5*time.Minute {
					t.Errorf("Relay = %+v, Sessions = %+v", c.Relay, c.Sessions)
				}
			},
		},
		{
			name: "default roles",
			yaml: "data_dir: /x\npublic_url: https://a.example.com\n",
			check: func(t *testing.T, c *Config) {
				if got := c.ServedRoles(); !slices.Equal(got, []string{RoleAPI, RoleRelay, RoleBroker}) {
					t.Errorf("roles = %v; want api, relay and broker", got)
				}
				if c.Relay.Advertise != "a.example.com:443" || c.Relay.Region != "" {
					t.Errorf("relay advertised as %q in region %q; want the public URL's a.example.com:443", c.Relay.Advertise, c.Relay.Region)
				}
			},
		},
		{
			name: "relay node",
			yaml: "data_dir: /x\npublic_url: https://a:1\nroles: [relay]\nbroker: {url: mqtts://mqtt.example.com}\nrelay: {advertise: relay-2.example.com:443, region: eu}\n",
			check: func(t *testing.T, c *Config) {
				if !c.Has(RoleRelay) || c.Has(RoleAPI) || c.Has(RoleBroker) {
					t.Errorf("roles = %v; want relay only", c.ServedRoles())
				}
				if c.Relay.Advertise != "relay-2.example.com:443" || c.Relay.Region != "eu" {
					t.Errorf("relay = %+v", c.Relay)
				}
			},
		},
		{
			name: "external broker drops the broker role",
			yaml: "data_dir: /x\npublic_url: https://a:1\nbroker: {url: mqtts://mqtt.example.com}\n",
			check: func(t *testing.T, c *Config) {
				if got := c.ServedRoles(); !slices.Equal(got, []string{RoleAPI, RoleRelay}) {
					t.Errorf("roles = %v; want api and relay", got)
				}
			},
		},
		{
			name: "broker node",
			yaml: "data_dir: /x\npublic_url: https://a:1\nroles: [api, relay]\nbroker: {node: mqtts://broker-1.internal:8883}\n",
			check: func(t *testing.T, c *Config) {
				if !c.Broker.External() || c.Has(RoleBroker) || c.Broker.PublicURL != "mqtts://broker-1.internal:8883" || c.Broker.ShareGroup != "portholed" {
					t.Errorf("broker = %+v, roles %v", c.Broker, c.ServedRoles())
				}
			},
		},
		{name: "broker node and url", yaml: "data_dir: /x\npublic_url: https://a:1\nroles: [api]\nbroker: {node: mqtts://b:8883, url: mqtts://m:8883}\n", wantErr: "broker.url does not go with broker.node"},
		{name: "broker node in the clear", yaml: "data_dir: /x\npublic_url: https://a:1\nroles: [api]\nbroker: {node: mqtt://b:1883}\n", wantErr: "must be mqtts://"},
		{name: "broker node with a login", yaml: "data_dir: /x\npublic_url: https://a:1\nroles: [api]\nbroker: {node: mqtts://b:8883, username: x}\n", wantErr: "broker.username does not go with broker.node"},
		{name: "unknown role", yaml: "data_dir: /x\npublic_url: https://a:1\nroles: [api, web]\n", wantErr: `roles: "web" is not a role`},
		{name: "role twice", yaml: "data_dir: /x\npublic_url: https://a:1\nroles: [api, broker, api]\n", wantErr: `"api" is listed twice`},
		{name: "broker alone", yaml: "data_dir: /x\npublic_url: https://a:1\nroles: [broker]\n", wantErr: "a node serves api, relay or both"},
		{name: "broker role and url", yaml: "data_dir: /x\npublic_url: https://a:1\nroles: [api, broker]\nbroker: {url: mqtts://m.example.com}\n", wantErr: "drop one of them"},
		{name: "no broker at all", yaml: "data_dir: /x\npublic_url: https://a:1\nroles: [api, relay]\n", wantErr: "needs broker.url"},
		{name: "bad advertise", yaml: "data_dir: /x\npublic_url: https://a:1\nrelay: {advertise: relay-2}\n", wantErr: "relay.advertise"},
		{name: "bad relay listen", yaml: "data_dir: /x\npublic_url: https://a:1\nrelay:\n  listen: 2222\n", wantErr: "relay.listen"},
		{name: "negative session limit", yaml: "data_dir: /x\npublic_url: https://a:1\nsessions:\n  max_duration: -1h\n", wantErr: "cannot be negative"},
		{name: "bad broker listen", yaml: "data_dir: /x\npublic_url: https://a:1\nbroker:\n  listen: 8883\n", wantErr: "broker.listen"},
		{name: "plain MQTT broker URL", yaml: "data_dir: /x\npublic_url: https://a:1\nbroker:\n  public_url: mqtt://a:1883\n", wantErr: "broker.public_url"},
		{name: "broker URL without port", yaml: "data_dir: /x\npublic_url: https://a:1\nbroker:\n  public_url: mqtts://a\n", wantErr: "broker.public_url"},
		{name: "bad log level", yaml: "data_dir: /x\npublic_url: https://a:1\nlog:\n  level: loud\n", wantErr: "log.level"},
		{name: "short token ttl", yaml: "data_dir: /x\npublic_url: https://a:1\ntoken_ttl: 10s\n", wantErr: "token_ttl"},
		{name: "short console idle", yaml: "data_dir: /x\npublic_url: https://a:1\nconsole_idle_timeout: 10s\n", wantErr: "console_idle_timeout"},
		{name: "not yaml", yaml: "data_dir: [\n", wantErr: "line"},
	}
	tests = append(tests, externalBrokerConfigTests...)
	tests = append(tests, recordingsS3ConfigTests...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tt.yaml))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseConfig error = %v; want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestLoadConfigRelativeDataDir(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "portholed.yaml")
	if err := os.WriteFile(path, []byte("data_dir: .\npublic_url: https://a:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != dir {
		t.Errorf("DataDir = %q; want %q (relative to the config file)", c.DataDir, dir)
	}
	if want := filepath.Join(dir, "recordings"); c.RecordingsDir != want {
		t.Errorf("RecordingsDir = %q; want %q (in data_dir)", c.RecordingsDir, want)
	}
	if err := os.WriteFile(path, []byte("data_dir: .\npublic_url: https://a:1\nrecordings_dir: rec\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err = LoadConfig(path); err != nil || c.RecordingsDir != filepath.Join(dir, "rec") {
		t.Errorf("a relative recordings_dir: %v, %v; want it relative to the config file", c, err)
	}
	_, err = LoadConfig(filepath.Join(dir, "missing.yaml"))
	if err == nil {
		t.Error("LoadConfig of a missing file succeeded")
	}
}

// base is a valid config without a broker section.
const base = "data_dir: /x\npublic_url: https://porthole.example.com:8443\n"

// externalBrokerConfigTests cover broker.url and the keys that go with it:
// each one's effect, and each mistake, named by its key.
var externalBrokerConfigTests = []struct {
	name    string
	yaml    string
	wantErr string
	check   func(t *testing.T, c *Config)
}{
	{
		name: "external broker defaults",
		yaml: base + "broker:\n  url: mqtts://broker.example.com\n  username: portholed\n  password: s3cret\n",
		check: func(t *testing.T, c *Config) {
			b := c.Broker
			if !b.External() || b.URL != "mqtts://broker.example.com" || b.Username != "portholed" || b.Password != "s3cret" {
				t.Errorf("Broker = %+v", b)
			}
			if b.Listen != "" {
				t.Errorf("Broker.Listen = %q; want empty: no embedded broker", b.Listen)
			}
			if b.PublicURL != b.URL {
				t.Errorf("Broker.PublicURL = %q; want the url, %q", b.PublicURL, b.URL)
			}
			if b.ShareGroup != "portholed" {
				t.Errorf("Broker.ShareGroup = %q; want portholed", b.ShareGroup)
			}
		},
	},
	{
		name: "external broker, every key",
		yaml: base + `broker:
  url: mqtts://10.0.0.5:8884
  public_url: mqtts://broker.example.com:8883
  username: portholed
  password_file: /etc/porthole/broker.pw
  ca_file: /etc/porthole/broker-ca.pem
  cert_file: /etc/porthole/node.crt
  key_file: /etc/porthole/node.key
  share_group: porthole-eu
`,
		check: func(t *testing.T, c *Config) {
			want := BrokerConfig{
				URL: "mqtts://10.0.0.5:8884", PublicURL: "mqtts://broker.example.com:8883",
				Username: "portholed", PasswordFile: "/etc/porthole/broker.pw",
				CAFile: "/etc/porthole/broker-ca.pem", CertFile: "/etc/porthole/node.crt", KeyFile: "/etc/porthole/node.key",
				ShareGroup: "porthole-eu",
			}
			if c.Broker != want {
				t.Errorf("Broker = %+v; want %+v", c.Broker, want)
			}
		},
	},
	{
		name: "plain MQTT external broker, devices told another URL",
		yaml: base + "broker:\n  url: mqtt://127.0.0.1:1884\n  public_url: mqtt://broker.example.com:1883\n",
		check: func(t *testing.T, c *Config) {
			if c.Broker.URL != "mqtt://127.0.0.1:1884" || c.Broker.PublicURL != "mqtt://broker.example.com:1883" || c.Broker.Username != "" {
				t.Errorf("Broker = %+v", c.Broker)
			}
		},
	},
	{name: "url with listen", yaml: base + "broker:\n  url: mqtts://b:8883\n  listen: :8883\n", wantErr: "broker.listen and broker.url cannot both be set"},
	{name: "url of another scheme", yaml: base + "broker:\n  url: https://b:8883\n", wantErr: `broker.url "https://b:8883" must start with mqtts://`},
	{name: "url without host", yaml: base + "broker:\n  url: mqtts://:8883\n", wantErr: "broker.url \"mqtts://:8883\" names no host"},
	{name: "url with credentials", yaml: base + "broker:\n  url: mqtts://u:pw@b:8883\n", wantErr: "broker.url \"mqtts://u:xxxxx@b:8883\" holds a user name"},
	{name: "url with path", yaml: base + "broker:\n  url: mqtts://b:8883/mqtt\n", wantErr: "broker.url \"mqtts://b:8883/mqtt\" has a path"},
	{name: "url with bad port", yaml: base + "broker:\n  url: mqtts://b:70000\n", wantErr: "broker.url \"mqtts://b:70000\" has a bad port"},
	{name: "url not a URL", yaml: base + "broker:\n  url: \"mqtts://b:x y\"\n", wantErr: "broker.url"},
	{name: "external public url of another scheme", yaml: base + "broker:\n  url: mqtts://b\n  public_url: wss://b/mqtt\n", wantErr: "broker.public_url"},
	{name: "password and password file", yaml: base + "broker:\n  url: mqtts://b\n  username: u\n  password: p\n  password_file: /f\n", wantErr: "broker.password and broker.password_file cannot both be set"},
	{name: "password without username", yaml: base + "broker:\n  url: mqtts://b\n  password: p\n", wantErr: "broker.password needs broker.username"},
	{name: "password file without username", yaml: base + "broker:\n  url: mqtts://b\n  password_file: /f\n", wantErr: "broker.password needs broker.username"},
	{name: "cert without key", yaml: base + "broker:\n  url: mqtts://b\n  cert_file: /c\n", wantErr: "broker.cert_file needs broker.key_file"},
	{name: "key without cert", yaml: base + "broker:\n  url: mqtts://b\n  key_file: /k\n", wantErr: "broker.key_file needs broker.cert_file"},
	{name: "ca file without TLS", yaml: base + "broker:\n  url: mqtt://b\n  ca_file: /ca\n", wantErr: "broker.ca_file needs TLS"},
	{name: "client certificate without TLS", yaml: base + "broker:\n  url: mqtt://b\n  cert_file: /c\n  key_file: /k\n", wantErr: "broker.cert_file needs TLS"},
	{name: "bad share group", yaml: base + "broker:\n  url: mqtts://b\n  share_group: Porthole/EU\n", wantErr: `broker.share_group "Porthole/EU"`},
	{name: "share group wildcard", yaml: base + "broker:\n  url: mqtts://b\n  share_group: \"#\"\n", wantErr: "broker.share_group"},
	{name: "username without url", yaml: base + "broker:\n  username: u\n", wantErr: "broker.username applies to an external broker only: set broker.url too"},
	{name: "password without url", yaml: base + "broker:\n  password: p\n", wantErr: "broker.password applies to an external broker only"},
	{name: "password file without url", yaml: base + "broker:\n  password_file: /f\n", wantErr: "broker.password_file applies to an external broker only"},
	{name: "ca file without url", yaml: base + "broker:\n  ca_file: /ca\n", wantErr: "broker.ca_file applies to an external broker only"},
	{name: "cert file without url", yaml: base + "broker:\n  cert_file: /c\n  key_file: /k\n", wantErr: "broker.cert_file applies to an external broker only"},
	{name: "key file without url", yaml: base + "broker:\n  key_file: /k\n", wantErr: "broker.key_file applies to an external broker only"},
	{name: "share group without url", yaml: base + "broker:\n  share_group: g\n", wantErr: "broker.share_group applies to an external broker only"},
	{name: "unknown broker key", yaml: base + "broker:\n  url: mqtts://b\n  client_cert: /c\n", wantErr: `line 5: unknown key "client_cert"`},
}

// TestLoadConfigRelativeBrokerFiles: the external broker's files, like the
// TLS ones, are relative to the config file.
func TestLoadConfigRelativeBrokerFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "portholed.yaml")
	text := `data_dir: /var/lib/portholed
public_url: https://a:1
tls:
  cert_file: tls.crt
  key_file: /etc/tls.key
broker:
  url: mqtts://b
  username: portholed
  password_file: secrets/broker.pw
  ca_file: ca.pem
  cert_file: node.crt
  key_file: node.key
`
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ key, got, want string }{
		{"data_dir", c.DataDir, "/var/lib/portholed"},
		{"tls.cert_file", c.TLS.CertFile, filepath.Join(dir, "tls.crt")},
		{"tls.key_file", c.TLS.KeyFile, "/etc/tls.key"},
		{"broker.password_file", c.Broker.PasswordFile, filepath.Join(dir, "secrets/broker.pw")},
		{"broker.ca_file", c.Broker.CAFile, filepath.Join(dir, "ca.pem")},
		{"broker.cert_file", c.Broker.CertFile, filepath.Join(dir, "node.crt")},
		{"broker.key_file", c.Broker.KeyFile, filepath.Join(dir, "node.key")},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %q; want %q", tt.key, tt.got, tt.want)
		}
	}
}

// TestLoadExternalBroker: the files an external broker's config names are
// read when the server opens, and each mistake names its key.
func TestLoadExternalBroker(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certPEM, keyPEM := selfSigned(t)
	_, otherKeyPEM := selfSigned(t)
	cert, key, otherKey := write("node.crt", certPEM), write("node.key", keyPEM), write("other.key", otherKeyPEM)
	pw := write("pw", "s3cret\n")
	tests := []struct {
		name    string
		b       BrokerConfig
		wantErr string
	}{
		{name: "password file", b: BrokerConfig{URL: "mqtt://b", Username: "portholed", PasswordFile: pw}},
		{name: "TLS with a CA and a client certificate", b: BrokerConfig{URL: "mqtts://broker.example.com", CAFile: cert, CertFile: cert, KeyFile: key}},
		{name: "missing password file", b: BrokerConfig{URL: "mqtt://b", Username: "u", PasswordFile: filepath.Join(dir, "nope")}, wantErr: "reading broker.password_file"},
		{name: "empty password file", b: BrokerConfig{URL: "mqtt://b", Username: "u", PasswordFile: write("empty", "\n")}, wantErr: "broker.password_file " + filepath.Join(dir, "empty") + " is empty"},
		{name: "missing CA file", b: BrokerConfig{URL: "mqtts://b", CAFile: filepath.Join(dir, "nope")}, wantErr: "reading the broker's CA file"},
		{name: "CA file without PEM", b: BrokerConfig{URL: "mqtts://b", CAFile: pw}, wantErr: "the broker's CA file " + pw + " holds no PEM certificate"},
		{name: "key of another certificate", b: BrokerConfig{URL: "mqtts://b", CertFile: cert, KeyFile: otherKey}, wantErr: "loading the client certificate " + cert + " and key " + otherKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := newBrokerClient(tt.b, nil, discardLogger())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("newBrokerClient error = %v; want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("newBrokerClient: %v", err)
			}
			c.Close()
		})
	}
	// The password file's line ends are not part of the password.
	if got, err := brokerPassword(BrokerConfig{PasswordFile: pw}); got != "s3cret" || err != nil {
		t.Errorf("brokerPassword = %q, %v; want s3cret", got, err)
	}
}

// selfSigned makes a certificate and its key, in PEM.
func selfSigned(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
}

// recordingsS3ConfigTests: recordings in object storage, and each mistake
// in saying where, naming its key.
var recordingsS3ConfigTests = func() []struct {
	name    string
	yaml    string
	wantErr string
	check   func(t *testing.T, c *Config)
} {
	const base = "data_dir: /x\npublic_url: https://a:1\n"
	return []struct {
		name    string
		yaml    string
		wantErr string
		check   func(t *testing.T, c *Config)
	}{
		{
			name: "recordings in S3",
			yaml: base + "recordings: s3://porthole-rec/prod\nrecordings_s3:\n  endpoint: https://minio.example.com:9000\n  region: eu-west-1\n" +
				"  access_key_id: portholed\n  secret_access_key_file: /etc/portholed/s3.secret\n  ca_file: /etc/portholed/minio-ca.pem\n",
			check: func(t *testing.T, c *Config) {
				want := RecordingsS3Config{Endpoint: "https://minio.example.com:9000", Region: "eu-west-1", AccessKeyID: "portholed",
					SecretAccessKeyFile: "/etc/portholed/s3.secret", CAFile: "/etc/portholed/minio-ca.pem"}
				if c.Recordings != "s3://porthole-rec/prod" || c.RecordingsS3 != want || c.RecordingsDir != "" {
					t.Errorf("recordings %q, %+v, recordings_dir %q; want the bucket, as written, and no directory", c.Recordings, c.RecordingsS3, c.RecordingsDir)
				}
			},
		},
		{name: "S3 on AWS, credentials from the environment", yaml: base + "recordings: s3://porthole-rec\n", check: func(t *testing.T, c *Config) {}},
		{name: "recordings both in S3 and on disk", yaml: base + "recordings: s3://b-1/x\nrecordings_dir: /srv/rec\n", wantErr: "recordings and recordings_dir cannot both be set"},
		{name: "recordings_s3 without recordings", yaml: base + "recordings_s3:\n  endpoint: http://minio:9000\n", wantErr: "recordings_s3 applies to recordings kept in object storage only"},
		{name: "recordings not s3://", yaml: base + "recordings: /srv/rec\n", wantErr: `recordings: s3store: "/srv/rec" does not start with s3://`},
		{name: "a bad bucket", yaml: base + "recordings: s3://x\n", wantErr: "names no valid bucket"},
		{name: "an endpoint with a path", yaml: base + "recordings: s3://b-1\nrecordings_s3:\n  endpoint: https://minio:9000/b-1\n", wantErr: "recordings_s3.endpoint"},
		{name: "an endpoint without scheme", yaml: base + "recordings: s3://b-1\nrecordings_s3:\n  endpoint: minio:9000\n", wantErr: "recordings_s3.endpoint"},
		{name: "a CA over http", yaml: base + "recordings: s3://b-1\nrecordings_s3:\n  endpoint: http://minio:9000\n  ca_file: /ca\n", wantErr: "recordings_s3.ca_file needs TLS"},
		{name: "secret twice", yaml: base + "recordings: s3://b-1\nrecordings_s3:\n  access_key_id: k\n  secret_access_key: s\n  secret_access_key_file: /f\n", wantErr: "cannot both be set"},
		{name: "secret without key", yaml: base + "recordings: s3://b-1\nrecordings_s3:\n  secret_access_key: s\n", wantErr: "needs recordings_s3.access_key_id"},
		{name: "unknown recordings_s3 key", yaml: base + "recordings: s3://b-1\nrecordings_s3:\n  secret_key: s\n", wantErr: `line 5: unknown key "secret_key"`},
		{name: "recordings in S3 with the AWS role", yaml: base + "recordings: s3://b-1/x\nrecordings_s3:\n  region: eu-west-1\n  aws_role: true\n",
			check: func(t *testing.T, c *Config) {
				if want := (RecordingsS3Config{Region: "eu-west-1", AWSRole: true}); c.RecordingsS3 != want {
					t.Errorf("recordings_s3 %+v; want %+v", c.RecordingsS3, want)
				}
			}},
		{name: "the AWS role and a key", yaml: base + "recordings: s3://b-1\nrecordings_s3:\n  aws_role: true\n  access_key_id: k\n", wantErr: "remove recordings_s3.access_key_id and its secret, or aws_role"},
	}
}()

// TestRecordingsS3Env: what recordings_s3 leaves out of the credentials
// comes from the environment's AWS_ variables; what it says stays.
func TestRecordingsS3Env(t *testing.T) {
	env := map[string]string{"AWS_ACCESS_KEY_ID": "env-key", "AWS_SECRET_ACCESS_KEY": "env-secret", "AWS_SESSION_TOKEN": "env-token"}
	for _, tt := range []struct {
		name       string
		recordings string
		in, want   RecordingsS3Config
	}{
		{"all from the environment", "s3://b-1", RecordingsS3Config{},
			RecordingsS3Config{AccessKeyID: "env-key", SecretAccessKey: "env-secret", sessionToken: "env-token"}},
		{"the key in the config, its secret from the environment", "s3://b-1", RecordingsS3Config{AccessKeyID: "cfg-key"},
			RecordingsS3Config{AccessKeyID: "cfg-key", SecretAccessKey: "env-secret"}},
		{"all in the config", "s3://b-1", RecordingsS3Config{AccessKeyID: "cfg-key", SecretAccessKey: "cfg-secret"},
			RecordingsS3Config{AccessKeyID: "cfg-key", SecretAccessKey: "cfg-secret"}},
		{"the secret in a file", "s3://b-1", RecordingsS3Config{AccessKeyID: "cfg-key", SecretAccessKeyFile: "/f"},
			RecordingsS3Config{AccessKeyID: "cfg-key", SecretAccessKeyFile: "/f"}},
		{"recordings on disk", "", RecordingsS3Config{}, RecordingsS3Config{}},
		{"the AWS role: the environment's keys are not used", "s3://b-1", RecordingsS3Config{AWSRole: true}, RecordingsS3Config{AWSRole: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &Config{Recordings: tt.recordings, RecordingsS3: tt.in}
			c.ApplyEnv(func(k string) string { return env[k] })
			if c.RecordingsS3 != tt.want {
				t.Errorf("after ApplyEnv: %+v; want %+v", c.RecordingsS3, tt.want)
			}
		})
	}
}

// TestLoadConfigRelativeRecordingsFiles: the object storage's files are
// relative to the config file.
func TestLoadConfigRelativeRecordingsFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "portholed.yaml")
	text := "data_dir: /x\npublic_url: https://a:1\nrecordings: s3://b-1\nrecordings_s3:\n  access_key_id: k\n" +
		"  secret_access_key_file: s3.secret\n  endpoint: https://minio:9000\n  ca_file: ca.pem\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.RecordingsS3.SecretAccessKeyFile != filepath.Join(dir, "s3.secret") || c.RecordingsS3.CAFile != filepath.Join(dir, "ca.pem") {
		t.Errorf("recordings_s3 = %+v; want its files in %s", c.RecordingsS3, dir)
	}
}
