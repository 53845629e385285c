package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/relay/relayproto"
)

// The relay's second protocol on the device's side (package relayproto
// documents the flow): one TLS connection to the relay's port (the
// server's own, or that of the relay node the session was placed on, as
// its open command says), to which the relay is routed by ALPN, carries
// every session of the device on that relay.
// Each session is a registration stream the device opens; each engineer a
// stream the relay opens. The connection is dialled for the first session
// and closed when the last one ends, so an idle device holds none. A server
// that predates the protocol is told apart by ALPN, and the session falls
// back to the SSH relay its open command names.

// errNoV2 means the server does not speak the relay's second protocol.
var errNoV2 = errors.New("the server does not speak the relay's second protocol")

// muxKeepAlive is how often the device checks on its relay connection; a
// relay that leaves a check unanswered this long is gone.
const muxKeepAlive = 10 * time.Second

// relayLinks holds the device's connections of the second protocol, one
// per relay address.
type relayLinks struct {
	t *Tunnels
	// dialMu holds a lock per relay address, held while dialling it, so
	// that sessions opened at once on one relay share one connection
	// while a relay that does not answer holds up no other. mu is never
	// held while dialling: the engineers' streams and the other sessions'
	// registrations and ends go on meanwhile.
	dialMu sync.Map // relay address → *sync.Mutex
	mu     sync.Mutex
	// cur are the live connections by relay address; guarded by mu.
	cur map[string]*relayLink
}

// relayLink is one connection and the sessions it serves.
type relayLink struct {
	addr  string
	mux   *yamux.Session
	conn  *relayproto.Conn   // its reply to the hello, once read
	users int                // guarded by relayLinks.mu
	regs  map[string]*tunnel // guarded by relayLinks.mu: the sessions registered on it
}

// relayAddr is where the second protocol is served for a session: the
// relay its open command placed it on (placed), or else the server's own
// port; and the enrollment's server URL, for the TLS configuration (the
// server's pinned certificate, which every node of it presents).
func (t *Tunnels) relayAddr(placed string) (string, *url.URL, error) {
	u, err := url.Parse(t.state.Enrollment.Server)
	if err != nil || u.Host == "" {
		return "", nil, fmt.Errorf("the enrollment record's server %q is not a URL", t.state.Enrollment.Server)
	}
	if placed != "" {
		return placed, u, nil
	}
	return apiclient.ServerAddr(u), u, nil
}

// acquire returns the live connection to addr, dialling one if need be,
// counted as used by one more session.
func (ls *relayLinks) acquire(ctx context.Context, addr string, u *url.URL) (*relayLink, error) {
	if l := ls.take(addr); l != nil {
		return l, nil
	}
	m, _ := ls.dialMu.LoadOrStore(addr, &sync.Mutex{})
	dialing := m.(*sync.Mutex)
	dialing.Lock()
	defer dialing.Unlock()
	if l := ls.take(addr); l != nil { // dialled while this one waited
		return l, nil
	}
	l, err := ls.dial(ctx, addr, u)
	if err != nil {
		return nil, err
	}
	ls.mu.Lock()
	if ls.cur == nil {
		ls.cur = map[string]*relayLink{}
	}
	ls.cur[addr] = l
	ls.mu.Unlock()
	ls.t.wg.Go(func() { ls.accept(l) })
	return l, nil
}

// take returns the live connection to addr counted as used by one more
// session, or nil if there is none.
func (ls *relayLinks) take(addr string) *relayLink {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if l := ls.cur[addr]; l != nil && !l.mux.IsClosed() {
		l.users++
		return l
	}
	return nil
}

// dial makes a new connection to addr, used by one session.
func (ls *relayLinks) dial(ctx context.Context, addr string, u *url.URL) (*relayLink, error) {
	t := ls.t
	cfg, err := brokerTLS(u, &t.state.Enrollment, BrokerConfig{})
	if err != nil {
		return nil, err
	}
	tc, err := t.dialRelay(ctx, addr, cfg)
	if err != nil {
		return nil, err
	}
	// The multiplexer starts without waiting for the relay's reply, so
	// that the first registration travels with the hello (a round trip
	// less); its first read takes the reply, and a refusal ends it (see
	// register).
	conn := relayproto.NewConn(tc)
	mux, err := relayproto.Mux(conn, false, muxKeepAlive)
	if err != nil {
		_ = tc.Close()
		return nil, err
	}
	return &relayLink{addr: addr, mux: mux, conn: conn, users: 1, regs: map[string]*tunnel{}}, nil
}

