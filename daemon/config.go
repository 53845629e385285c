package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/porthole/porthole/api"
	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/sso"

	"go.yaml.in/yaml/v3"

	"github.com/porthole/porthole/brokerclient"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/recstore/s3store"
	"github.com/porthole/porthole/yamlconf"
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
	// https://<hostname>:<listen port>. Its host is also the relying
	// party of passkeys, which browsers allow on a host name only: one
	// naming an IP address leaves the console without passkeys (the
	// server logs why at start).
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
	// Sessions are the server's limits on engineers' sessions.
	Sessions SessionsConfig `yaml:"sessions"`
	// TokenTTL is how long a login lasts. Zero: 12 h.
	TokenTTL time.Duration `yaml:"token_ttl"`
	// ConsoleIdleTimeout ends a web console session its person has not
	// used for this long (the page's own background reads do not count).
	// Zero: 30 m.
	ConsoleIdleTimeout time.Duration `yaml:"console_idle_timeout"`
	// RecordingsDir keeps the recordings devices upload of their
	// sessions on this server's disk (made 0700 when missing). Empty:
	// <data_dir>/recordings, unless Recordings is set.
	RecordingsDir string `yaml:"recordings_dir"`
	// Recordings keeps them in S3-compatible object storage instead,
	// shared by every server node: s3://bucket or s3://bucket/prefix,
	// reached as RecordingsS3 says. Empty: RecordingsDir. The bucket must
	// exist, and its server honour conditional writes (AWS S3, MinIO,
	// Ceph, versitygw); portholed checks both when it starts.
	Recordings string `yaml:"recordings"`
	// RecordingsS3 says how to reach Recordings' bucket.
	RecordingsS3 RecordingsS3Config `yaml:"recordings_s3"`
	// RecordingsMaxSession and RecordingsMaxFile cap what the server
	// keeps of one session's recording and of one of its files, written
	// like 81MiB. Zero: the agent's default caps, with room for their
	// markers (81 MiB a session, 64.1 MiB a file).
	RecordingsMaxSession ByteSize `yaml:"recordings_max_session"`
	RecordingsMaxFile    ByteSize `yaml:"recordings_max_file"`
	// Log sets the server log.
	Log LogConfig `yaml:"log"`
	// SSO signs engineers in with the organization's OpenID Connect
	// provider (README: Single sign-on). Zero: off; local accounts only.
	SSO sso.Config `yaml:"sso"`
	// Roles are what this node serves, of RoleAPI, RoleRelay and
	// RoleBroker, so that an operator can run API nodes, relay nodes and
	// the embedded broker apart on one PostgreSQL database. The broker
	// role is the embedded MQTT broker: a node without it names the
	// external broker every node shares (broker.url) or the node that has
	// the broker role (broker.node), and one with it names neither.
	// Empty: api and relay, and broker unless broker.url or broker.node
	// is set.
	Roles []string `yaml:"roles,omitempty"`
	// roles are Roles, or the default ones, as Validate found them.
	roles []string
}

// Shared reports whether the database may be shared by several nodes
// (PostgreSQL); SQLite is one node's.
func (c *Config) Shared() bool { return !strings.HasPrefix(c.Database, "sqlite") }

// The roles of a node (Config.Roles).
const (
	RoleAPI    = "api"    // the HTTPS API and pages
	RoleRelay  = "relay"  // the relay, registered for sessions to be placed on
	RoleBroker = "broker" // the embedded MQTT broker
)

// Has reports whether the node serves role. Validate must have run.
func (c *Config) Has(role string) bool { return slices.Contains(c.roles, role) }

// ServedRoles are the roles the node serves (Roles, or the default).
// Validate must have run.
func (c *Config) ServedRoles() []string { return slices.Clone(c.roles) }

