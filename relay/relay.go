package relay

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/connlimit"
)

// Why the relay ends things; the causes of the contexts it cancels.
var (
	errSessionClosed = errors.New("the session was closed")
	errSessionEnded  = errors.New("the session reached its end")
	errDeviceDeleted = errors.New("the device was deleted")
	errCertExpired   = errors.New("the session certificate expired")
	errKeepAlive     = errors.New("the peer stopped answering keep-alives")
	errConnEnded     = errors.New("the connection ended")
	errRelayClosed   = errors.New("the relay is shutting down")
	errNoSessions    = errors.New("the connection served no session")
)

// Relay is Porthole's SSH relay. Create it with New, hand it listeners with
// Serve, and stop it with Close. Its methods are safe for concurrent use.
type Relay struct {
	cfg        Config
	log        *slog.Logger
	ctx        context.Context // ends at Close, with errRelayClosed
	cancel     context.CancelCauseFunc
	handshakes *connlimit.Limiter // a ticket per connection in its handshake
	// cutTTL is how long a cut session or device is remembered: longer
	// than any lookup that can still be under way (each is refused once
	// older than this).
	cutTTL time.Duration
	// wg counts every goroutine the relay starts; Close waits for them.
	// Goroutines not started by a counted one are added under mu while
	// !closed, so that no Add races with Close's Wait.
	wg sync.WaitGroup
	// capped counts connections closed at once for MaxHandshakes or
	// MaxHandshakesPerSource; cappedLogged is when that was last logged, in
	// Unix ns.
	capped, cappedLogged atomic.Int64

	mu          sync.Mutex
	closed      bool                                // guarded by mu
	listeners   map[net.Listener]struct{}           // guarded by mu
	conns       map[net.Conn]struct{}               // guarded by mu: accepted and not yet closed
	devices     map[string]map[*deviceConn]struct{} // guarded by mu: logged in, by "fleet/device"
	sessions    map[string]*session                 // guarded by mu: registered or with an engineer
	engineers   int                                 // guarded by mu: logged in
	splices     int                                 // guarded by mu
	cutSessions tombstones                          // guarded by mu
	cutDevices  tombstones                          // guarded by mu
}

// session is what the relay holds of a session while a device serves it or
// an engineer is connected to it.
type session struct {
	id string
	// ctx ends when the session is cut (CloseSession, its end, Close) or
	// dropped, with the reason as its cause.
	ctx    context.Context
	cancel context.CancelCauseFunc

	device    *deviceConn                // guarded by Relay.mu: the connection that registered it, or nil
	ready     chan struct{}              // guarded by Relay.mu: closed while device != nil
	engineers map[*engineerConn]struct{} // guarded by Relay.mu
	ends      time.Time                  // guarded by Relay.mu
	endTimer  *time.Timer                // guarded by Relay.mu: cuts the session at ends

	lastActivity atomic.Int64 // Config.Now in Unix ns at the last Activity call
}

// Stats counts what the relay holds at one moment.
type Stats struct {
	Handshakes    int // connections in their handshake, or waiting for their source's turn
	Devices       int // device connections logged in
	Engineers     int // engineer connections logged in
	Registrations int // sessions registered by a device
	Splices       int // engineer channels joined to a device
}

// New makes a relay. It accepts connections once Serve is given a listener.
func New(cfg Config) (*Relay, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	ttl := 2*cfg.HandshakeTimeout + time.Second
	return &Relay{
		cfg:         cfg,
		log:         cfg.Logger.With("component", "relay"),
		ctx:         ctx,
		cancel:      cancel,
		handshakes:  connlimit.New(connlimit.Config{Max: cfg.MaxHandshakes, PerSource: cfg.MaxHandshakesPerSource}),
		cutTTL:      ttl,
		listeners:   make(map[net.Listener]struct{}),
		conns:       make(map[net.Conn]struct{}),
		devices:     make(map[string]map[*deviceConn]struct{}),
		sessions:    make(map[string]*session),
		cutSessions: tombstones{ttl: ttl},
		cutDevices:  tombstones{ttl: ttl},
	}, nil
}

// Serve accepts SSH connections (the relay's first protocol) on l until
// Close, and then returns ErrClosed; if l is closed by someone else, it
// returns Accept's error. It closes l when it returns. Several listeners
// may be served at once, of either protocol (see ServeTLS).
func (r *Relay) Serve(l net.Listener) error {
	return r.serve(l, r.serveConn)
}

// serve accepts connections on l and hands each to handle on a goroutine of
// its own, with its handshake ticket and tracked (see track); handle gives
// both back.
func (r *Relay) serve(l net.Listener, handle func(net.Conn, *connlimit.Ticket)) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		_ = l.Close()
		return ErrClosed
	}
	r.listeners[l] = struct{}{}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.listeners, l)
		r.mu.Unlock()
		_ = l.Close()
	}()

	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if r.isClosed() {
				return ErrClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Running out of file descriptors and the like pass; wait a
			// little, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			r.log.Warn("accepting a connection failed; retrying", "err", err, "in", backoff)
			select {
			case <-time.After(backoff):
			case <-r.ctx.Done():
			}
			continue
		}
		backoff = 0
		tk := r.admit(nc)
		if tk == nil {
			_ = nc.Close()
			continue
		}
		if !r.track(nc) {
			tk.Release()
			_ = nc.Close()
			return ErrClosed
		}
		go handle(nc, tk)
	}
}

