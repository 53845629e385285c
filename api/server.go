// Package api serves Porthole's HTTPS API: the /api/v1 handlers that
// engineers, administrators and enrolling devices call, the OpenAPI document
// that describes them (/api/v1/openapi.json), and the operator endpoints
// /healthz, /readyz and /metrics.
//
// One route table (routes.go) drives both the handlers' registration and the
// OpenAPI document, so the two cannot drift. Every route names who may call
// it; fleet-scoped routes name the least fleet role they need, and a device
// or fleet the caller has no role in answers 404 exactly as a missing one
// does, so no caller learns what exists in fleets not their own.
package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/porthole/porthole/ca"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/session"
	"github.com/porthole/porthole/sso"
	"github.com/porthole/porthole/store"
)

// Config configures a Server. Store and Keys are required; every other
// field has a working zero value.
type Config struct {
	// Store holds all state. Required.
	Store store.Store
	// Keys sign device host certificates and are handed (public halves
	// only) to devices at enrollment. Required.
	Keys *ca.Keys
	// Logger receives one line per request and the causes of internal
	// errors. Nil: discarded.
	Logger *slog.Logger
	// Registry receives the API's metrics and is served at /metrics; the
	// API adds only its own collectors to it. Nil: a new registry with the
	// Go and process collectors too.
	Registry *prometheus.Registry

	// BrokerURL (mqtts://host:port) and RelayAddr (host:port) are told to
	// devices at enrollment. Empty: told as empty, for a server that runs
	// neither role yet.
	BrokerURL string
	RelayAddr string

	// Sessions opens, follows and closes engineers' sessions. Nil: the
	// session routes answer that this server opens no sessions.
	Sessions *session.Manager

	// Recordings says where the recordings devices upload are kept, and
	// how much of them. Zero: none are taken.
	Recordings RecordingsConfig

	// TokenTTL is how long a login lasts. Zero: 12 hours.
	TokenTTL time.Duration
	// ConsoleIdle ends a web console session unused by its person (the
	// page's own background reads do not count) for this long. Zero: 30
	// minutes.
	ConsoleIdle time.Duration
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// MaxBodyBytes bounds every request body. Zero: 64 KiB.
	MaxBodyBytes int64

	// LoginFailuresPerAccount is how many failed logins to one account
	// one source (an IPv4 address, or an IPv6 /64) may collect within
	// LimitWindow before that source's further attempts on that account
	// are refused with 429. Attempts from other sources, its owner's
	// among them, are not affected. Zero: 5.
	LoginFailuresPerAccount int
	// LoginFailuresPerAddress is the same bound per source, across
	// accounts (failed passkey sign-ins count here, and only here). Five
	// times it bounds the passkey sign-ins one source may begin in the
	// window, which bounds the ceremonies stored. Zero: 20.
	LoginFailuresPerAddress int
	// LoginCodeFailuresPerAccount is how many wrong TOTP codes, each sent
	// with the account's correct password, one account may collect from
	// all sources within LimitWindow before every login to it is refused
	// with 429 until they leave the window. Only someone who knows the
	// password can spend it. Zero: 5.
	LoginCodeFailuresPerAccount int
	// EnrollFailuresPerAddress bounds failed enrollments (bad, expired or
	// used-up tokens) per client address. Zero: 20.
	EnrollFailuresPerAddress int
	// LimitWindow is the sliding window of the four limits above. Zero:
	// 15 minutes.
	LimitWindow time.Duration

	// Console serves the web console's pages under /console/ (web.Embedded
	// is the one built into portholed), and GET / is sent there. Nil: no
	// console; /console/ answers 404.
	Console http.Handler
	// Presence tells of devices' connection changes as this node learns
	// them, for GET /api/v1/presence to push at once. Nil: streams learn
	// changes only by reading the store every PresenceResync.
	Presence PresenceWatcher
	// PresenceResync is how often a presence stream reads the store again
	// and checks its caller's login and roles. Zero: 15 seconds.
	PresenceResync time.Duration

	// DeviceNonces remembers the nonces of the devices' request
	// credentials, so none is accepted twice. Nil: a store in this
	// process's memory, holding DefaultMaxDeviceNonces, of which
	// DefaultMaxNoncesPerDevice of one device. Several API nodes behind
	// one address need one shared store for a credential captured on its
	// way to one node to be refused by the others.
	DeviceNonces DeviceNonceStore

	// SSO signs engineers in with the organization's OpenID provider, in
	// the console and with `porthole login --sso`; RefreshSSO must then
	// run every minute or so. Nil: password and TOTP logins only.
	SSO *sso.Provider
	// DevicePollInterval is the least time between two polls of one
	// `porthole login --sso`. Zero: 5 seconds (RFC 8628's default).
	DevicePollInterval time.Duration
	// PublicURL is the server's https:// URL, for the verification page's
	// address that `porthole login --sso` prints (empty: the Host the CLI
	// reached), and the relying party of passkeys: its host is their RP
	// ID, and its origin the only one their ceremonies are taken from.
	// Empty, or naming an IP address: no passkeys (their routes say why).
	PublicURL string
}

// DeviceNonceStore remembers the nonces of devices' request credentials
// (control.MemoryNonceStore is one): a nonce is fresh once, and one device
// may hold at most its share of live ones (control.ErrNonceQuota).
type DeviceNonceStore interface {
	RememberFor(device, nonce string, forgetAfter, now time.Time) (fresh bool, err error)
}

