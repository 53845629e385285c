package daemon

import (
	"os"
	"path/filepath"
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
				if c.Relay.PublicAddr != "porthole.example.com:443" {
					t.Errorf("Relay.PublicAddr = %q", c.Relay.PublicAddr)
				}
				if c.TokenTTL != 12*time.Hour {
					t.Errorf("TokenTTL = %v; want 12h", c.TokenTTL)
				}
			},
		},
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
		{name: "bad broker listen", yaml: "data_dir: /x\npublic_url: https://a:1\nbroker:\n  listen: 8883\n", wantErr: "broker.listen"},
		{name: "plain MQTT broker URL", yaml: "data_dir: /x\npublic_url: https://a:1\nbroker:\n  public_url: mqtt://a:1883\n", wantErr: "broker.public_url"},
		{name: "broker URL without port", yaml: "data_dir: /x\npublic_url: https://a:1\nbroker:\n  public_url: mqtts://a\n", wantErr: "broker.public_url"},
		{name: "bad log level", yaml: "data_dir: /x\npublic_url: https://a:1\nlog:\n  level: loud\n", wantErr: "log.level"},
		{name: "short token ttl", yaml: "data_dir: /x\npublic_url: https://a:1\ntoken_ttl: 10s\n", wantErr: "token_ttl"},
		{name: "not yaml", yaml: "data_dir: [\n", wantErr: "line"},
	}
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
	_, err = LoadConfig(filepath.Join(dir, "missing.yaml"))
	if err == nil {
		t.Error("LoadConfig of a missing file succeeded")
	}
}
