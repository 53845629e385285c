package agent

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/porthole/porthole/agent/agentconsent"
	"github.com/porthole/porthole/agent/agentowner"
	"github.com/porthole/porthole/agent/agentrecord"
	"github.com/porthole/porthole/agent/agentstate"
	"github.com/porthole/porthole/proxydial"
	"github.com/porthole/porthole/tcprto"
	"github.com/porthole/porthole/yamlconf"
)

// DefaultConfigFile is where the device owner's configuration lives. A
// missing default file means the defaults; see LoadConfig.
const DefaultConfigFile = "/etc/porthole/agent.yaml"

// Config is the device owner's configuration of the agent, read from YAML
// by ParseConfig or LoadConfig. The zero value is a working configuration:
// the device uses the broker it learned at enrollment.
//
// It holds only the keys the agent acts on: any other key is an error
// rather than a setting silently ignored.
type Config struct {
	// Broker overrides how the device reaches its MQTT broker.
	Broker BrokerConfig `yaml:"broker"`
	// Proxy is the HTTP CONNECT proxy through which the device reaches
	// its server (API calls, recordings, the MQTT broker and the relay):
	// a URL, http://[USER:PASSWORD@]HOST:PORT (or https://), used
	// whatever HTTPS_PROXY says; "direct" (or "none") for no proxy at all,
	// whatever the environment says; empty: the environment's
	// HTTPS_PROXY (https_proxy), as curl and Go programs use it. Either
	// way the hosts NO_PROXY lists, localhost and loopback addresses are
	// reached directly. Inside the tunnel, TLS runs end to end with the
	// server and its pinned certificate: a proxy that inspects TLS is
	// refused. A config file with a password here must not be readable
	// by other users.
	Proxy string `yaml:"proxy"`
	// LogLevel is the least severe level logged to standard error: debug,
	// info, warn or error. Empty: info.
	LogLevel string `yaml:"log_level"`

	// Consent is how the owner lets engineers in: the keys consent
	// (manual, approve or auto; empty: manual) and approval_timeout,
	// inline at the top level of the file (see agentconsent.Config). Only
	// this file sets them: nothing the server sends can change them.
	Consent agentconsent.Config `yaml:",inline"`
	// Owner is where the running agent takes the owner's commands: the
	// keys socket, socket_group and local_ui, inline at the top level of
	// the file (see agentowner.Config).
	Owner agentowner.Config `yaml:",inline"`

	// AllowPorts are the local ports (on 127.0.0.1) an engineer may forward
	// to through a session. Empty: none; the shell, commands and file
	// copies need no port.
	AllowPorts []int `yaml:"allow_ports"`
	// RunAs is the user that engineers' shells, commands and file copies
	// run as. Empty: the user the agent runs as.
	RunAs string `yaml:"run_as"`
	// IdleTimeout ends a session with no engineer input for this long, and
	// MaxDuration one open this long, whatever the server allows: the
	// device may shorten the server's limits, never lengthen them. Zero:
	// 15 min and 2 h.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	MaxDuration time.Duration `yaml:"max_duration"`

	// RecordInput also records what engineers type (asciicast "i"
	// events), passwords included; their terminal's echo is recorded
	// either way. Off by default.
	RecordInput bool `yaml:"record_input"`
	// Recordings bounds what session recordings take on disk.
	Recordings agentrecord.Config `yaml:"recordings"`
}

// Defaults of the session limits.
const (
	DefaultIdleTimeout = 15 * time.Minute
	DefaultMaxDuration = 2 * time.Hour
)

// idleTimeout and maxDuration are the limits with their defaults.
func (c *Config) idleTimeout() time.Duration { return orDuration(c.IdleTimeout, DefaultIdleTimeout) }
func (c *Config) maxDuration() time.Duration { return orDuration(c.MaxDuration, DefaultMaxDuration) }

func orDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// BrokerConfig points the device at an external MQTT broker (Mosquitto,
// EMQX, AWS IoT Core, ...) instead of the server's own. Empty: the broker
// URL from enrollment, its certificate pinned to the one the server showed
// at enrollment, and a password the device signs with its own key.
type BrokerConfig struct {
	// URL is mqtts://host[:port] (port 8883 if omitted) or mqtt://host[:port]
	// (1883; unencrypted). With a URL other than the enrollment's, the
	// broker's certificate is checked against the system's roots or CAFile,
	// not against the enrollment's pin.
	URL string `yaml:"url"`
	// Username is the MQTT user name. Empty: "<fleet>/<device>", which is
	// also the client id whatever this says.
	Username string `yaml:"username"`
	// Password, when set, is sent instead of the password the device signs
	// with its own key. Without it an external broker gets that signed
	// password, which is good for minutes and only as this device's MQTT
	// login. A config file holding a password must not be readable by other
	// users.
	Password string `yaml:"password"`
	// CAFile is a PEM file of the authorities that sign the external
	// broker's certificate. Empty: the system's roots. Needs URL.
	CAFile string `yaml:"ca_file"`
	// ClientCert and ClientKey are a PEM certificate and its private key
	// (mode 0600) for brokers that authenticate devices by client
	// certificate, such as AWS IoT Core; the device's own password is then
	// not sent. Both or neither; they need an mqtts:// URL.
	ClientCert string `yaml:"client_cert"`
	ClientKey  string `yaml:"client_key"`
}