// admit takes a handshake ticket for nc, or nil if there is no room:
// MaxHandshakes in all, or MaxHandshakesPerSource (and as many waiting)
// from nc's source.
func (r *Relay) admit(nc net.Conn) *connlimit.Ticket {
	tk, err := r.handshakes.Admit(nc.RemoteAddr())
	if err == nil {
		return tk
	}
	r.capped.Add(1)
	if now := time.Now().UnixNano(); now-r.cappedLogged.Load() > int64(time.Second) {
		// Once a second at most: a flood must not flood the log too.
		r.cappedLogged.Store(now)
		why := "too many connections in their handshake; closing new ones"
		if errors.Is(err, connlimit.ErrSourceFull) {
			why = "too many connections in their handshake from one source; closing its new ones"
		}
		r.log.Warn(why, "remote", nc.RemoteAddr().String(), "max", r.cfg.MaxHandshakes,
			"max_per_source", r.cfg.MaxHandshakesPerSource, "closed_so_far", r.capped.Load())
	}
	return nil
}

// turn waits for tk's source to have a free handshake slot, until the
// deadline or the relay's Close.
func (r *Relay) turn(tk *connlimit.Ticket, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(r.ctx, deadline)
	defer cancel()
	return tk.Wait(ctx)
}

// track remembers an accepted connection, so that Close can close it, and
// counts the goroutine that will serve it; false once the relay is closed.
func (r *Relay) track(nc net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.conns[nc] = struct{}{}
	r.wg.Add(1)
	return true
}

// deadlines are when a connection accepted at start must have said who it
// is (helloBy), and have logged in (doneBy).
func (r *Relay) deadlines(start time.Time) (helloBy, doneBy time.Time) {
	return start.Add(min(r.cfg.HelloTimeout, r.cfg.HandshakeTimeout)), start.Add(r.cfg.HandshakeTimeout)
}

func (r *Relay) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// serveConn runs one connection: the handshake, then the device's or the
// engineer's part. It closes nc and releases tk when it returns.
func (r *Relay) serveConn(nc net.Conn, tk *connlimit.Ticket) {
	defer r.wg.Done()
	defer func() {
		r.mu.Lock()
		delete(r.conns, nc)
		r.mu.Unlock()
		_ = nc.Close()
	}()

	start := time.Now()
	remote := nc.RemoteAddr().String()
	log := r.log.With("remote", remote)
	// The deadline bounds every read and write of the handshake, so a
	// silent or slow client cannot hold its slot: HelloTimeout until the
	// client has offered a key, HandshakeTimeout in all. The context
	// bounds the lookups the login makes.
	helloBy, doneBy := r.deadlines(start)
	_ = nc.SetDeadline(helloBy)
	if err := r.turn(tk, helloBy); err != nil {
		tk.Release()
		log.Debug("no handshake slot for the connection's source in time", "err", err)
		return
	}
	ctx, cancel := context.WithDeadline(r.ctx, doneBy)
	identified := func() { _ = nc.SetDeadline(doneBy) }
	sc, chans, reqs, err := ssh.NewServerConn(nc, r.serverConfig(ctx, remote, log, identified))
	cancel()
	tk.Release()
	if err != nil {
		log.Debug("handshake failed", "err", err)
		return
	}
	_ = nc.SetDeadline(time.Time{})
	id := sc.Permissions.ExtraData[identityKey{}].(*identity)
	log = log.With("user", sc.User())
	switch id.role {
	case RoleDevice:
		r.serveDevice(newPeer(r.ctx, sc, sc.User(), remote, log), sc, id, chans, reqs, start)
	case RoleEngineer:
		r.serveEngineer(newPeer(r.ctx, sc, sc.User(), remote, log), sc, id, chans, reqs, start)
	}
}

// CloseSession cuts a session at once: it frees the device's registration,
// closes every channel spliced for it and the engineers' connections to it,
// and closes the device connection that registered it if it serves no
// other session. A lookup of the session that was already under way cannot
// register it or log an engineer in to it again. The session need not be
// known to this relay.
func (r *Relay) CloseSession(id string) {
	if r.cutSession(id, errSessionClosed, nil) {
		r.log.Info("session closed", "session", id)
	}
}

// cutSession cuts session id for cause; only s if s is not nil. It reports
// whether the relay held anything of the session.
func (r *Relay) cutSession(id string, cause error, only *session) bool {
	r.mu.Lock()
	s := r.sessions[id]
	if only != nil && s != only {
		r.mu.Unlock()
		return false
	}
	r.cutSessions.add(id, time.Now())
	if s == nil {
		r.mu.Unlock()
		return false
	}
	r.dropSessionLocked(s)
	var lone *deviceConn // the device connection left with nothing to serve
	if dev := s.device; dev != nil {
		delete(dev.regs, id)
		s.device = nil
		if len(dev.regs) == 0 {
			lone = dev
		}
	}
	engineers := slices.Collect(maps.Keys(s.engineers))
	r.mu.Unlock()

	s.cancel(cause) // cuts its splices, wakes engineers waiting for the device
	for _, e := range engineers {
		e.close(cause)
	}
	// A device's SSH connection serves the sessions it registered and is
	// closed with the last; one of the second protocol is shared by the
	// device's sessions, and may be registering the next one now: it is
	// closed only if it stays without one (see lingerCheck).
	if lone != nil && !lone.shared {
		lone.close(cause)
	}
	return true
}

