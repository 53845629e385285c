package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is portholed's configuration, read from YAML by LoadConfig. The
// zero value of every field has a working default, applied by Validate.
type Config struct {
	// DataDir holds the keys made by `portholed init` and, for SQLite, the
	// database. Required.
	DataDir string `yaml:"data_dir"`
	// Listen is the API's HTTPS address. Empty: ":8443".
	Listen string `yaml:"listen"`
	// PublicURL is how engineers and devices reach the API. Empty:
	// https://<hostname>:<listen port>.
	PublicURL string `yaml:"public_url"`
	// Database is "sqlite" (a file in DataDir), "sqlite:PATH", or a
	// postgres:// URL. Empty: "sqlite".
	Database string `yaml:"database"`
	// TLS names the operator's certificate. Empty: the self-signed one that
	// `portholed init` made in DataDir.
	TLS TLSConfig `yaml:"tls"`
	// Broker is the control channel devices idle on.
	Broker BrokerConfig `yaml:"broker"`
	// Relay is where devices and engineers meet.
	Relay RelayConfig `yaml:"relay"`
	// TokenTTL is how long a login lasts. Zero: 12 h.
	TokenTTL time.Duration `yaml:"token_ttl"`
	// Log sets the server log.
	Log LogConfig `yaml:"log"`
}

// TLSConfig names a certificate and key in PEM files.
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// BrokerConfig describes the MQTT broker devices connect to.
type BrokerConfig struct {
	// Listen is the embedded broker's address: MQTT over TLS, with the
	// API's certificate. Empty: ":8883".
	Listen string `yaml:"listen"`
	// PublicURL is told to devices at enrollment. Empty:
	// mqtts://<public host>:<listen port>.
	PublicURL string `yaml:"public_url"`
}

// RelayConfig describes the SSH relay.
type RelayConfig struct {
	// PublicAddr (host:port) is told to devices at enrollment. Empty:
	// <public host>:443.
	PublicAddr string `yaml:"public_addr"`
}

// LogConfig sets the log's level ("debug", "info", "warn", "error"; empty:
// info) and format ("text" or "json"; empty: text).
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// LoadConfig reads a YAML config file. Unknown keys are errors that name the
// key and its line, so a typo never silently falls back to a default.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if cfg.DataDir != "" && !filepath.IsAbs(cfg.DataDir) {
		// Relative paths are relative to the config file, not to wherever
		// the service manager started us.
		cfg.DataDir = filepath.Join(filepath.Dir(path), cfg.DataDir)
	}
	return cfg, nil
}

var yamlUnknownField = regexp.MustCompile(`line (\d+): field (\S+) not found in type \S+`)

// ParseConfig decodes YAML into a Config and validates it.
func ParseConfig(data []byte) (*Config, error) {
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		// yaml.v3 says "line 3: field foo not found in type daemon.Config";
		// say it in the operator's terms.
		msg := yamlUnknownField.ReplaceAllString(err.Error(), `line $1: unknown key "$2"`)
		return nil, errors.New(strings.TrimPrefix(msg, "yaml: "))
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// Validate fills defaults and checks the values, before anything starts.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("data_dir is required (the directory `portholed init --data DIR` made)")
	}
	if c.Listen == "" {
		c.Listen = ":8443"
		// Behind no proxy, the public URL's port is the one to listen on.
		if u, err := url.Parse(c.PublicURL); err == nil && u.Port() != "" {
			c.Listen = ":" + u.Port()
		}
	}
	_, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("listen %q is not host:port: %w", c.Listen, err)
	}
	if c.PublicURL == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "localhost"
		}
		c.PublicURL = "https://" + net.JoinHostPort(host, port)
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("public_url %q must be an https:// URL like https://porthole.example.com:8443", c.PublicURL)
	}
	if c.Broker.Listen == "" {
		c.Broker.Listen = ":8883"
	}
	_, brokerPort, err := net.SplitHostPort(c.Broker.Listen)
	if err != nil {
		return fmt.Errorf("broker.listen %q is not host:port: %w", c.Broker.Listen, err)
	}
	if c.Broker.PublicURL == "" {
		c.Broker.PublicURL = "mqtts://" + net.JoinHostPort(u.Hostname(), brokerPort)
	}
	// The embedded broker speaks TLS only: a device's password must never
	// cross the network in the clear.
	if b, err := url.Parse(c.Broker.PublicURL); err != nil || b.Scheme != "mqtts" || b.Hostname() == "" || b.Port() == "" {
		return fmt.Errorf("broker.public_url %q must be an mqtts:// URL with a port, like mqtts://porthole.example.com:8883", c.Broker.PublicURL)
	}
	if c.Relay.PublicAddr == "" {
		c.Relay.PublicAddr = net.JoinHostPort(u.Hostname(), "443")
	}
	if _, _, err := net.SplitHostPort(c.Relay.PublicAddr); err != nil {
		return fmt.Errorf("relay.public_addr %q is not host:port: %w", c.Relay.PublicAddr, err)
	}
	if c.Database == "" {
		c.Database = "sqlite"
	}
	if !strings.HasPrefix(c.Database, "sqlite") && !strings.HasPrefix(c.Database, "postgres://") && !strings.HasPrefix(c.Database, "postgresql://") {
		return fmt.Errorf("database %q must be \"sqlite\", \"sqlite:PATH\" or a postgres:// URL", c.Database)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return errors.New("tls needs both cert_file and key_file, or neither (to use the self-signed certificate in data_dir)")
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = 12 * time.Hour
	}
	if c.TokenTTL < time.Minute {
		return fmt.Errorf("token_ttl %v is too short to be useful (at least 1m)", c.TokenTTL)
	}
	switch c.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level %q must be debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "", "text", "json":
	default:
		return fmt.Errorf("log.format %q must be text or json", c.Log.Format)
	}
	return nil
}