// external reports whether the config names a broker of its own rather than
// the one learned at enrollment.
func (b BrokerConfig) external() bool { return b.URL != "" }

// LoadConfig reads and validates the config file at path. A missing file is
// an error matching os.ErrNotExist, so that a caller may treat a missing
// default file as the defaults. The file must not be writable by other
// users (they could point the device elsewhere), nor readable by them if it
// holds a broker password.
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the config: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading the config: %w", err)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("config %s can be changed by other users (mode %v); run: chmod go-w %s", path, fi.Mode().Perm(), path)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("reading the config %s: %w", path, err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if cfg.Broker.Password != "" && fi.Mode().Perm()&0o004 != 0 {
		return nil, fmt.Errorf("config %s holds broker.password but every user can read it (mode %v); run: chmod o-r %s", path, fi.Mode().Perm(), path)
	}
	if cfg.proxyPassword() && fi.Mode().Perm()&0o004 != 0 {
		return nil, fmt.Errorf("config %s holds the proxy's password but every user can read it (mode %v); run: chmod o-r %s", path, fi.Mode().Perm(), path)
	}
	return cfg, nil
}

// ParseConfig decodes YAML into a Config and validates it. Unknown keys are
// errors naming the key and its line, so a typo never silently falls back
// to a default.
func ParseConfig(data []byte) (*Config, error) {
	var cfg Config
	if err := yamlconf.Decode(data, &cfg); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// Validate checks the values before anything starts. It reads no files:
// Run loads the certificates named here before it connects.
func (c *Config) Validate() error {
	if _, err := c.logLevel(); err != nil {
		return err
	}
	if err := c.Consent.Validate(); err != nil {
		return err
	}
	if err := c.Owner.Validate(); err != nil {
		return err
	}
	for _, p := range c.AllowPorts {
		if p < 1 || p > 65535 {
			return fmt.Errorf("allow_ports: %d is not a port (1-65535)", p)
		}
	}
	if c.IdleTimeout < 0 || c.MaxDuration < 0 {
		return errors.New("idle_timeout and max_duration cannot be negative")
	}
	if err := c.Recordings.Validate(); err != nil {
		return err
	}
	if _, err := proxydial.ParseSetting(c.Proxy, nil); err != nil {
		return fmt.Errorf("proxy: %w; or write direct for none, or leave it out for HTTPS_PROXY", err)
	}
	if c.RunAs != "" && !agentstate.ValidUserName(c.RunAs) {
		return fmt.Errorf("run_as %q is not a user name", c.RunAs)
	}
	b := c.Broker
	if b.URL != "" {
		if _, err := brokerURL(b.URL); err != nil {
			return fmt.Errorf("broker.url: %w", err)
		}
	}
	switch {
	case (b.ClientCert == "") != (b.ClientKey == ""):
		return errors.New("broker.client_cert and broker.client_key go together: give both, or neither")
	case (b.CAFile != "" || b.ClientCert != "") && !b.external():
		return errors.New("broker.ca_file, client_cert and client_key apply to an external broker: set broker.url too (the server's own broker is pinned at enrollment)")
	case b.ClientCert != "" && !strings.HasPrefix(b.URL, "mqtts://"):
		return errors.New("broker.client_cert needs an mqtts:// broker.url")
	}
	return nil
}

// NetDial is how the device reaches its server, by Proxy. The
// environment is read now. Its connections retransmit at least every
// tcprto.MaxRTO, so that they come back within seconds of a network
// outage.
func (c *Config) NetDial() proxydial.DialFunc {
	return (&proxydial.Dialer{Proxy: c.proxy(), Forward: tcprto.Dialer().DialContext}).DialContext
}

// proxy picks the proxy for a target by Proxy, which Validate has checked.
func (c *Config) proxy() proxydial.ProxyFunc {
	pick, err := proxydial.ParseSetting(c.Proxy, nil)
	if err != nil {
		return func(string) (*url.URL, error) { return nil, fmt.Errorf("proxy: %w", err) }
	}
	return pick
}

// proxyPassword reports whether Proxy holds a password.
func (c *Config) proxyPassword() bool {
	u, err := url.Parse(c.Proxy)
	if err != nil || u.User == nil {
		return false
	}
	_, ok := u.User.Password()
	return ok
}

// logLevel is LogLevel as a slog level.
func (c *Config) logLevel() (slog.Level, error) {
	switch c.LogLevel {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log_level %q must be debug, info, warn or error", c.LogLevel)
}

// Level is LogLevel as a slog level; Validate has checked it.
func (c *Config) Level() slog.Level {
	l, _ := c.logLevel()
	return l
}

// brokerURL parses an MQTT broker URL, mqtts:// or mqtt://, and adds the
// scheme's default port.
func brokerURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL: %w", s, err)
	}
	var port string
	switch u.Scheme {
	case "mqtts":
		port = "8883"
	case "mqtt":
		port = "1883"
	default:
		return nil, fmt.Errorf("%q must start with mqtts:// (or mqtt://, unencrypted), like mqtts://broker.example.com:8883", s)
	}
	switch {
	case u.Hostname() == "":
		return nil, fmt.Errorf("%q names no host", s)
	case u.User != nil:
		return nil, fmt.Errorf("%q holds a user name; put it in broker.username and broker.password instead", s)
	case u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("%q has a path, query or fragment; an MQTT broker URL is only scheme, host and port", s)
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	u.Path = ""
	return u, nil
}
