// Package tlsmux serves several protocols on one TCP port: it completes
// each connection's TLS handshake and hands the connection to the listener
// of the application protocol (ALPN, RFC 7301) the client asked for, as
// AWS IoT Core serves MQTT on 443 beside HTTPS. Porthole runs its API and
// pages (h2, http/1.1), its MQTT broker (mqtt) and its relay
// (porthole-relay/2) this way, so that a device or an engineer on a network
// that lets out only HTTPS can still be served.
package tlsmux

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/porthole/porthole/connlimit"
)

// ErrClosed is returned by Serve after Close, and by a routed listener's
// Accept once it or the Mux is closed.
var ErrClosed = fmt.Errorf("tlsmux: %w", net.ErrClosed)

// Config configures a Mux. TLS is required; every other zero value means
// the default documented on the field.
type Config struct {
	// TLS is the server's configuration; its NextProtos are set from the
	// routes. Required.
	TLS *tls.Config
	// HandshakeTimeout bounds each TLS handshake. Zero: 10 s.
	HandshakeTimeout time.Duration
	// MaxHandshakes caps connections in their handshake at once, those
	// waiting for their source's turn included; connections past it are
	// closed at once. Zero: 512.
	MaxHandshakes int
	// MaxPerSource caps handshakes under way at once from one address (an
	// IPv6 /64 counts as one), so that one source cannot take every slot.
	// As many more from the source wait for a turn, within
	// HandshakeTimeout (a burst from one network is served a moment
	// later); past that they are closed at once. Zero: 32.
	MaxPerSource int
	// Logger receives the mux's lines. Nil discards them.
	Logger *slog.Logger
	// WrapConn, if set, wraps each accepted connection before TLS runs
	// over it (to gather a TLS connection's records into fewer writes,
	// say; see tls.Conn.NetConn).
	WrapConn func(net.Conn) net.Conn
}

// Mux routes the connections of one listener by ALPN. Make it with New,
// take one listener per route with Route before Serve, then Serve.
type Mux struct {
	cfg        Config
	tls        *tls.Config
	log        *slog.Logger
	ctx        context.Context // ends at Close
	cancel     context.CancelFunc
	handshakes *connlimit.Limiter
	capped     atomic.Int64

	mu       sync.Mutex
	routes   map[string]*Listener // guarded by mu: by ALPN protocol; "" for none
	protos   []string             // guarded by mu: in the server's order of preference
	ln       net.Listener         // guarded by mu: set by Serve
	closed   bool                 // guarded by mu
	inflight map[net.Conn]struct{}
	wg       sync.WaitGroup
}