// dialRelay reaches the relay on the server's port and sends the device's
// hello, without waiting for the answer: by TLS asking for the relay's ALPN
// protocol, or, when that fails (a network that lets HTTPS out but
// inspects what TLS clients ask for), by a WebSocket; errNoV2 if the
// server does not speak the protocol.
func (t *Tunnels) dialRelay(ctx context.Context, addr string, cfg *tls.Config) (net.Conn, error) {
	hello := relayproto.Hello{Role: relayproto.RoleDevice, Fleet: t.state.Enrollment.Fleet, Device: t.state.Enrollment.Name}
	tc, err := relayproto.Dial(ctx, addr, cfg, t.netDial)
	if errors.Is(err, relayproto.ErrNotSupported) {
		return nil, errNoV2
	}
	var nc net.Conn
	var cs tls.ConnectionState
	if err == nil {
		nc, cs = tc, tc.ConnectionState()
	} else if ctx.Err() == nil {
		ws, wcs, werr := relayproto.DialWebSocket(ctx, addr, relayproto.WebSocketPath, relayproto.ALPN, cfg, t.netDial)
		if werr != nil {
			return nil, err // the first failure says more
		}
		t.log.Info("reached the relay by a WebSocket: its own protocol did not get through", "err", err)
		nc, cs = ws, wcs
	} else {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetWriteDeadline(dl)
	}
	if err := relayproto.SendHelloBound(nc, cs, t.state.Key, hello); err != nil {
		_ = nc.Close()
		return nil, err
	}
	_ = nc.SetWriteDeadline(time.Time{})
	return nc, nil
}

// release counts one session out of l; the last one closes it.
func (ls *relayLinks) release(l *relayLink, session string) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	delete(l.regs, session)
	if l.users--; l.users > 0 {
		return
	}
	if ls.cur[l.addr] == l {
		delete(ls.cur, l.addr)
	}
	_ = l.mux.Close()
}

// register opens tn's registration stream on l; the registration lasts as
// long as the stream.
func (ls *relayLinks) register(ctx context.Context, l *relayLink, tn *tunnel) (*yamux.Stream, error) {
	ls.mu.Lock()
	l.regs[tn.id] = tn
	ls.mu.Unlock()
	st, err := l.mux.OpenStream()
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = st.SetDeadline(time.Now()) })
	defer stop()
	if err := relayproto.WriteFrame(st, relayproto.Register{Session: tn.id}); err != nil {
		_ = st.Close()
		return nil, err
	}
	if err := relayproto.ReadReply(st); err != nil {
		_ = st.Close()
		if refused := l.conn.Refusal(); refused != nil {
			err = refused // the relay refused the hello: that ended the stream
		}
		if _, ok := errors.AsType[*relayproto.ReplyError](err); ok {
			return nil, fmt.Errorf("%w: %w", errRefused, err)
		}
		return nil, err
	}
	_ = st.SetDeadline(time.Time{})
	return st, nil
}

// accept serves the streams the relay opens on l, one per engineer, until
// l closes.
func (ls *relayLinks) accept(l *relayLink) {
	for {
		st, err := l.mux.AcceptStream()
		if err != nil {
			return
		}
		ls.t.wg.Go(func() { ls.serveStream(l, st) })
	}
}

// serveStream takes an engineer's stream for a session registered on l and
// serves the embedded SSH server on it, or says why not.
func (ls *relayLinks) serveStream(l *relayLink, st *yamux.Stream) {
	_ = st.SetDeadline(time.Now().Add(relayDialTimeout))
	var h relayproto.StreamHeader
	if err := relayproto.ReadFrame(st, &h); err != nil {
		_ = st.Close()
		return
	}
	ls.mu.Lock()
	tn := l.regs[h.Session]
	ls.mu.Unlock()
	if tn == nil || tn.ctx.Err() != nil {
		_ = relayproto.WriteFrame(st, relayproto.Reply{Error: "this device serves no session " + h.Session + " now", Code: relayproto.CodeClosed})
		_ = st.Close()
		return
	}
	if err := relayproto.WriteFrame(st, relayproto.Reply{OK: true}); err != nil {
		_ = st.Close()
		return
	}
	_ = st.SetDeadline(time.Time{})
	conn := streamConn{Stream: st, remote: engineerAddr(h.From)}
	if !tn.goServe(func() {
		if err := ls.t.srv.ServeConn(tn.ctx, conn, tn.id); err != nil {
			ls.t.log.Info("engineer connection ended", "session", tn.id, "err", err)
		}
		_ = st.Close()
	}) {
		_ = st.Close() // the session ended meanwhile
	}
}

// streamConn is an engineer's stream with the engineer's address as the
// relay saw it.
type streamConn struct {
	*yamux.Stream
	remote net.Addr
}

func (c streamConn) RemoteAddr() net.Addr { return c.remote }

// Write sends p in frames that each fit one TLS record (see
// relayproto.MaxChunk).
func (c streamConn) Write(p []byte) (int, error) { return relayproto.WriteChunks(c.Stream, p) }

// engineerAddr reads the relay's "host:port" of an engineer; anything else
// stands for an unknown address.
func engineerAddr(s string) net.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return net.TCPAddrFromAddrPort(ap)
	}
	return &net.TCPAddr{IP: net.IPv4zero}
}

// registration is a session's hold on a relay link: closing it ends the
// registration and releases the link.
type registration struct {
	ls   *relayLinks
	l    *relayLink
	st   *yamux.Stream
	id   string
	once sync.Once
}

func (r *registration) Close() error {
	r.once.Do(func() {
		_ = r.st.Close()
		r.ls.release(r.l, r.id)
	})
	return nil
}

// ended is closed when the relay ends the registration (the session was
// cut, or the connection dropped).
func (r *registration) ended() <-chan struct{} {
	done := make(chan struct{})
	r.ls.t.wg.Go(func() {
		_, _ = io.Copy(io.Discard, r.st)
		close(done)
	})
	return done
}
