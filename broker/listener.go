package broker

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// deviceConn is one accepted connection as the MQTT library sees it. It
// carries the identity the auth hook proved, so the ACL hook reads a
// recorded fact instead of re-parsing what the client sent.
type deviceConn struct {
	net.Conn
	identity atomic.Pointer[identity] // nil until authenticated
}

// listener adapts a caller's net.Listener to mochi's listeners.Listener (whose
// own TCP listener only takes an address). Unlike mochi's, it bounds the time
// to authenticate, keeps track of every connection so Close ends even those
// still in their handshake, and lets the Broker wait for them.
type listener struct {
	id             string
	ln             net.Listener
	log            *slog.Logger
	connectTimeout time.Duration
	ended          func(*deviceConn, error) // called once per connection when it is done

	wg sync.WaitGroup // one per connection goroutine

	mu     sync.Mutex
	closed bool                     // guarded by mu
	conns  map[*deviceConn]struct{} // guarded by mu
}

var _ listeners.Listener = (*listener)(nil)

func (l *listener) ID() string                  { return l.id }
func (l *listener) Address() string             { return l.ln.Addr().String() }
func (l *listener) Protocol() string            { return l.ln.Addr().Network() }
func (l *listener) Init(*slog.Logger) error     { return nil }
func (l *listener) Serve(listeners.EstablishFn) {} // the Broker runs serve instead, on the caller's goroutine

// serve accepts until the listener is closed. It returns ErrClosed after
// Close, or the listener's error if the caller closed it.
func (l *listener) serve(establish listeners.EstablishFn) error {
	var backoff time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if l.isClosed() {
				return ErrClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.log.Warn("accepting an MQTT connection failed; retrying", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		dc := &deviceConn{Conn: c}
		if !l.track(dc) {
			c.Close()
			return ErrClosed
		}
		go l.handle(dc, establish)
	}
}

func (l *listener) handle(dc *deviceConn, establish listeners.EstablishFn) {
	defer l.wg.Done()
	// Covers the TLS handshake, CONNECT and authentication; once the
	// session is up, mochi replaces it with the keep-alive deadline.
	_ = dc.SetDeadline(time.Now().Add(l.connectTimeout))
	err := establish(l.id, dc)
	_ = dc.Close() // mochi closes it too, except on some early errors
	l.ended(dc, err)
	l.untrack(dc) // last: a tracked connection may still be reporting its end
}

// track registers a new connection, or reports false if the listener is
// closing and the connection must not start.
func (l *listener) track(dc *deviceConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.conns[dc] = struct{}{}
	l.wg.Add(1)
	return true
}

func (l *listener) untrack(dc *deviceConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, dc)
}

func (l *listener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// Close is called by mochi's Server.Close: it stops accepting, lets mochi
// send DISCONNECT to the established clients, then cuts every connection
// still open (those in their handshake are not mochi's clients yet).
func (l *listener) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	// A device that does not read its DISCONNECT must not hold Close up.
	for dc := range l.conns {
		_ = dc.SetWriteDeadline(time.Now().Add(closeWriteGrace))
	}
	l.mu.Unlock()

	_ = l.ln.Close()
	closeClients(l.id)

	l.mu.Lock()
	for dc := range l.conns {
		_ = dc.Close()
	}
	l.mu.Unlock()
}