// validateRoles applies the default roles and checks them against the
// broker's config.
func (c *Config) validateRoles() error {
	c.roles = c.Roles
	if len(c.roles) == 0 {
		c.roles = []string{RoleAPI, RoleRelay}
		if !c.Broker.External() {
			c.roles = append(c.roles, RoleBroker)
		}
	}
	seen := map[string]bool{}
	for _, r := range c.roles {
		switch {
		case r != RoleAPI && r != RoleRelay && r != RoleBroker:
			return fmt.Errorf("roles: %q is not a role; the roles are api, relay and broker", r)
		case seen[r]:
			return fmt.Errorf("roles: %q is listed twice", r)
		}
		seen[r] = true
	}
	switch {
	case !seen[RoleAPI] && !seen[RoleRelay]:
		return errors.New("roles: a node serves api, relay or both (with broker alone it would serve devices no other node can reach)")
	case seen[RoleBroker] && c.Broker.External():
		return fmt.Errorf("roles: broker runs the embedded MQTT broker, but broker.url or broker.node names another (%s): drop one of them", c.Broker.URL+c.Broker.Node)
	case !seen[RoleBroker] && !c.Broker.External():
		return errors.New("roles: without the broker role the node needs broker.url, the external MQTT broker that every node shares, " +
			"or broker.node, the embedded broker of the node that has the broker role")
	}
	return nil
}

// RecordingsS3Config says how to reach the bucket of recordings kept in
// object storage (Config.Recordings).
type RecordingsS3Config struct {
	// Endpoint is the S3 server's URL: https://host[:port], or http://
	// on a private network (a MinIO of your own, say). Empty: AWS S3.
	Endpoint string `yaml:"endpoint"`
	// Region is the bucket's region. Empty: asked of the server.
	Region string `yaml:"region"`
	// AccessKeyID and SecretAccessKey sign the requests;
	// SecretAccessKeyFile is a file holding the secret instead (one
	// line), so the config need not hold it. Left out, they are taken
	// from portholed's environment: AWS_ACCESS_KEY_ID,
	// AWS_SECRET_ACCESS_KEY (also when only the key ID is in the config)
	// and AWS_SESSION_TOKEN, as the AWS tools take them (see ApplyEnv).
	AccessKeyID         string `yaml:"access_key_id"`
	SecretAccessKey     string `yaml:"secret_access_key"`
	SecretAccessKeyFile string `yaml:"secret_access_key_file"`
	// AWSRole signs the requests with the temporary credentials of the
	// AWS role portholed runs as, renewed before they expire: the EC2
	// instance profile (asked of the instance metadata service, IMDSv2),
	// an ECS task role, or an EKS pod's web identity, instead of a key
	// (which must then be left out; the environment's are ignored).
	AWSRole bool `yaml:"aws_role"`
	// CAFile is a PEM file of the authorities that sign the S3 server's
	// certificate. Empty: the system's roots. https:// only.
	CAFile string `yaml:"ca_file"`

	// sessionToken goes with temporary credentials from the
	// environment.
	sessionToken string
	// roleEndpoint is where AWSRole asks for credentials; tests set it.
	// Empty: the instance metadata service (s3store.Config).
	roleEndpoint string
}

// TLSConfig names a certificate and key in PEM files.
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// BrokerConfig describes the MQTT broker devices connect to: the embedded
// one (the default), or an external MQTT 5 broker named by URL (Mosquitto,
// EMQX, VerneMQ, HiveMQ, AWS IoT Core), shared by every server node. The
// keys from URL on apply to an external broker only.
type BrokerConfig struct {
	// Listen is the embedded broker's address: MQTT over TLS, with the
	// API's certificate. Empty: ":8883"; must stay empty with URL, since
	// portholed then runs no broker of its own.
	Listen string `yaml:"listen"`
	// PublicURL is told to devices at enrollment. Empty:
	// mqtts://<public host>:<listen port>, or URL with an external broker
	// (set it when devices reach the broker at another address than the
	// server nodes do, as in deploy/mosquitto).
	PublicURL string `yaml:"public_url"`

	// URL is an external broker's address for the server:
	// mqtts://host[:port] (port 8883 if omitted) or mqtt://host[:port]
	// (1883; unencrypted, for a private network). Empty: the embedded
	// broker.
	URL string `yaml:"url"`
	// Username and Password log in to the external broker; PasswordFile
	// is a file holding the password instead (one line), so the config
	// need not hold a secret. Empty Username: none is sent (a broker that
	// authenticates by client certificate needs none).
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	// CAFile is a PEM file of the authorities that sign the external
	// broker's certificate. Empty: the system's roots. mqtts:// only.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// a broker that authenticates clients by certificate (AWS IoT Core).
	// Both or neither; mqtts:// only.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ShareGroup is the MQTT 5 shared subscription group every server node
	// of one deployment joins, so that each state message is handled by
	// one node: 1 to 63 of a-z, 0-9 and '-'. Empty: "portholed" (which
	// deploy/mosquitto and deploy/aws-iot allow).
	ShareGroup string `yaml:"share_group"`

	// Node is the mqtts:// address of the embedded broker of another node
	// of this deployment, the one with the broker role, for a node
	// without it: this node logs in there as a server node, with the
	// node secret in data_dir (which every node of the deployment holds)
	// and that node's certificate pinned, so no credential is configured.
	// Exclusive with URL.
	Node string `yaml:"node"`

	// DynamicSecurity, with an external Mosquitto 2 whose devices are
	// clients of its dynamic security plugin, is a login portholed uses to
	// disable a deleted device's client there, which cuts its connection
	// and refuses its next logins (deploy/mosquitto). Nil: a deleted
	// device's login is left to the broker's administrator. broker.url only.
	DynamicSecurity *DynsecConfig `yaml:"dynamic_security"`
}

