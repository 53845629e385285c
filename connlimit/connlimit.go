// Package connlimit admits new connections to their handshake: at most Max
// at once overall and PerSource at once from one source (an IPv4 address,
// or an IPv6 /64, which a single host is commonly given whole), so that one
// source holding idle connections cannot take every slot. A connection over
// its source's share waits for one of its source's slots, among at most
// Queue others, rather than being cut at once: a burst from one network
// (fifty engineers behind one NAT, a device opening many sessions) is served
// a moment later, while a flood from one source is turned away.
package connlimit

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
)

var (
	// ErrFull: Max connections are in their handshake already.
	ErrFull = errors.New("connlimit: too many connections in their handshake")
	// ErrSourceFull: the connection's source has PerSource connections in
	// their handshake and Queue more waiting.
	ErrSourceFull = errors.New("connlimit: too many connections in their handshake from one source")
)

// Config sets a Limiter's bounds; a zero field means its default.
type Config struct {
	// Max caps connections admitted and not yet released, waiting ones
	// included. Zero: 256.
	Max int
	// PerSource caps connections of one source past their wait. Zero: 16.
	PerSource int
	// Queue caps connections of one source waiting for one of its slots;
	// past it Admit refuses. Zero: PerSource.
	Queue int
}

// Limiter admits connections. Its methods are safe for concurrent use.
type Limiter struct {
	max, per, queue int

	mu      sync.Mutex
	n       int                // guarded by mu: admitted, not released
	sources map[string]*source // guarded by mu
}

// source is one source's admitted connections.
type source struct {
	slots chan struct{} // a token per connection past its wait
	n     int           // guarded by Limiter.mu: admitted, not released
}

// New makes a Limiter.
func New(cfg Config) *Limiter {
	if cfg.Max <= 0 {
		cfg.Max = 256
	}
	if cfg.PerSource <= 0 {
		cfg.PerSource = 16
	}
	if cfg.Queue <= 0 {
		cfg.Queue = cfg.PerSource
	}
	return &Limiter{max: cfg.Max, per: cfg.PerSource, queue: cfg.Queue, sources: make(map[string]*source)}
}

// Ticket is one admitted connection's place: Wait for its slot, then
// Release it once the handshake is over (or the connection is).
type Ticket struct {
	l    *Limiter
	key  string
	src  *source
	once sync.Once
	held bool // set by Wait, read by Release: one goroutine's
}

// Admit takes a place for a connection from addr, without waiting: ErrFull
// or ErrSourceFull when there is none.
func (l *Limiter) Admit(addr net.Addr) (*Ticket, error) {
	key := Source(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n >= l.max {
		return nil, ErrFull
	}
	s := l.sources[key]
	if s == nil {
		s = &source{slots: make(chan struct{}, l.per)}
		l.sources[key] = s
	}
	if s.n >= l.per+l.queue {
		return nil, ErrSourceFull
	}
	s.n++
	l.n++
	return &Ticket{l: l, key: key, src: s}, nil
}

// Wait waits for one of the source's slots until ctx ends, and then returns
// its cause.
func (t *Ticket) Wait(ctx context.Context) error {
	select {
	case t.src.slots <- struct{}{}:
		t.held = true
		return nil
	default:
	}
	select {
	case t.src.slots <- struct{}{}:
		t.held = true
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Release gives the place back; later calls do nothing. Call it from the
// goroutine that called Wait.
func (t *Ticket) Release() {
	t.once.Do(func() {
		if t.held {
			<-t.src.slots
		}
		l := t.l
		l.mu.Lock()
		defer l.mu.Unlock()
		l.n--
		if t.src.n--; t.src.n == 0 {
			delete(l.sources, t.key)
		}
	})
}

// InUse is the number of connections admitted and not released.
func (l *Limiter) InUse() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// Source is the source a connection from addr counts against: its IPv4
// address, or its IPv6 /64; any other address as it is written.
func Source(addr net.Addr) string {
	if a, ok := addr.(*net.TCPAddr); ok {
		return sourceOfIP(a.AddrPort().Addr(), a.String())
	}
	return SourceOf(addr.String())
}

// SourceOf is Source for an address written as text, "ip:port" or "ip"
// alone; anything else is a source of its own. A single host is commonly
// given a whole IPv6 /64, so counting its addresses one by one would hand
// it 2^64 budgets.
func SourceOf(addr string) string {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return sourceOfIP(ap.Addr(), addr)
	}
	if ip, err := netip.ParseAddr(addr); err == nil {
		return sourceOfIP(ip, addr)
	}
	return addr
}

func sourceOfIP(ip netip.Addr, written string) string {
	ip = ip.WithZone("").Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, err := ip.Prefix(64)
	if err != nil {
		return written
	}
	return p.String()
}
