package brokerclient

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/porthole/porthole/control"
)

// Config configures a Client. Only URL is required; every other zero value
// means the default documented on the field.
type Config struct {
	// URL is the broker's address: mqtt://host[:port] (plain TCP, port 1883
	// by default) or mqtts://host[:port] (TLS, port 8883 by default).
	// Required.
	URL string

	// ClientID names this server node's MQTT session. Every node must have
	// its own: a broker lets a new connection with an existing client id
	// take the old one's place. Empty: ClientIDPrefix + "<hostname>-<16
	// random hex digits>", unique per process and too random for anyone
	// else to take over.
	ClientID string

	// Username and Password log in to the broker. Empty Username: none is
	// sent (a broker that authenticates by client certificate, such as AWS
	// IoT Core, needs none).
	Username string
	Password string

	// CAFile is a PEM file of the certificate authorities that sign the
	// broker's TLS certificate. Empty: the system's roots. mqtts:// only.
	CAFile string

	// TLS, when set, is the TLS configuration used as is, for mqtts://
	// only: how a node reaches the embedded broker of another portholed
	// node of its deployment, whose certificate it pins. CAFile, CertFile
	// and KeyFile must then be empty.
	TLS *tls.Config

	// CertFile and KeyFile are a PEM client certificate and its key, for a
	// broker that authenticates clients by certificate (AWS IoT Core,
	// Mosquitto with require_certificate). Both or neither; mqtts:// only.
	CertFile string
	KeyFile  string

	// ShareGroup is the MQTT 5 shared subscription group that every server
	// node of one deployment joins, so that each state message is handled
	// by one node: Subscribe(filter) subscribes to
	// "$share/<ShareGroup>/<filter>". 1 to 63 of a-z, 0-9 and '-'. Empty:
	// DefaultShareGroup.
	ShareGroup string

	// PublishTimeout bounds how long Publish and Subscribe wait for the
	// broker's acknowledgement. Zero: 10 s.
	PublishTimeout time.Duration

	// Logger receives connection changes and failures; the MQTT library's
	// own lines go to it at debug level. Nil discards them.
	Logger *slog.Logger
}

// Defaults that a broker's ACL or policy must allow (deploy/mosquitto,
// deploy/aws-iot).
const (
	// DefaultShareGroup is the share group when Config.ShareGroup is empty.
	DefaultShareGroup = "portholed"
	// ClientIDPrefix begins every default client id, so an ACL or an AWS
	// IoT policy can allow server nodes by prefix.
	ClientIDPrefix = "portholed-"
)

const (
	defaultPublishTimeout = 10 * time.Second
	defaultMQTTPort       = "1883"
	defaultMQTTSPort      = "8883"
	// maxHostInClientID keeps default client ids short; brokers are only
	// required to take 23 characters, and most take far more.
	maxHostInClientID = 32
)

// settings is a validated Config, ready to connect with.
type settings struct {
	Config
	url *url.URL    // with an explicit port
	tls *tls.Config // nil for mqtt://
}

// validate fills in the defaults and checks cfg, loading its TLS files, so
// that a mistake is reported by New rather than on every reconnect.
func (cfg Config) validate() (*settings, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ShareGroup == "" {
		cfg.ShareGroup = DefaultShareGroup
	}
	if cfg.PublishTimeout == 0 {
		cfg.PublishTimeout = defaultPublishTimeout
	}
	if cfg.ClientID == "" {
		id, err := defaultClientID()
		if err != nil {
			return nil, err
		}
		cfg.ClientID = id
	}
	switch {
	case !control.ValidName(cfg.ShareGroup):
		return nil, fmt.Errorf("brokerclient: share group %q is not allowed: use 1 to 63 of a-z, 0-9 and -", cfg.ShareGroup)
	case cfg.PublishTimeout < 0:
		return nil, fmt.Errorf("brokerclient: PublishTimeout %s is negative", cfg.PublishTimeout)
	case cfg.Password != "" && cfg.Username == "":
		return nil, errors.New("brokerclient: a broker password is set without a username: set both")
	case (cfg.CertFile == "") != (cfg.KeyFile == ""):
		return nil, errors.New("brokerclient: a client certificate needs both its certificate file and its key file")
	}
	u, err := parseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	s := &settings{Config: cfg, url: u}
	if u.Scheme == "mqtt" {
		if cfg.CAFile != "" || cfg.CertFile != "" || cfg.TLS != nil {
			return nil, fmt.Errorf("brokerclient: a CA file, client certificate or TLS configuration is set, but %s does not use TLS: use mqtts://", u.Redacted())
		}
		return s, nil
	}
	if cfg.TLS != nil {
		if cfg.CAFile != "" || cfg.CertFile != "" {
			return nil, errors.New("brokerclient: a TLS configuration is given with a CA file or client certificate: give one or the other")
		}
		s.tls = cfg.TLS.Clone()
		return s, nil
	}
	if s.tls, err = cfg.tlsConfig(u.Hostname()); err != nil {
		return nil, err
	}
	return s, nil
}

// parseURL checks a broker URL and gives it an explicit port, which the
// dialer needs.
func parseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("brokerclient: the broker URL is empty: give mqtt://host:1883 or mqtts://host:8883")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("brokerclient: the broker URL %q does not parse: %w", raw, err)
	}
	if u.User != nil {
		return nil, fmt.Errorf("brokerclient: the broker URL %s carries credentials: give them as the username and password instead", u.Redacted())
	}
	port := defaultMQTTPort
	switch u.Scheme {
	case "mqtt":
	case "mqtts":
		port = defaultMQTTSPort
	default:
		return nil, fmt.Errorf("brokerclient: the broker URL %q has scheme %q: use mqtt:// or mqtts://", raw, u.Scheme)
	}
	if u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("brokerclient: the broker URL %q should be just %s://host[:port]", raw, u.Scheme)
	}
	if u.Port() != "" {
		port = u.Port()
	}
	return &url.URL{Scheme: u.Scheme, Host: net.JoinHostPort(u.Hostname(), port)}, nil
}

// tlsConfig loads the CA and client certificate files once; a broker that
// rotates them needs a restart of portholed to pick up new ones.
func (cfg Config) tlsConfig(serverName string) (*tls.Config, error) {
	tc := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("brokerclient: reading the broker's CA file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("brokerclient: the broker's CA file %s holds no PEM certificate", cfg.CAFile)
		}
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("brokerclient: loading the client certificate %s and key %s: %w", cfg.CertFile, cfg.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// defaultClientID is "portholed-<host>-<random>": the host tells an
// operator reading the broker's log which node it is, the random part keeps
// two processes on one host (or a guesser) from taking each other's session.
func defaultClientID() (string, error) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	host = strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, host)
	if len(host) > maxHostInClientID {
		host = host[:maxHostInClientID]
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("brokerclient: making a client id: %w", err)
	}
	return ClientIDPrefix + host + "-" + hex.EncodeToString(b[:]), nil
}
