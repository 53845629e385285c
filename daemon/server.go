// Package daemon composes portholed's roles (the HTTPS API today; the relay
// and broker as they land) from one Config, and implements `portholed init`,
// `serve` and `dev`.
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
	"github.com/porthole/porthole/ca"
	"github.com/porthole/porthole/store"
	"github.com/porthole/porthole/store/pgstore"
	"github.com/porthole/porthole/store/sqlitestore"
)

// Server is portholed with its store and keys open. Create it with Open,
// run it with Serve, and Close it.
type Server struct {
	cfg    *Config
	logger *slog.Logger
	store  store.Store
	keys   *ca.Keys
	api    *api.Server

	closeOnce sync.Once
}

// Open loads the keys from cfg.DataDir and opens the store (running its
// migrations). cfg must have been validated.
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
	a, err := api.New(api.Config{
		Store:     st,
		Keys:      keys,
		Logger:    logger.With("component", "api"),
		BrokerURL: cfg.Broker.PublicURL,
		RelayAddr: cfg.Relay.PublicAddr,
		TokenTTL:  cfg.TokenTTL,
	})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("starting the API: %w", err)
	}
	return &Server{cfg: cfg, logger: logger, store: st, keys: keys, api: a}, nil
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

// Serve answers HTTPS on ln until ctx is done, then shuts down gracefully
// (in-flight requests get up to 10 s). It returns nil after a clean
// shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug),
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{s.keys.TLS},
			MinVersion:   tls.VersionTLS12,
		},
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.ServeTLS(ln, "", "") }()
	s.logger.Info("serving", "api", "https://"+ln.Addr().String(), "public_url", s.cfg.PublicURL)
	select {
	case err := <-errc:
		return fmt.Errorf("serving the API: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := hs.Shutdown(shutCtx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// Close releases the store. It is safe to call more than once.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() { err = s.store.Close() })
	return err
}
