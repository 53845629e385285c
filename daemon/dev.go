package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/porthole/porthole/api"
	"github.com/porthole/porthole/auth"
	"github.com/porthole/porthole/ca"
	"github.com/porthole/porthole/store"
)

// DevOptions are the inputs of `portholed dev`.
type DevOptions struct {
	// Host is the address the dev server listens on and tells devices and
	// engineers, for devices in network namespaces or on a lab network.
	// Empty: 127.0.0.1.
	Host string
	// Listen is the API's address. Empty: 127.0.0.1:8443. Use
	// 127.0.0.1:0 for a free port (the printed PORTHOLE_SERVER tells it).
	Listen string
	// BrokerListen is the embedded MQTT broker's address. Empty:
	// 127.0.0.1:0, a free port (devices are told it at enrollment).
	BrokerListen string
	// RelayListen is the SSH relay's address. Empty: 127.0.0.1:0, a free
	// port (devices and engineers are told it with each session).
	RelayListen string
	// PublicPort is the port devices and engineers are told for the API's
	// (with Host), for a dev server reached through a proxy or a
	// forwarded port. Zero: the port Listen got.
	PublicPort int
	// Fleet is the fleet made for you. Empty: "dev".
	Fleet string
	// Logger receives the server log. Nil: discarded.
	Logger *slog.Logger
}

// DevCredentials is what `portholed dev` prints: everything needed to use
// the throw-away server at once.
type DevCredentials struct {
	Server          string // https://127.0.0.1:PORT
	Broker          string // mqtts://127.0.0.1:PORT (the API's port), told to devices at enrollment
	Relay           string // 127.0.0.1:PORT, where sessions meet
	Token           string // an admin's API token
	Fingerprint     string // the self-signed certificate's pin
	Fleet           string
	EnrollmentToken string // multi-use, for Fleet
	AdminEmail      string
	AdminPassword   string
	TOTPURI         string
	DataDir         string
}

// Dev runs a complete server with throw-away state (a temporary data dir,
// removed on return) on loopback, like `vault server -dev`. Once it is
// serving, ready receives the credentials to print. It returns when ctx is
// done.
func Dev(ctx context.Context, opts DevOptions, ready func(DevCredentials)) error {
	logger := opts.Logger
	if logger == nil {
		logger = discardLogger()
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if net.ParseIP(opts.Host) == nil {
		return fmt.Errorf("--host %q is not an IP address", opts.Host)
	}
	if opts.Listen == "" {
		opts.Listen = net.JoinHostPort(opts.Host, "8443")
	}
	if opts.BrokerListen == "" {
		opts.BrokerListen = net.JoinHostPort(opts.Host, "0")
	}
	if opts.RelayListen == "" {
		opts.RelayListen = net.JoinHostPort(opts.Host, "0")
	}
	if opts.Fleet == "" {
		opts.Fleet = "dev"
	}
	dir, err := os.MkdirTemp("", "portholed-dev-")
	if err != nil {
		return fmt.Errorf("making the throw-away data dir: %w", err)
	}
	defer os.RemoveAll(dir)

	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s (is another portholed running? try --listen 127.0.0.1:0): %w", opts.Listen, err)
	}
	defer ln.Close()
	brokerLn, err := net.Listen("tcp", opts.BrokerListen)
	if err != nil {
		return fmt.Errorf("listening for devices on %s (is another portholed running? try --broker-listen 127.0.0.1:0): %w", opts.BrokerListen, err)
	}
	defer brokerLn.Close()
	relayLn, err := net.Listen("tcp", opts.RelayListen)
	if err != nil {
		return fmt.Errorf("listening for the relay on %s (try --relay-listen 127.0.0.1:0): %w", opts.RelayListen, err)
	}
	defer relayLn.Close()
	relayAddr := relayLn.Addr().(*net.TCPAddr)
	addr := ln.Addr().(*net.TCPAddr)
	brokerAddr := brokerLn.Addr().(*net.TCPAddr)
	if err := ca.Generate(dir, []string{opts.Host, "127.0.0.1", "localhost"}); err != nil {
		return fmt.Errorf("making keys: %w", err)
	}
	publicPort := addr.Port
	if opts.PublicPort != 0 {
		publicPort = opts.PublicPort
	}
	cfg := &Config{
		DataDir:   dir,
		Listen:    addr.String(),
		PublicURL: "https://" + net.JoinHostPort(opts.Host, strconv.Itoa(publicPort)),
		// Devices are told the API's port for MQTT too (ALPN "mqtt"): one
		// port serves everything. The broker's own port stays, for agents
		// that predate ALPN routing.
		Broker: BrokerConfig{
			Listen:    brokerAddr.String(),
			PublicURL: "mqtts://" + net.JoinHostPort(opts.Host, strconv.Itoa(publicPort)),
		},
	}
	cfg.Relay = RelayConfig{Listen: relayAddr.String(), PublicAddr: net.JoinHostPort(opts.Host, strconv.Itoa(relayAddr.Port))}
	if err := cfg.Validate(); err != nil {
		return err
	}
	srv, err := Open(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer srv.Close()

	creds, err := seedDev(ctx, srv, opts.Fleet)
	if err != nil {
		return fmt.Errorf("seeding the dev server: %w", err)
	}
	creds.Server = cfg.PublicURL
	creds.Broker = cfg.Broker.PublicURL
	creds.Relay = cfg.Relay.PublicAddr
	creds.DataDir = dir

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, Listeners{API: ln, Broker: brokerLn, Relay: relayLn}) }()
	ready(creds)
	return <-served
}