// New makes a Mux.
func New(cfg Config) (*Mux, error) {
	if cfg.TLS == nil {
		return nil, errors.New("tlsmux: Config.TLS is required")
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.MaxHandshakes <= 0 {
		cfg.MaxHandshakes = 512
	}
	if cfg.MaxPerSource <= 0 {
		cfg.MaxPerSource = 32
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Mux{cfg: cfg, log: cfg.Logger.With("component", "tlsmux"), ctx: ctx, cancel: cancel,
		handshakes: connlimit.New(connlimit.Config{Max: cfg.MaxHandshakes, PerSource: cfg.MaxPerSource}),
		routes:     map[string]*Listener{}, inflight: map[net.Conn]struct{}{}}, nil
}

// Route returns the listener of the connections that asked for one of
// protos; the empty string stands for a client that asked for none. Call it
// before Serve; a protocol may be routed once. Of the protocols a client
// offers, the one routed first is chosen.
func (m *Mux) Route(protos ...string) *Listener {
	l := &Listener{m: m, conns: make(chan *tls.Conn), done: make(chan struct{})}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range protos {
		if _, dup := m.routes[p]; dup {
			panic("tlsmux: protocol " + p + " routed twice")
		}
		m.routes[p] = l
		if p != "" {
			m.protos = append(m.protos, p)
		}
	}
	return l
}

// Serve accepts connections on ln until Close, and then returns ErrClosed
// (or Accept's error if ln fails otherwise). It closes ln when it returns.
func (m *Mux) Serve(ln net.Listener) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		_ = ln.Close()
		return ErrClosed
	}
	m.ln = ln
	cfg := m.cfg.TLS.Clone()
	cfg.NextProtos = slices.Clone(m.protos)
	m.tls = cfg
	m.mu.Unlock()
	defer ln.Close()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if m.isClosed() {
				return ErrClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			m.log.Warn("accepting a connection failed; retrying", "err", err, "in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		tk := m.admit(nc)
		if tk == nil {
			_ = nc.Close()
			continue
		}
		go m.handshake(nc, tk)
	}
}

// admit takes a place for nc's handshake, or says no.
func (m *Mux) admit(nc net.Conn) *connlimit.Ticket {
	tk, err := m.handshakes.Admit(nc.RemoteAddr())
	if err != nil {
		if n := m.capped.Add(1); n == 1 || n%1000 == 0 {
			m.log.Warn("too many TLS handshakes under way; closing new connections: a flood (see remote for one of its sources) "+
				"or more clients at once than the server is sized for", "why", err, "max", m.cfg.MaxHandshakes,
				"max_per_source", m.cfg.MaxPerSource, "remote", nc.RemoteAddr(), "closed_so_far", n)
		}
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		tk.Release()
		return nil
	}
	m.inflight[nc] = struct{}{}
	m.wg.Add(1)
	return tk
}

// handshake waits for the turn of nc's source, then runs its TLS handshake
// and hands it to its route; the wait and the handshake within
// HandshakeTimeout.
func (m *Mux) handshake(nc net.Conn, tk *connlimit.Ticket) {
	defer m.wg.Done()
	deadline := time.Now().Add(m.cfg.HandshakeTimeout)
	ctx, cancel := context.WithDeadline(m.ctx, deadline)
	err := tk.Wait(ctx)
	cancel()
	var tc *tls.Conn
	if err == nil {
		under := nc
		if m.cfg.WrapConn != nil {
			under = m.cfg.WrapConn(nc)
		}
		tc = tls.Server(under, m.tls)
		_ = nc.SetDeadline(deadline)
		err = tc.Handshake()
	}
	m.mu.Lock()
	delete(m.inflight, nc)
	m.mu.Unlock()
	tk.Release()
	if err != nil {
		m.log.Debug("TLS handshake failed", "remote", nc.RemoteAddr(), "err", err)
		_ = nc.Close()
		return
	}
	_ = nc.SetDeadline(time.Time{})
	proto := tc.ConnectionState().NegotiatedProtocol
	m.mu.Lock()
	l := m.routes[proto]
	m.mu.Unlock()
	if l == nil {
		m.log.Debug("no route for the protocol asked", "remote", nc.RemoteAddr(), "alpn", proto)
		_ = tc.Close()
		return
	}
	select {
	case l.conns <- tc:
	case <-l.done:
		_ = tc.Close()
	}
}

func (m *Mux) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// Close stops Serve, closes every routed listener and every connection in
// its handshake, and waits for the handshakes to end. Connections already
// handed to a route are the route's to close.
func (m *Mux) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	m.closed = true
	ln := m.ln
	for nc := range m.inflight {
		_ = nc.Close()
	}
	routes := make(map[*Listener]struct{})
	for _, l := range m.routes {
		routes[l] = struct{}{}
	}
	m.mu.Unlock()
	m.cancel() // ends the waits for a turn
	if ln != nil {
		_ = ln.Close()
	}
	for l := range routes {
		_ = l.Close()
	}
	m.wg.Wait()
	return nil
}

// Listener is one route's connections: each a *tls.Conn whose handshake is
// done.
type Listener struct {
	m        *Mux
	conns    chan *tls.Conn
	done     chan struct{}
	doneOnce sync.Once
}

var _ net.Listener = (*Listener)(nil)

// Accept returns the route's next connection, a *tls.Conn.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, ErrClosed
	}
}

// Close stops the route: its connections are closed as they arrive.
func (l *Listener) Close() error {
	l.doneOnce.Do(func() { close(l.done) })
	return nil
}

// Addr is the mux's listening address.
func (l *Listener) Addr() net.Addr {
	l.m.mu.Lock()
	defer l.m.mu.Unlock()
	if l.m.ln == nil {
		return &net.TCPAddr{}
	}
	return l.m.ln.Addr()
}