// DynsecConfig is the login to Mosquitto's dynamic security plugin.
type DynsecConfig struct {
	// URL is a listener of the broker where the plugin runs (the devices'
	// listener in deploy/mosquitto): mqtt:// or mqtts://, as broker.url.
	// Empty: broker.url. broker.ca_file applies to it.
	URL string `yaml:"url"`
	// Username and Password (or PasswordFile, a file holding it) are a
	// dynamic security client whose role may publish to
	// $CONTROL/dynamic-security/v1 and subscribe to and receive
	// $CONTROL/dynamic-security/v1/response. Username is required.
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
}

// External reports whether the config names a broker outside this node
// (URL, or another node's embedded broker), so that portholed runs no
// broker of its own.
func (b BrokerConfig) External() bool { return b.URL != "" || b.Node != "" }

// RelayConfig describes the SSH relay, where devices and engineers meet.
type RelayConfig struct {
	// Listen is the relay's address (SSH). Empty: ":2222"; 443 in
	// production gets through most firewalls.
	Listen string `yaml:"listen"`
	// PublicAddr (host:port) is told to devices in each session command
	// and to engineers with their session. Its host is the name the
	// relay's host certificate is signed for. Empty: <public host>:<listen
	// port>.
	PublicAddr string `yaml:"public_addr"`
	// Advertise (host:port) is where devices and engineers reach this
	// node's TLS port, which serves the relay's second protocol: with
	// several relay nodes behind one name, each advertises its own, and
	// every session is placed on one of them (package relays). Empty:
	// public_url's host and port (443 when it names none).
	Advertise string `yaml:"advertise"`
	// Region labels where this node runs ("eu"): a device labelled
	// region=eu is placed on a relay of that region when one is live.
	Region string `yaml:"region"`
}

// SessionsConfig sets the server's limits on engineers' sessions; a device
// may shorten them, never lengthen them.
type SessionsConfig struct {
	// IdleTimeout closes a session after this long without engineer
	// input. Zero: 15 min.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxDuration closes a session this long after it was asked for.
	// Zero: 2 h.
	MaxDuration time.Duration `yaml:"max_duration"`
	// ConnectTimeout closes a session whose device has not connected to
	// the relay this long after it was asked (device_unreachable). Zero:
	// 30 s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// FourEyesTimeout closes a session of a fleet whose policy needs a
	// second engineer to approve each one if none did this long after it
	// was asked for (four_eyes_timeout). Zero: 10 min.
	FourEyesTimeout time.Duration `yaml:"four_eyes_timeout"`
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
	// Relative paths are relative to the config file, not to wherever the
	// service manager started us.
	paths := []*string{&cfg.DataDir, &cfg.RecordingsDir, &cfg.TLS.CertFile, &cfg.TLS.KeyFile,
		&cfg.Broker.PasswordFile, &cfg.Broker.CAFile, &cfg.Broker.CertFile, &cfg.Broker.KeyFile,
		&cfg.RecordingsS3.SecretAccessKeyFile, &cfg.RecordingsS3.CAFile, &cfg.SSO.ClientSecretFile}
	if cfg.Broker.DynamicSecurity != nil {
		paths = append(paths, &cfg.Broker.DynamicSecurity.PasswordFile)
	}
	for _, p := range paths {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(filepath.Dir(path), *p)
		}
	}
	return cfg, nil
}

