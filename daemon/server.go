// Package daemon composes portholed's roles (the HTTPS API and the embedded
// MQTT broker today; the relay as it lands) from one Config, and implements
// `portholed init`, `serve` and `dev`.
package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/porthole/porthole/api"
	"github.com/porthole/porthole/broker"
	"github.com/porthole/porthole/ca"
	"github.com/porthole/porthole/presence"
	"github.com/porthole/porthole/store"
	"github.com/porthole/porthole/store/pgstore"
	"github.com/porthole/porthole/store/sqlitestore"
)

// Server is portholed with its store, keys and roles ready. Create it with
// Open, run it once with Serve, and Close it.
type Server struct {
	cfg      *Config
	logger   *slog.Logger
	store    store.Store
	keys     *ca.Keys
	presence *presence.Tracker
	broker   *broker.Broker
	api      *api.Server

	closeOnce sync.Once
	closeErr  error
}

// Open loads the keys from cfg.DataDir, opens the store (running its
// migrations) and makes the roles, which accept nothing before Serve. cfg
// must have been validated.
func Open(ctx context.Context, cfg *Config, logger *slog.Logger) (*Server, error) {
	keys, err := ca.Load(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("loading keys from %s: %w", cfg.DataDir, err)
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
	s := &Server{cfg: cfg, logger: logger, store: st, keys: keys}
	if err := s.openRoles(); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

// openRoles makes the presence tracker, the broker and the API, in the
// order they depend on each other.
func (s *Server) openRoles() error {
	var err error
	s.presence, err = presence.New(presence.Config{Store: s.store, Logger: s.logger})
	if err != nil {
		return fmt.Errorf("starting presence tracking: %w", err)
	}
	if s.broker, err = newBroker(s.store, s.presence, s.logger); err != nil {
		return err
	}
	s.api, err = api.New(api.Config{
		Store:     s.store,
		Keys:      s.keys,
		Logger:    s.logger.With("component", "api"),
		BrokerURL: s.cfg.Broker.PublicURL,
		RelayAddr: s.cfg.Relay.PublicAddr,
		// A deleted device can no longer log in; end the connection it has.
		DeviceDeleted: func(fleet, device string) { s.broker.Disconnect(fleet, device) },
		TokenTTL:      s.cfg.TokenTTL,
	})
	if err != nil {
		return fmt.Errorf("starting the API: %w", err)
	}
	return nil
}

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
	API    net.Listener // HTTPS for engineers and enrolling devices
	Broker net.Listener // MQTT for devices idling on the control channel
}

// shutdownGrace is how long in-flight API requests get at shutdown.
const shutdownGrace = 10 * time.Second

// Serve runs the API and the broker on ls until ctx is done or one of them
// fails, then stops both and waits for them: in-flight requests get up to
// 10 s, devices are disconnected. It returns nil after a clean shutdown.
// Serve always closes both listeners, and may be called only once.
//
// Before the broker accepts anyone, every device still marked online (by
// a server that stopped without saying goodbye) is marked offline: with the
// embedded broker, no device can be connected yet.
func (s *Server) Serve(ctx context.Context, ls Listeners) error {
	n, err := s.store.MarkAllOffline(ctx)
	if err != nil {
		ls.API.Close()
		ls.Broker.Close()
		return fmt.Errorf("marking devices offline before the broker starts: %w", err)
	}
	if n > 0 {
		s.logger.Info("devices marked offline: they were online when the server last stopped", "devices", n)
	}
	tlsConfig := &tls.Config{
		// One certificate for both: a device pins its fingerprint at
		// enrollment and checks it at the broker.
		Certificates: []tls.Certificate{s.keys.TLS},
		MinVersion:   tls.VersionTLS12,
	}
	hs := &http.Server{
		Handler:           s.api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug),
		TLSConfig:         tlsConfig,
	}
	errc := make(chan error, 2)
	go func() {
		if err := hs.ServeTLS(ls.API, "", ""); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serving the API: %w", err)
			return
		}
		errc <- nil
	}()
	go func() {
		if err := s.broker.Serve(tls.NewListener(ls.Broker, tlsConfig)); !errors.Is(err, broker.ErrClosed) {
			errc <- fmt.Errorf("serving the MQTT broker: %w", err)
			return
		}
		errc <- nil
	}()
	s.logger.Info("serving", "api", "https://"+ls.API.Addr().String(), "public_url", s.cfg.PublicURL,
		"broker", "mqtts://"+ls.Broker.Addr().String(), "broker_public_url", s.cfg.Broker.PublicURL)

	running := 2
	select {
	case err = <-errc: // a role stopped by itself: stop the other too
		running--
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err = errors.Join(err, hs.Shutdown(shutCtx))
	if cerr := s.broker.Close(); !errors.Is(cerr, broker.ErrClosed) {
		err = errors.Join(err, cerr)
	}
	for ; running > 0; running-- {
		err = errors.Join(err, <-errc)
	}
	return err
}

// Close stops the roles, writes the devices' last presence, and closes the
// store. It is safe to call more than once, and after a failed Open.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.broker != nil {
			if err := s.broker.Close(); !errors.Is(err, broker.ErrClosed) {
				errs = append(errs, err)
			}
		}
		if s.presence != nil {
			errs = append(errs, s.presence.Close())
		}
		errs = append(errs, s.store.Close())
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}
