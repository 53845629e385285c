// Package daemon composes portholed's roles (the HTTPS API, the control
// channel on the embedded MQTT broker or an external one, and the relay,
// all on one TLS port routed by ALPN) from one Config, and implements
// `portholed init`, `serve` and `dev`. It is wiring: what each role does
// lives in its own package (api, broker, brokerclient, relay, presence).
package daemon

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/porthole/porthole/api"
	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/broker"
	"github.com/porthole/porthole/brokerclient"
	"github.com/porthole/porthole/ca"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/devicekeys"
	"github.com/porthole/porthole/presence"
	"github.com/porthole/porthole/relay"
	"github.com/porthole/porthole/relay/relayproto"
	"github.com/porthole/porthole/relays"
	"github.com/porthole/porthole/session"
	"github.com/porthole/porthole/sso"
	"github.com/porthole/porthole/store"
	"github.com/porthole/porthole/store/pgstore"
	"github.com/porthole/porthole/store/sqlitestore"
	"github.com/porthole/porthole/tcprto"
	"github.com/porthole/porthole/tlsmux"
	"github.com/porthole/porthole/web"
)

// Server is portholed with its store, keys and roles ready. Create it with
// Open, run it once with Serve, and Close it.
type Server struct {
	cfg      *Config
	logger   *slog.Logger
	store    store.Store
	keys     *ca.Keys
	presence *presence.Tracker
	api      *api.Server
	sessions *session.Manager
	relay    *relay.Relay
	// relayID names this node's relay in the registry (package relays).
	relayID string
	// deviceKeys caches the devices' keys for the broker's and the
	// relay's logins; changes.go keeps it, and the roles, in step with
	// the store's announcements.
	deviceKeys *devicekeys.Cache
	// stopWatching ends the watch of the store's changes.
	stopWatching context.CancelFunc
	// background holds what applyChange starts; Close waits for it, and
	// nothing starts once bgClosed is set (guarded by bgMu).
	background sync.WaitGroup
	bgMu       sync.Mutex
	bgClosed   bool
	rechecking atomic.Bool // a recheckRelay runs
	// audit appends the events outsiders can cause (relay refusals,
	// rejected commands) at a bounded rate; see audit.go.
	audit *audit.Queue

	// The control channel: exactly one of broker (embedded) and client
	// (external, cfg.Broker.URL) is set, and pubsub is that one.
	broker *broker.Broker
	client *brokerclient.Client
	pubsub broker.PubSub
	// extPresence turns the external broker's states into presence; nil
	// with the embedded broker, whose hooks report presence.
	extPresence *presence.States

	// onState are called with every state message a device publishes
	// (control.State: online, offline, tunnel_up, tunnel_down, rejected),
	// parsed, on the broker's delivering goroutine: they must be quick and
	// must not block. Each message may arrive more than once, and retained
	// ones are delivered again at start and after the server loses and
	// regains an external broker, so handlers apply states rather than
	// count events. Append to it in openRoles, before Serve: it is read
	// without a lock.
	onState []func(fleet, device string, st control.State)

	stateLogMu      sync.Mutex
	stateLogNext    time.Time // guarded by stateLogMu: the next warning about a dropped state may be logged then
	stateLogSkipped int       // guarded by stateLogMu: warnings left out since the last one

	closeOnce sync.Once
	closeErr  error
}