// ParseConfig decodes YAML into a Config and validates it.
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
	if err := c.Broker.validate(u.Hostname()); err != nil {
		return err
	}
	if err := c.validateRoles(); err != nil {
		return err
	}
	if c.Relay.Listen == "" {
		c.Relay.Listen = ":2222"
	}
	_, relayPort, err := net.SplitHostPort(c.Relay.Listen)
	if err != nil {
		return fmt.Errorf("relay.listen %q is not host:port: %w", c.Relay.Listen, err)
	}
	if c.Relay.PublicAddr == "" {
		c.Relay.PublicAddr = net.JoinHostPort(u.Hostname(), relayPort)
	}
	if _, _, err := net.SplitHostPort(c.Relay.PublicAddr); err != nil {
		return fmt.Errorf("relay.public_addr %q is not host:port: %w", c.Relay.PublicAddr, err)
	}
	if c.Relay.Advertise == "" {
		c.Relay.Advertise = apiclient.ServerAddr(u)
	}
	if _, _, err := net.SplitHostPort(c.Relay.Advertise); err != nil {
		return fmt.Errorf("relay.advertise %q is not host:port: %w", c.Relay.Advertise, err)
	}
	if c.Sessions.IdleTimeout < 0 || c.Sessions.MaxDuration < 0 || c.Sessions.ConnectTimeout < 0 || c.Sessions.FourEyesTimeout < 0 {
		return errors.New("sessions: idle_timeout, max_duration, connect_timeout and four_eyes_timeout cannot be negative")
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
	if c.ConsoleIdleTimeout == 0 {
		c.ConsoleIdleTimeout = api.DefaultConsoleIdle
	}
	if c.ConsoleIdleTimeout < time.Minute {
		return fmt.Errorf("console_idle_timeout %v is too short to be useful (at least 1m)", c.ConsoleIdleTimeout)
	}
	if c.TokenTTL < time.Minute {
		return fmt.Errorf("token_ttl %v is too short to be useful (at least 1m)", c.TokenTTL)
	}
	if err := c.validateRecordings(); err != nil {
		return err
	}
	if c.RecordingsMaxSession < 0 || c.RecordingsMaxFile < 0 {
		return errors.New("recordings_max_session and recordings_max_file cannot be negative")
	}
	if err := c.SSO.Validate(); err != nil {
		return err
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

// validateRecordings fills the default recordings directory, or checks
// the object storage that replaces it.
func (c *Config) validateRecordings() error {
	s3 := c.RecordingsS3
	if c.Recordings == "" {
		if s3 != (RecordingsS3Config{}) {
			return errors.New("recordings_s3 applies to recordings kept in object storage only: set recordings: s3://bucket/prefix too, or remove recordings_s3")
		}
		if c.RecordingsDir == "" {
			c.RecordingsDir = filepath.Join(c.DataDir, "recordings")
		}
		return nil
	}
	if c.RecordingsDir != "" {
		return errors.New("recordings and recordings_dir cannot both be set: recordings (s3://) keeps them in object storage, recordings_dir on this server's disk; keep one")
	}
	if _, _, err := s3store.ParseURL(c.Recordings); err != nil {
		return fmt.Errorf("recordings: %w", err)
	}
	if s3.Endpoint != "" {
		u, err := url.Parse(s3.Endpoint)
		if err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" || u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
			return fmt.Errorf("recordings_s3.endpoint %q must be the S3 server's https:// (or http://) URL, scheme, host and port only, like https://minio.example.com:9000", s3.Endpoint)
		}
		if u.Scheme == "http" && s3.CAFile != "" {
			return fmt.Errorf("recordings_s3.ca_file needs TLS, but recordings_s3.endpoint %q is http://: use https://", s3.Endpoint)
		}
	}
	switch {
	case s3.AWSRole && (s3.AccessKeyID != "" || s3.SecretAccessKey != "" || s3.SecretAccessKeyFile != ""):
		return errors.New("recordings_s3.aws_role signs with the AWS role's credentials: remove recordings_s3.access_key_id and its secret, or aws_role")
	case s3.SecretAccessKey != "" && s3.SecretAccessKeyFile != "":
		return errors.New("recordings_s3.secret_access_key and recordings_s3.secret_access_key_file cannot both be set: keep one")
	case (s3.SecretAccessKey != "" || s3.SecretAccessKeyFile != "") && s3.AccessKeyID == "":
		return errors.New("recordings_s3.secret_access_key needs recordings_s3.access_key_id: the secret is the secret of a key")
	}
	return nil
}

// ApplyEnv takes what the config leaves out of the object storage's
// credentials from the environment, by getenv, as the AWS tools do:
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN when
// recordings_s3 names no key, AWS_SECRET_ACCESS_KEY alone when it names
// the key ID but no secret. It does nothing for recordings on disk, or
// with recordings_s3.aws_role.
func (c *Config) ApplyEnv(getenv func(string) string) {
	s3 := &c.RecordingsS3
	if c.Recordings == "" || s3.AWSRole || s3.SecretAccessKey != "" || s3.SecretAccessKeyFile != "" {
		return
	}
	if s3.AccessKeyID == "" {
		s3.AccessKeyID, s3.sessionToken = getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SESSION_TOKEN")
	}
	s3.SecretAccessKey = getenv("AWS_SECRET_ACCESS_KEY")
}

// validate fills the broker section's defaults and checks it; publicHost is
// the API's public host name, where the embedded broker is reached too.
func (b *BrokerConfig) validate(publicHost string) error {
	if !b.External() {
		// A key meant for an external broker, without one, is a mistake:
		// the operator expects portholed to use it.
		for _, k := range []struct{ name, value string }{
			{"username", b.Username}, {"password", b.Password}, {"password_file", b.PasswordFile},
			{"ca_file", b.CAFile}, {"cert_file", b.CertFile}, {"key_file", b.KeyFile}, {"share_group", b.ShareGroup},
		} {
			if k.value != "" {
				return fmt.Errorf("broker.%s applies to an external broker only: set broker.url too, or remove broker.%s", k.name, k.name)
			}
		}
		if b.DynamicSecurity != nil {
			return errors.New("broker.dynamic_security applies to an external Mosquitto only (broker.url): the embedded broker disconnects deleted devices itself")
		}
		if b.Listen == "" {
			b.Listen = ":8883"
		}
		_, port, err := net.SplitHostPort(b.Listen)
		if err != nil {
			return fmt.Errorf("broker.listen %q is not host:port: %w", b.Listen, err)
		}
		if b.PublicURL == "" {
			b.PublicURL = "mqtts://" + net.JoinHostPort(publicHost, port)
		}
		// The embedded broker speaks TLS only: a device's password must
		// never cross the network in the clear.
		if u, err := url.Parse(b.PublicURL); err != nil || u.Scheme != "mqtts" || u.Hostname() == "" || u.Port() == "" {
			return fmt.Errorf("broker.public_url %q must be an mqtts:// URL with a port, like mqtts://porthole.example.com:8883", b.PublicURL)
		}
		return nil
	}

	if b.Node != "" {
		return b.validateNode()
	}
	u, err := checkBrokerURL("broker.url", b.URL)
	if err != nil {
		return err
	}
	if b.Listen != "" {
		return fmt.Errorf("broker.listen and broker.url cannot both be set: with an external broker (url), portholed runs no broker of its own; remove broker.listen")
	}
	if b.PublicURL == "" {
		b.PublicURL = b.URL
	}
	if _, err := checkBrokerURL("broker.public_url", b.PublicURL); err != nil {
		return err
	}
	switch {
	case b.Password != "" && b.PasswordFile != "":
		return errors.New("broker.password and broker.password_file cannot both be set: keep one")
	case (b.Password != "" || b.PasswordFile != "") && b.Username == "":
		return errors.New("broker.password needs broker.username: the broker checks the password of a user")
	case b.CertFile != "" && b.KeyFile == "":
		return errors.New("broker.cert_file needs broker.key_file: give the client certificate and its key, or neither")
	case b.KeyFile != "" && b.CertFile == "":
		return errors.New("broker.key_file needs broker.cert_file: give the client certificate and its key, or neither")
	case u.Scheme == "mqtt" && b.CAFile != "":
		return fmt.Errorf("broker.ca_file needs TLS, but broker.url %q is mqtt://: use mqtts://", b.URL)
	case u.Scheme == "mqtt" && b.CertFile != "":
		return fmt.Errorf("broker.cert_file needs TLS, but broker.url %q is mqtt://: use mqtts://", b.URL)
	}
	if b.ShareGroup == "" {
		b.ShareGroup = brokerclient.DefaultShareGroup
	}
	if !control.ValidName(b.ShareGroup) {
		return fmt.Errorf("broker.share_group %q must be 1 to 63 of a-z, 0-9 and -", b.ShareGroup)
	}
	return b.validateDynsec()
}

// validateDynsec checks broker.dynamic_security, which goes with broker.url.
func (b *BrokerConfig) validateDynsec() error {
	d := b.DynamicSecurity
	if d == nil {
		return nil
	}
	if d.URL == "" {
		d.URL = b.URL
	}
	if _, err := checkBrokerURL("broker.dynamic_security.url", d.URL); err != nil {
		return err
	}
	switch {
	case d.Username == "":
		return errors.New("broker.dynamic_security.username is required: the dynamic security client portholed logs in as to disable deleted devices")
	case d.Password != "" && d.PasswordFile != "":
		return errors.New("broker.dynamic_security.password and password_file cannot both be set: keep one")
	}
	return nil
}

// validateNode checks broker.node: the embedded broker of another node,
// reached over TLS with what the deployment's keys give, so the keys of
// an external broker's login do not apply.
func (b *BrokerConfig) validateNode() error {
	u, err := checkBrokerURL("broker.node", b.Node)
	if err != nil {
		return err
	}
	if u.Scheme != "mqtts" {
		return fmt.Errorf("broker.node %q must be mqtts://: the embedded broker speaks TLS only", b.Node)
	}
	for _, k := range []struct{ name, value string }{
		{"url", b.URL}, {"listen", b.Listen}, {"username", b.Username}, {"password", b.Password}, {"password_file", b.PasswordFile},
		{"ca_file", b.CAFile}, {"cert_file", b.CertFile}, {"key_file", b.KeyFile},
	} {
		if b.DynamicSecurity != nil {
			return errors.New("broker.dynamic_security does not go with broker.node: it is for an external Mosquitto (broker.url)")
		}
		if k.value != "" {
			return fmt.Errorf("broker.%s does not go with broker.node: the node logs in with the deployment's keys; remove broker.%s", k.name, k.name)
		}
	}
	if b.PublicURL == "" {
		b.PublicURL = b.Node
	}
	if _, err := checkBrokerURL("broker.public_url", b.PublicURL); err != nil {
		return err
	}
	if b.ShareGroup == "" {
		b.ShareGroup = brokerclient.DefaultShareGroup
	}
	if !control.ValidName(b.ShareGroup) {
		return fmt.Errorf("broker.share_group %q must be 1 to 63 of a-z, 0-9 and -", b.ShareGroup)
	}
	return nil
}

// checkBrokerURL checks an MQTT broker URL, mqtt:// or mqtts://, naming the
// config key in its errors.
func checkBrokerURL(key, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s %q is not a URL: %w", key, raw, err)
	}
	switch {
	case u.Scheme != "mqtt" && u.Scheme != "mqtts":
		return nil, fmt.Errorf("%s %q must start with mqtts:// (or mqtt://, unencrypted), like mqtts://broker.example.com:8883", key, raw)
	case u.Hostname() == "":
		return nil, fmt.Errorf("%s %q names no host", key, raw)
	case u.User != nil:
		return nil, fmt.Errorf("%s %q holds a user name; put it in broker.username and broker.password instead", key, u.Redacted())
	case u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("%s %q has a path, query or fragment; an MQTT broker URL is only scheme, host and port", key, raw)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%s %q has a bad port", key, raw)
		}
	}
	return u, nil
}

// ByteSize is a number of bytes, written in the config as a plain number or
// with a binary unit: 512KiB, 64MiB, 1GiB.
type ByteSize int64

// UnmarshalYAML reads a size.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	bad := fmt.Errorf("line %d: %q is not a size; write it like 64MiB or 1GiB", n.Line, n.Value)
	if n.Kind != yaml.ScalarNode {
		return bad
	}
	num, mult := strings.TrimSpace(n.Value), int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if v, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(v), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v < 0 || v > (1<<62)/mult {
		return bad
	}
	*b = ByteSize(v * mult)
	return nil
}