// DisconnectDevice closes every connection of a device, for instance one
// that was just deleted, and frees the sessions they registered. A login of
// the device that was already under way is refused too.
func (r *Relay) DisconnectDevice(fleet, device string) {
	name := fleet + "/" + device
	r.mu.Lock()
	r.cutDevices.add(name, time.Now())
	devs := slices.Collect(maps.Keys(r.devices[name]))
	r.mu.Unlock()
	for _, dev := range devs {
		r.removeDevice(dev, errDeviceDeleted)
	}
	if len(devs) > 0 {
		r.log.Info("device disconnected", "device", name, "connections", len(devs))
	}
}

// Close stops the relay: it closes its listeners and every connection and
// waits for all of its goroutines. A second Close returns ErrClosed.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	r.closed = true
	listeners := slices.Collect(maps.Keys(r.listeners))
	conns := slices.Collect(maps.Keys(r.conns))
	for _, s := range r.sessions {
		if s.endTimer != nil {
			s.endTimer.Stop()
		}
	}
	r.mu.Unlock()

	r.cancel(errRelayClosed)
	for _, l := range listeners {
		_ = l.Close()
	}
	for _, c := range conns {
		_ = c.Close()
	}
	r.wg.Wait()
	return nil
}

// Stats returns what the relay holds now.
func (r *Relay) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := Stats{Handshakes: r.handshakes.InUse(), Engineers: r.engineers, Splices: r.splices}
	for _, set := range r.devices {
		st.Devices += len(set)
	}
	for _, s := range r.sessions {
		if s.device != nil {
			st.Registrations++
		}
	}
	return st
}

// Sessions lists the sessions the relay holds anything of (a device's
// registration, an engineer waiting or spliced), for a server node that
// may have missed their close to check them again.
func (r *Relay) Sessions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Collect(maps.Keys(r.sessions))
}

// Holds reports whether the relay holds anything of session id.
func (r *Relay) Holds(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sessions[id] != nil
}

// sessionLocked returns the relay's state of session id, made if need be,
// and sets its end.
func (r *Relay) sessionLocked(id string, ends time.Time) *session {
	s := r.sessions[id]
	if s == nil {
		ctx, cancel := context.WithCancelCause(r.ctx)
		s = &session{id: id, ctx: ctx, cancel: cancel, ready: make(chan struct{}), engineers: make(map[*engineerConn]struct{})}
		r.sessions[id] = s
	}
	if !ends.IsZero() && !ends.Equal(s.ends) {
		s.ends = ends
		if s.endTimer != nil {
			s.endTimer.Stop()
		}
		s.endTimer = time.AfterFunc(ends.Sub(r.cfg.Now()), func() {
			if r.cutSession(id, errSessionEnded, s) {
				r.log.Info("session reached its end", "session", id)
			}
		})
	}
	return s
}

// dropIfUnusedLocked forgets s once no device serves it and no engineer is
// connected to it.
func (r *Relay) dropIfUnusedLocked(s *session) {
	if s.device == nil && len(s.engineers) == 0 && r.sessions[s.id] == s {
		r.dropSessionLocked(s)
		s.cancel(errConnEnded)
	}
}

func (r *Relay) dropSessionLocked(s *session) {
	delete(r.sessions, s.id)
	if s.endTimer != nil {
		s.endTimer.Stop()
	}
}

// touch reports the engineer's activity on s, at most once per
// ActivityInterval.
func (r *Relay) touch(s *session) {
	now := r.cfg.Now().UnixNano()
	last := s.lastActivity.Load()
	if last != 0 && now-last < int64(r.cfg.ActivityInterval) {
		return
	}
	if s.lastActivity.CompareAndSwap(last, now) {
		r.cfg.Activity(s.id)
	}
}

// tombstones remember when sessions or devices were cut, so that a lookup
// that began before the cut, and returns after it, cannot undo it.
type tombstones struct {
	ttl    time.Duration
	at     map[string]time.Time
	pruned time.Time
}

func (t *tombstones) add(key string, now time.Time) {
	if t.at == nil {
		t.at = make(map[string]time.Time)
	}
	if now.Sub(t.pruned) > t.ttl {
		for k, at := range t.at {
			if now.Sub(at) > t.ttl {
				delete(t.at, k)
			}
		}
		t.pruned = now
	}
	t.at[key] = now
}

// cutSince reports whether key was cut at or after start. The caller must
// not ask about a start older than ttl.
func (t *tombstones) cutSince(key string, start time.Time) bool {
	at, ok := t.at[key]
	return ok && !at.Before(start)
}