// Open loads the keys from cfg.DataDir (the signing keys on a node with
// the api role only: keys.go), opens the store (running its migrations)
// and makes the roles, which accept nothing before Serve. cfg must have
// been validated.
func Open(ctx context.Context, cfg *Config, logger *slog.Logger) (*Server, error) {
	keys, err := loadKeys(cfg, logger, time.Now())
	if err != nil {
		return nil, err
	}
	if cfg.TLS.CertFile != "" {
		keys.TLS, err = ca.LoadTLS(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading the TLS certificate: %w", err)
		}
	}
	st, err := OpenStore(ctx, cfg.Database, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if l, ok := st.(interface{ SetLogger(*slog.Logger) }); ok {
		l.SetLogger(logger.With("component", "store"))
	}
	s := &Server{cfg: cfg, logger: logger, store: st, keys: keys, relayID: newRelayID()}
	if err := s.openRoles(ctx); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

// openRoles makes the presence tracker, the control channel, the sessions,
// the relay and, on an API node, the API, in the order they depend on each
// other.
func (s *Server) openRoles(ctx context.Context) error {
	var err error
	s.presence, err = presence.New(presence.Config{Store: s.store, Logger: s.logger})
	if err != nil {
		return fmt.Errorf("starting presence tracking: %w", err)
	}
	s.deviceKeys = devicekeys.New(devicekeys.Config{Lookup: devicekeys.StoreLookup(s.store)})
	if err := s.openControl(); err != nil {
		return err
	}
	publicURL, err := url.Parse(s.cfg.PublicURL)
	if err != nil {
		return fmt.Errorf("public_url %q: %w", s.cfg.PublicURL, err)
	}
	s.sessions, err = session.New(session.Config{
		Store:   s.store,
		Publish: func(topic string, payload []byte) error { return s.pubsub.Publish(topic, payload, false, 1) },
		// Nil off API nodes: the Manager then leaves its closes'
		// commands to an API node (SendDue).
		ControlKey:      s.keys.Control,
		UserCA:          s.keys.UserCA,
		RelayAddr:       s.cfg.Relay.PublicAddr,
		Place:           (&relays.Placer{Store: s.store}).Place,
		DefaultRelay2:   apiclient.ServerAddr(publicURL),
		RelaysHeard:     func(ctx context.Context) (map[string]bool, error) { return relays.Heard(ctx, s.store, 0) },
		ConnectTimeout:  s.cfg.Sessions.ConnectTimeout,
		IdleTimeout:     s.cfg.Sessions.IdleTimeout,
		MaxDuration:     s.cfg.Sessions.MaxDuration,
		FourEyesTimeout: s.cfg.Sessions.FourEyesTimeout,
		// The relay cuts a closed session's channels at once.
		Closed: func(id string) { s.relay.CloseSession(id) },
		Logger: s.logger.With("component", "sessions"),
	})
	if err != nil {
		return fmt.Errorf("starting sessions: %w", err)
	}
	s.onState = append(s.onState, s.sessions.HandleState)
	s.audit = audit.NewQueue(audit.QueueConfig{Append: s.store.AppendAudit, Logger: s.logger.With("component", "audit")})
	s.onState = append(s.onState, newRejections(s.audit).onState)
	refused := func(f relay.Refusal) { auditRefusal(s.audit, f) }
	if s.relay, err = newRelay(s.store, s.relayID, s.deviceKeys, s.keys, s.sessions, s.cfg.Relay.PublicAddr, refused, s.logger.With("component", "relay")); err != nil {
		return err
	}
	if s.cfg.Has(RoleAPI) {
		if err := s.openAPI(ctx); err != nil {
			return err
		}
	}
	s.watchChanges()
	return nil
}

// openAPI makes the API, with the recordings' object storage if the
// config names one.
func (s *Server) openAPI(ctx context.Context) error {
	recordings, err := openRecordings(ctx, s.cfg)
	if err != nil {
		return err
	}
	var provider *sso.Provider
	if s.cfg.SSO.Enabled() {
		secret, err := configSecret("sso.client_secret_file", s.cfg.SSO.ClientSecret, s.cfg.SSO.ClientSecretFile)
		if err != nil {
			return err
		}
		provider, err = sso.New(s.cfg.SSO, secret, strings.TrimSuffix(s.cfg.PublicURL, "/")+"/api/v1/sso/callback", nil)
		if err != nil {
			return err
		}
	}
	s.api, err = api.New(api.Config{
		Store:       s.store,
		Keys:        s.keys,
		Logger:      s.logger.With("component", "api"),
		BrokerURL:   s.cfg.Broker.PublicURL,
		RelayAddr:   s.cfg.Relay.PublicAddr,
		Sessions:    s.sessions,
		TokenTTL:    s.cfg.TokenTTL,
		ConsoleIdle: s.cfg.ConsoleIdleTimeout,
		Recordings: api.RecordingsConfig{Store: recordings, Dir: s.cfg.RecordingsDir,
			MaxSession: int64(s.cfg.RecordingsMaxSession), MaxFile: int64(s.cfg.RecordingsMaxFile)},
		Console:      web.Embedded(),
		Presence:     s.presence,
		DeviceNonces: s.deviceNonces(),
		SSO:          provider,
		PublicURL:    s.cfg.PublicURL,
	})
	if err != nil {
		return fmt.Errorf("starting the API: %w", err)
	}
	return nil
}

// openControl makes the control channel, embedded or external, and
// subscribes to the devices' states; an external broker is connected to by
// Serve.
func (s *Server) openControl() error {
	if !s.cfg.Broker.External() {
		b, err := newBroker(s.deviceKeys, s.keys, s.presence, s.logger)
		if err != nil {
			return err
		}
		s.broker, s.pubsub = b, b
		if err := b.Subscribe(control.StateFilter, s.handleState); err != nil {
			return fmt.Errorf("subscribing to the devices' states: %w", err)
		}
		return nil
	}
	client, err := newBrokerClient(s.cfg.Broker, s.keys, s.logger)
	if err != nil {
		return err
	}
	s.client, s.pubsub = client, client
	s.extPresence = presence.NewStates(s.presence)
	if err := client.Subscribe(control.StateFilter, s.handleState); err != nil {
		return fmt.Errorf("subscribing to the devices' states: %w", err)
	}
	return nil
}

// PubSub is the control channel, for publishing commands to devices: the
// embedded broker in process, or the client of the external broker
// (broker.url), which fails at once while it is disconnected.
func (s *Server) PubSub() broker.PubSub { return s.pubsub }

// OpenStore opens the database named by a Config's Database value.
func OpenStore(ctx context.Context, database, dataDir string) (store.Store, error) {
	switch {
	case database == "sqlite":
		return openSQLite(filepath.Join(dataDir, "porthole.db"))
	case strings.HasPrefix(database, "sqlite:"):
		return openSQLite(strings.TrimPrefix(database, "sqlite:"))
	default:
		st, err := pgstore.Open(ctx, database)
		if err != nil {
			return nil, fmt.Errorf("opening PostgreSQL: %w", err)
		}
		return st, nil
	}
}

func openSQLite(path string) (store.Store, error) {
	st, err := sqlitestore.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening SQLite database %s: %w", path, err)
	}
	return st, nil
}

// Store returns the server's store (for `init` and `dev` to seed it).
func (s *Server) Store() store.Store { return s.store }

// Keys returns the server's keys.
func (s *Server) Keys() *ca.Keys { return s.keys }

// Listeners are where Serve accepts connections, as plain TCP: Serve adds
// TLS with the server's certificate to both.
type Listeners struct {
	API net.Listener // HTTPS for engineers and enrolling devices
	// Broker is MQTT for devices idling on the control channel, required
	// with the embedded broker. With an external broker (broker.url) it
	// may be nil; one given anyway is closed at once.
	Broker net.Listener
	// Relay is SSH, where devices and engineers meet for sessions.
	// Required.
	Relay net.Listener
}

// shutdownGrace is how long in-flight API requests get at shutdown.
const shutdownGrace = 10 * time.Second

// Serve runs the API and the control channel on ls until ctx is done or
// one of them fails, then stops both and waits for them: in-flight requests
// get up to 10 s, devices are disconnected from the embedded broker. It
// returns nil after a clean shutdown. Serve always closes both listeners,
// and may be called only once.
//
// With the embedded broker, every device still marked online (by a server
// that stopped without saying goodbye) is marked offline before the broker
// accepts anyone: no device can be connected yet.
//
// With an external broker, devices stay connected to it while the server is
// away, so nothing is marked offline; Serve connects (waiting up to 30 s
// for the broker, and failing if it refuses the login) and presence comes
// from the devices' retained states (see handleState). The connection is
// kept up for as long as Serve runs.
func (s *Server) Serve(ctx context.Context, ls Listeners) error {
	relayRole := s.cfg.Has(RoleRelay)
	switch {
	case relayRole && ls.Relay == nil:
		ls.API.Close()
		if ls.Broker != nil {
			ls.Broker.Close()
		}
		return errors.New("the relay needs a listener (Listeners.Relay)")
	case !relayRole && ls.Relay != nil:
		ls.Relay.Close() // not this node's role
		ls.Relay = nil
	}
	// Devices' connections come back within seconds of a network outage
	// (package tcprto says why).
	ls.API = tcprto.Listener(ls.API)
	if ls.Relay != nil {
		ls.Relay = tcprto.Listener(ls.Relay)
	}
	if ls.Broker != nil {
		ls.Broker = tcprto.Listener(ls.Broker)
	}
	if s.client != nil && ls.Broker != nil {
		ls.Broker.Close() // the external broker is where devices connect
	}
	if s.broker != nil {
		if ls.Broker == nil {
			ls.API.Close()
			return errors.New("the embedded MQTT broker needs a listener (Listeners.Broker)")
		}
		// Every device comes back at once after a restart: their keys are
		// read in one go rather than one store read per login.
		start := time.Now()
		if n, err := s.deviceKeys.Warm(ctx, s.store); err != nil {
			s.logger.Warn("could not read the devices' keys ahead; each login reads its own", "err", err)
		} else {
			s.logger.Info("read the devices' keys for their logins", "devices", n, "took", time.Since(start).Round(time.Millisecond))
		}
		n, err := s.store.MarkAllOffline(ctx)
		if err != nil {
			ls.API.Close()
			ls.Broker.Close()
			if ls.Relay != nil {
				ls.Relay.Close()
			}
			if ctx.Err() != nil {
				return nil // stopped while starting: a clean stop
			}
			return fmt.Errorf("marking devices offline before the broker starts: %w", err)
		}
		if n > 0 {
			s.logger.Info("devices marked offline: they were online when the server last stopped", "devices", n)
		}
	}
	tlsConfig := &tls.Config{
		// One certificate for all: a device pins its fingerprint at
		// enrollment and checks it at the broker and the relay too.
		Certificates: []tls.Certificate{s.keys.TLS},
		MinVersion:   tls.VersionTLS12,
	}
	// The API's port serves every protocol, routed by ALPN: the API and
	// pages, MQTT for devices and the relay's second protocol, so that one
	// open port (443) is enough. The broker's and the relay's own
	// listeners stay, for devices enrolled with their addresses.
	mux, err := tlsmux.New(tlsmux.Config{TLS: tlsConfig, Logger: s.logger,
		// The relay sends a spliced copy's records in one write (v2.go).
		WrapConn: func(c net.Conn) net.Conn { return relayproto.NewHeldConn(c) }})
	if err != nil {
		return err
	}
	// Routed in the order of preference: a client that offers the relay's
	// protocol and http/1.1 (to tell an older server apart) gets the relay.
	var relayL, mqttL net.Listener
	if relayRole {
		relayL = mux.Route(relayproto.ALPN)
	}
	if s.broker != nil {
		mqttL = mux.Route("mqtt")
	}
	httpL := mux.Route("h2", "http/1.1", "")
	var mqttWS *connListener
	if s.broker != nil {
		mqttWS = newConnListener(ls.API.Addr())
	}
	hs := &http.Server{
		Handler:           s.handler(mqttWS),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug),
		TLSConfig:         &tls.Config{NextProtos: []string{"h2", "http/1.1"}},
	}
	if s.api != nil {
		hs.RegisterOnShutdown(s.api.CloseStreams) // presence streams never end by themselves
	}
	ctlCtx, stopCtl := context.WithCancel(ctx)
	defer stopCtl()
	errc := make(chan error, 8)
	running := 0
	run := func(what string, f func() error, closed error) {
		running++
		go func() {
			// A route of the API's port ends with it.
			if err := f(); !errors.Is(err, closed) && !errors.Is(err, tlsmux.ErrClosed) {
				errc <- fmt.Errorf("serving %s: %w", what, err)
				return
			}
			errc <- nil
		}()
	}
	if relayRole {
		run("the relay", func() error { return s.relay.Serve(ls.Relay) }, relay.ErrClosed)
		// Registered once it serves; removed as Serve stops, so that no
		// session is placed here after.
		reg := &relays.Registration{Store: s.store, Logger: s.logger.With("component", "relays"), Relay: store.Relay{
			ID: s.relayID, Addr: s.cfg.Relay.Advertise, SSHAddr: s.cfg.Relay.PublicAddr, Region: s.cfg.Relay.Region}}
		// Once before the API serves, so that this node's first sessions
		// find its relay; a failure is logged, and Run tries again.
		_ = reg.Beat(ctx)
		run("the relay's registration", func() error { reg.Run(ctlCtx); return nil }, nil)
		run("the relay on the API's port", func() error { return s.relay.ServeTLS(relayL) }, relay.ErrClosed)
	}
	run("the API", func() error { return hs.Serve(httpL) }, http.ErrServerClosed)
	if s.api != nil && s.cfg.SSO.Enabled() {
		run("the single sign-on refresh sweep", func() error { s.sweepSSO(ctlCtx); return nil }, nil)
	}
	run("the API's port", func() error { return mux.Serve(ls.API) }, tlsmux.ErrClosed)
	if s.broker != nil {
		run("the MQTT broker", func() error { return s.broker.Serve(tls.NewListener(ls.Broker, tlsConfig)) }, broker.ErrClosed)
		run("the MQTT broker on the API's port", func() error { return s.broker.Serve(mqttL) }, broker.ErrClosed)
		run("the MQTT broker over WebSockets", func() error { return s.broker.Serve(mqttWS) }, broker.ErrClosed)
		s.logger.Info("serving", "api", "https://"+ls.API.Addr().String(), "public_url", s.cfg.PublicURL,
			"broker", "mqtts://"+ls.Broker.Addr().String(), "broker_public_url", s.cfg.Broker.PublicURL)
	} else {
		running++
		go func() { errc <- s.runExternal(ctlCtx) }()
		s.logger.Info("serving", "api", "https://"+ls.API.Addr().String(), "public_url", s.cfg.PublicURL,
			"external_broker", cmp.Or(s.cfg.Broker.URL, s.cfg.Broker.Node), "broker_public_url", s.cfg.Broker.PublicURL)
	}

	if relayRole {
		s.logger.Info("relay listening", "relay", ls.Relay.Addr().String(), "relay_public_addr", s.cfg.Relay.PublicAddr,
			"also_on", ls.API.Addr().String()+" (ALPN "+relayproto.ALPN+")", "advertised", s.cfg.Relay.Advertise, "region", s.cfg.Relay.Region)
	}
	s.logger.Info("roles", "roles", strings.Join(s.cfg.ServedRoles(), ","))

	select {
	case err = <-errc: // a role stopped by itself: stop the other too
		running--
	case <-ctx.Done():
	}
	stopCtl()
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	_ = mux.Close()
	err = errors.Join(err, hs.Shutdown(shutCtx))
	err = errors.Join(err, s.closeControl(), s.closeRelay())
	for ; running > 0; running-- {
		err = errors.Join(err, <-errc)
	}
	return err
}

