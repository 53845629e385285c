package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/porthole/porthole/api"
	"github.com/porthole/porthole/auth"
	"github.com/porthole/porthole/ca"
	"github.com/porthole/porthole/termqr"
)

// InitOptions are the inputs of `portholed init`.
type InitOptions struct {
	// DataDir is created; it must not exist or be empty.
	DataDir string
	// AdminEmail is the first administrator's login. Required.
	AdminEmail string
	// AdminPassword is used when set; empty: one is generated and printed.
	AdminPassword string
	// PublicURL is how engineers and devices will reach the API. Empty:
	// https://<hostname>:8443.
	PublicURL string
	// Database as in Config.Database. Empty: SQLite in DataDir.
	Database string
	// TLSHosts are extra names and addresses for the self-signed
	// certificate (the public URL's host is always included).
	TLSHosts []string
	// BrokerListen is the embedded MQTT broker's address. Empty: ":8883".
	BrokerListen string
	// RelayListen is the SSH relay's address. Empty: ":2222".
	RelayListen string
}

// ConfigFileName is the config file `portholed init` writes in the data dir.
const ConfigFileName = "portholed.yaml"

// Init makes a new data dir: keys and certificate authorities, a config
// file, the database, and the first administrator. It prints the admin's
// credentials (the password only when it generated it, and the TOTP secret
// as a URI and a QR code) to out, once. It never overwrites anything.
func Init(ctx context.Context, opts InitOptions, out io.Writer) error {
	if opts.DataDir == "" {
		return errors.New("--data DIR is required")
	}
	if opts.AdminEmail == "" {
		return errors.New("--admin-email is required: the first administrator's login")
	}
	if entries, err := os.ReadDir(opts.DataDir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s already exists and is not empty; refusing to overwrite it (choose a new --data directory)", opts.DataDir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("checking %s: %w", opts.DataDir, err)
	}
	cfg := &Config{DataDir: opts.DataDir, PublicURL: opts.PublicURL, Database: opts.Database,
		Broker: BrokerConfig{Listen: opts.BrokerListen}, Relay: RelayConfig{Listen: opts.RelayListen}}
	if err := cfg.Validate(); err != nil {
		return err
	}
	pub, _ := url.Parse(cfg.PublicURL)
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", opts.DataDir, err)
	}
	hosts := append([]string{pub.Hostname()}, opts.TLSHosts...)
	if err := ca.Generate(opts.DataDir, hosts); err != nil {
		return fmt.Errorf("making keys: %w", err)
	}
	if err := writeConfig(cfg, opts.DataDir); err != nil {
		return err
	}
	srv, err := Open(ctx, cfg, discardLogger())
	if err != nil {
		return err
	}
	defer srv.Close()

	password := opts.AdminPassword
	generated := password == ""
	if generated {
		password = auth.GeneratePassword()
	}
	_, totpURI, err := api.CreateUser(ctx, srv.Store(), opts.AdminEmail, password, true)
	if err != nil {
		return fmt.Errorf("creating the first administrator: %w", err)
	}

	abs, _ := filepath.Abs(opts.DataDir)
	fmt.Fprintf(out, "Porthole server initialised in %s.\n\n", abs)
	fmt.Fprintf(out, "Administrator: %s\n", opts.AdminEmail)
	if generated {
		fmt.Fprintf(out, "Password:      %s   (shown only now: store it in your password manager)\n", password)
	}
	fmt.Fprintf(out, "\nAdd this TOTP secret to your authenticator app (scan the code or paste the URI):\n%s\n\n", totpURI)
	termqr.Print(out, totpURI)
	fmt.Fprintf(out, "\nTLS certificate fingerprint: %s\n", srv.Keys().TLSFingerprint())
	fmt.Fprintf(out, "\nNext:\n  portholed serve --config %s\n  porthole login %s\n",
		filepath.Join(abs, ConfigFileName), cfg.PublicURL)
	return nil
}

// writeConfig writes the data dir's config file: the values init chose,
// and every other key commented out with its default, so an operator sees
// what can be set.
func writeConfig(cfg *Config, dir string) error {
	db := strconv.Quote(cfg.Database) // a DSN may hold YAML's special characters
	if cfg.Database == "sqlite" {
		db = "sqlite   # a file in data_dir; or a postgres:// URL"
	}
	_, port, _ := net.SplitHostPort(cfg.Listen)
	text := strings.Join([]string{
		"# portholed configuration, written by `portholed init`.",
		"# Unknown keys are errors. Relative paths are relative to this file.",
		"data_dir: .",
		"listen: \":" + port + "\"",
		"public_url: " + cfg.PublicURL,
		"database: " + db,
		"# tls:                 # your own certificate instead of the self-signed one",
		"#   cert_file: /etc/porthole/tls.crt",
		"#   key_file: /etc/porthole/tls.key",
		"broker:             # the embedded MQTT broker devices idle on (TLS, the same certificate)",
		"  listen: \"" + cfg.Broker.Listen + "\"",
		"  public_url: " + cfg.Broker.PublicURL,
		"relay:              # the SSH relay where devices and engineers meet (443 gets through most firewalls)",
		"  listen: \"" + cfg.Relay.Listen + "\"",
		"  public_addr: " + cfg.Relay.PublicAddr,
		"  # advertise: relay-1.example.com:443   # with several relay nodes: where this one's TLS port is reached",
		"  # region: eu                           # devices labelled region=eu prefer relays of region eu",
		"# roles: [api, relay]   # with several nodes on one PostgreSQL: what this node serves of api, relay",
		"#                       # and broker (the embedded broker; without it set broker.url, an external",
		"#                       # broker, or broker.node: mqtts://<the broker node>:8883); a node without",
		"#                       # api gets a data_dir of its own, without the signing keys: portholed init-node",
		"# sessions:           # the server's limits; a device may shorten them",
		"#   idle_timeout: 15m",
		"#   max_duration: 2h",
		"#   connect_timeout: 30s",
		"#   four_eyes_timeout: 10m   # a fleet with four-eyes: how long a session waits for a second engineer",
		"# recordings: s3://porthole-rec/prod   # the uploaded recordings in object storage, shared by",
		"# recordings_s3:                       # several nodes, instead of data_dir/recordings",
		"#   endpoint: https://minio.example.com:9000   # empty: AWS S3",
		"#   access_key_id: portholed",
		"#   secret_access_key_file: s3.secret          # or AWS_SECRET_ACCESS_KEY in the environment",
		"#   # aws_role: true                           # on AWS: the role portholed runs as, not a key",
		"token_ttl: " + cfg.TokenTTL.String(),
		"# console_idle_timeout: 30m   # a web console session its person leaves unused ends",
		"log:",
		"  level: info",
		"  format: text",
		"",
	}, "\n")
	path := filepath.Join(dir, ConfigFileName)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}