// Defaults for the zero values of Config.
const (
	DefaultTokenTTL                    = 12 * time.Hour
	DefaultConsoleIdle                 = 30 * time.Minute
	DefaultMaxBodyBytes                = 64 << 10
	DefaultLoginFailuresPerAccount     = 5
	DefaultLoginFailuresPerAddress     = 20
	DefaultLoginCodeFailuresPerAccount = 5
	DefaultEnrollFailuresPerAddress    = 20
	DefaultLimitWindow                 = 15 * time.Minute
	// DefaultMaxDeviceNonces bounds the memory of device request nonces:
	// each is kept for at most twice control.DeviceRequestSkew, so this
	// is room for over a thousand device requests a second.
	DefaultMaxDeviceNonces = 1 << 18
	// DefaultMaxNoncesPerDevice is one device's share: a device that
	// signs more requests than this within their four minutes (about 17
	// a second) is refused until they expire, and the others are not.
	DefaultMaxNoncesPerDevice = 1 << 12
)

// hostCertValidity is how long a device's host certificate lasts.
const hostCertValidity = 365 * 24 * time.Hour

// Server is the API. Create it with New; it is safe for concurrent use.
type Server struct {
	store     store.Store
	keys      *ca.Keys
	logger    *slog.Logger
	registry  *prometheus.Registry
	metrics   *metrics
	brokerURL string
	relayAddr string
	sessions  *session.Manager
	recDisk   *recordingDisk
	tokenTTL  time.Duration
	idle      time.Duration // console sessions' idle timeout
	now       func() time.Time
	maxBody   int64

	loginByAccount *failureLimiter // keyed by email and sourceKey
	loginByAddress *failureLimiter // keyed by sourceKey
	loginCodes     *failureLimiter // keyed by email
	enrollByAddr   *failureLimiter // keyed by sourceKey
	deviceNonces   DeviceNonceStore
	deviceGrants   *failureLimiter // `porthole login --sso` started, keyed by sourceKey

	passkeys      *webauthn.WebAuthn // nil: no passkeys, for passkeysOff's reason
	passkeysOff   string
	passkeyStarts *failureLimiter // passkey sign-ins begun, keyed by sourceKey

	sso          *sso.Provider // nil: no single sign-on
	ssoPublicURL string
	pollInterval time.Duration // of device grants

	console        http.Handler
	presence       PresenceWatcher
	presenceResync time.Duration
	streams        streamSet // the open presence streams

	routes  []route
	openapi []byte // the OpenAPI document, built from routes
	handler http.Handler
}

// New checks cfg, fills its defaults and builds the API's handler.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("api: Config.Store is required")
	}
	if cfg.Keys == nil {
		return nil, errors.New("api: Config.Keys is required")
	}
	s := &Server{
		store:     cfg.Store,
		keys:      cfg.Keys,
		logger:    cfg.Logger,
		registry:  cfg.Registry,
		brokerURL: cfg.BrokerURL,
		relayAddr: cfg.RelayAddr,
		sessions:  cfg.Sessions,
		recDisk:   newRecordingDisk(cfg.Recordings),
		tokenTTL:  orDefault(cfg.TokenTTL, DefaultTokenTTL),
		idle:      orDefault(cfg.ConsoleIdle, DefaultConsoleIdle),
		now:       cfg.Now,
		maxBody:   orDefault(cfg.MaxBodyBytes, DefaultMaxBodyBytes),

		deviceNonces: cfg.DeviceNonces,
		sso:          cfg.SSO,
		ssoPublicURL: strings.TrimSuffix(cfg.PublicURL, "/"),
		pollInterval: orDefault(cfg.DevicePollInterval, devicePollInterval),

		console:        cfg.Console,
		presence:       cfg.Presence,
		presenceResync: orDefault(cfg.PresenceResync, DefaultPresenceResync),
	}
	if s.deviceNonces == nil {
		s.deviceNonces = control.NewMemoryNonceStore(DefaultMaxDeviceNonces, DefaultMaxNoncesPerDevice)
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
		s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m, err := newMetrics(s.registry)
	if err != nil {
		return nil, fmt.Errorf("api: registering metrics: %w", err)
	}
	s.metrics = m
	window := orDefault(cfg.LimitWindow, DefaultLimitWindow)
	s.loginByAccount = newFailureLimiter(orDefault(cfg.LoginFailuresPerAccount, DefaultLoginFailuresPerAccount), window)
	s.loginByAddress = newFailureLimiter(orDefault(cfg.LoginFailuresPerAddress, DefaultLoginFailuresPerAddress), window)
	s.loginCodes = newFailureLimiter(orDefault(cfg.LoginCodeFailuresPerAccount, DefaultLoginCodeFailuresPerAccount), window)
	s.enrollByAddr = newFailureLimiter(orDefault(cfg.EnrollFailuresPerAddress, DefaultEnrollFailuresPerAddress), window)
	s.deviceGrants = newFailureLimiter(orDefault(cfg.LoginFailuresPerAddress, DefaultLoginFailuresPerAddress), window)
	s.passkeyStarts = newFailureLimiter(5*orDefault(cfg.LoginFailuresPerAddress, DefaultLoginFailuresPerAddress), window)
	s.passkeys, s.passkeysOff = newRelyingParty(s.ssoPublicURL)
	if s.passkeys == nil && cfg.PublicURL != "" {
		s.logger.Info("passkeys are off", "why", s.passkeysOff)
	}
	s.routes = s.routeTable()
	if s.openapi, err = openAPI(s.routes); err != nil {
		return nil, fmt.Errorf("api: building the OpenAPI document: %w", err)
	}
	s.handler = s.instrument(s.newMux())
	return s, nil
}

// Handler returns the API's HTTP handler, to be served over TLS.
func (s *Server) Handler() http.Handler { return s.handler }

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