// ssoSweepEvery is how often a node looks for SSO logins due a refresh.
const ssoSweepEvery = 30 * time.Second

// sweepSSO refreshes the SSO logins that are due until ctx is done, so
// that a user removed at the provider loses access within
// sso.refresh_every and a sweep. Nodes sharing a database claim each
// login before refreshing it (api.Server.RefreshSSO).
func (s *Server) sweepSSO(ctx context.Context) {
	t := time.NewTicker(ssoSweepEvery)
	defer t.Stop()
	for {
		if _, err := s.api.RefreshSSO(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("single sign-on: refresh sweep", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// How runExternal keeps the snapshots of retained states coming: it checks
// every snapshotPoll whether the connection to the external broker came
// back, and retries a snapshot that failed (the connection dropped during
// it, say) after snapshotRetry, doubling the wait after each further
// failure up to snapshotRetryMax.
const (
	snapshotPoll     = 250 * time.Millisecond
	snapshotRetry    = 5 * time.Second
	snapshotRetryMax = 5 * time.Minute
)

// runExternal connects to the external broker and, after the first
// connection and every renewed one, takes a snapshot of the devices'
// retained states, until ctx is done. Only a failed first connection is an
// error: the client reconnects by itself after that.
func (s *Server) runExternal(ctx context.Context) error {
	if err := s.client.Connect(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // shutting down before the broker answered
		}
		return fmt.Errorf("the control channel (broker.url): %w", err)
	}
	tick := time.NewTicker(snapshotPoll)
	defer tick.Stop()
	var (
		taken   bool            // on this connection: a snapshot was taken, or refused for good
		retryAt time.Time       // no snapshot before then: the last one failed
		wait    = snapshotRetry // before the next retry
	)
	for {
		switch up := s.client.Connected(); {
		case !up:
			taken, retryAt, wait = false, time.Time{}, snapshotRetry
		case !taken && !time.Now().Before(retryAt):
			err := s.takeSnapshot(ctx, wait)
			taken = err == nil || errors.Is(err, brokerclient.ErrSnapshotRefused)
			retryAt = time.Now().Add(wait)
			wait = min(2*wait, snapshotRetryMax)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// takeSnapshot reads every retained state through a plain subscription
// and hands each one to handleState. Its failure is logged (retry says when
// runExternal tries again): meanwhile presence comes from the states that
// arrive on the shared subscription.
func (s *Server) takeSnapshot(ctx context.Context, retry time.Duration) error {
	start := time.Now()
	n, err := s.client.Snapshot(ctx, 0, s.handleState)
	switch {
	case ctx.Err() != nil:
	case errors.Is(err, brokerclient.ErrSnapshotRefused):
		s.logger.Warn("could not read the devices' retained states; presence will follow their next state messages", "err", err)
	case err != nil:
		s.logger.Warn("could not read the devices' retained states; trying again", "err", err, "in", retry)
	default:
		s.logger.Info("read the devices' retained states", "messages", n, "took", time.Since(start).Round(time.Millisecond))
	}
	return err
}

// closeControl stops the control channel: the embedded broker
// disconnects every device; the external broker's client disconnects.
func (s *Server) closeControl() error {
	var err error
	switch {
	case s.broker != nil:
		err = s.broker.Close()
		if errors.Is(err, broker.ErrClosed) {
			err = nil
		}
	case s.client != nil:
		err = s.client.Close()
		if errors.Is(err, brokerclient.ErrClosed) {
			err = nil
		}
	}
	return err
}

// closeRelay stops the relay, cutting every session's connections. The
// sessions stay open in the store until their devices say so or a limit
// closes them: a node that restarts is a new relay (a new ID), which
// refuses them, and another node's sweeper closes them as relay_lost.
func (s *Server) closeRelay() error {
	if s.relay == nil {
		return nil
	}
	if err := s.relay.Close(); !errors.Is(err, relay.ErrClosed) {
		return err
	}
	return nil
}

// Close stops the roles, writes the devices' last presence, and closes the
// store. It is safe to call more than once, and after a failed Open.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.stopWatching != nil {
			s.stopWatching()
		}
		errs := []error{s.closeControl(), s.closeRelay()}
		s.bgMu.Lock()
		s.bgClosed = true
		s.bgMu.Unlock()
		s.background.Wait() // before the store closes under it
		if s.sessions != nil {
			if err := s.sessions.Close(); !errors.Is(err, session.ErrClosed) {
				errs = append(errs, err)
			}
		}
		if s.presence != nil {
			errs = append(errs, s.presence.Close())
		}
		if s.audit != nil {
			s.audit.Close() // after the relay: its last refusals are appended
		}
		errs = append(errs, s.store.Close())
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// newRelayID names this process's relay: a new name at every start, so
// that a node that restarts is a new relay and the old one's row ages out.
func newRelayID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "rly_" + hex.EncodeToString(b)
}

// deviceNonces is where the API remembers devices' request nonces: with
// PostgreSQL, which several API nodes may share, in the database, so that
// a credential used on one node is refused by all; with SQLite (one node)
// in memory, the API's default.
func (s *Server) deviceNonces() api.DeviceNonceStore {
	if !s.cfg.Shared() {
		return nil
	}
	return api.StoreNonces(s.store)
}