// seedDev makes an admin, a fleet, an admin token and a multi-use
// enrollment token.
func seedDev(ctx context.Context, srv *Server, fleetName string) (DevCredentials, error) {
	st := srv.Store()
	now := time.Now().UTC()
	c := DevCredentials{
		AdminEmail:    "admin@porthole.dev",
		AdminPassword: auth.GeneratePassword(),
		Fleet:         fleetName,
		Fingerprint:   srv.Keys().TLSFingerprint(),
	}
	admin, uri, err := api.CreateUser(ctx, st, c.AdminEmail, c.AdminPassword, true)
	if err != nil {
		return c, err
	}
	c.TOTPURI = uri
	fleet := &store.Fleet{Name: fleetName, CreatedAt: now}
	if err := st.CreateFleet(ctx, fleet); err != nil {
		return c, err
	}
	secret, hash := auth.NewSecret("pht")
	if err := st.CreateToken(ctx, &store.Token{
		UserID: admin.ID, Hash: hash, Name: "portholed dev",
		CreatedAt: now, ExpiresAt: now.Add(7 * 24 * time.Hour),
	}); err != nil {
		return c, err
	}
	c.Token = secret
	esecret, ehash := auth.NewSecret("phe")
	if err := st.CreateEnrollmentToken(ctx, &store.EnrollmentToken{
		FleetID: fleet.ID, Hash: ehash, UsesLeft: 100, MaxUses: 100,
		CreatedBy: admin.ID, CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour),
	}); err != nil {
		return c, err
	}
	c.EnrollmentToken = esecret
	return c, nil
}

// PrintDevBanner writes what `portholed dev` shows: a loud warning, the
// environment lines scripts grep for (PORTHOLE_SERVER=..., PORTHOLE_TOKEN=...),
// and the exact enroll command for a device.
func PrintDevBanner(w io.Writer, c DevCredentials) {
	fmt.Fprintf(w, `==> Porthole dev server is running.

WARNING! Dev mode: everything lives in %s and is deleted when
this process exits. Loopback only, a self-signed certificate. Do not use it
for real devices.

Point the porthole CLI at it:

PORTHOLE_SERVER=%s
PORTHOLE_TOKEN=%s
PORTHOLE_FINGERPRINT=%s

  (export those three, then try: porthole devices)

Devices idle on the control channel at %s (MQTT over TLS) and meet
engineers at the relay at %s (SSH).

Enroll a device into fleet %q (token good for 100 devices, 24 h):

PORTHOLE_ENROLL_TOKEN=%s

  porthole-agent enroll --server %s --token %s --fingerprint %s --name dev1 --state ./dev1-state

Admin login for `+"`porthole login`"+` and the web console (%s/console/): %s / %s
TOTP secret: %s
`, c.DataDir, c.Server, c.Token, c.Fingerprint, c.Broker, c.Relay, c.Fleet, c.EnrollmentToken,
		c.Server, c.EnrollmentToken, c.Fingerprint, c.Server, c.AdminEmail, c.AdminPassword, c.TOTPURI)
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
