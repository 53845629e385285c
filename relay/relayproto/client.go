package relayproto

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// ErrNotSupported is Dial's error when the server did not take the ALPN
// protocol: it predates the second protocol, and the client should use the
// SSH relay it names.
var ErrNotSupported = errors.New("relayproto: the server does not speak the relay's second protocol")

// NetDial dials a TCP connection; nil stands for a net.Dialer's. It is the
// same type as proxydial.DialFunc.
type NetDial = func(ctx context.Context, network, addr string) (net.Conn, error)

// Dial connects to the relay at addr (host:port) by TLS with a clone of
// cfg asking for ALPN, through netDial (for a proxy), and checks that the
// server took the protocol.
func Dial(ctx context.Context, addr string, cfg *tls.Config, netDial NetDial) (*tls.Conn, error) {
	if netDial == nil {
		var d net.Dialer
		netDial = d.DialContext
	}
	nc, err := netDial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := cfg.Clone()
	if c == nil {
		c = &tls.Config{}
	}
	// http/1.1 too, so that a server that predates the protocol (or an
	// HTTPS server that is not Porthole's) completes the handshake and is
	// told apart by what it chose, rather than failing it.
	c.NextProtos = []string{ALPN, "http/1.1"}
	c.MinVersion = tls.VersionTLS13
	if c.ServerName == "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			c.ServerName = host
		}
	}
	held := NewHeldConn(nc)
	tc := tls.Client(held, c)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = nc.Close()
		return nil, err
	}
	if tc.ConnectionState().NegotiatedProtocol != ALPN {
		_ = tc.Close()
		return nil, ErrNotSupported
	}
	return tc, nil
}

// SendHello signs h with signer for the connection tc and sends it. It
// does not wait for the relay's reply.
func SendHello(tc *tls.Conn, signer ssh.Signer, h Hello) error {
	return SendHelloBound(tc, tc.ConnectionState(), signer, h)
}

// SendHelloBound signs h for the TLS connection cs and sends it on c,
// which runs over that connection (a WebSocket, say).
func SendHelloBound(c net.Conn, cs tls.ConnectionState, signer ssh.Signer, h Hello) error {
	binding, err := Binding(cs)
	if err != nil {
		return err
	}
	env, err := Sign(signer, binding, h)
	if err != nil {
		return err
	}
	return WriteFrame(c, env)
}

// ReadReply reads the relay's reply; a refusal is a *ReplyError.
func ReadReply(c net.Conn) error {
	var rep Reply
	if err := ReadFrame(c, &rep); err != nil {
		return fmt.Errorf("relayproto: reading the relay's reply: %w", err)
	}
	return rep.Err()
}

// Conn is an engineer's connection to the relay, after its hello: what is
// written goes to the device once the relay has joined the two (it is held
// until then), and the first Read waits for the relay's reply, returning
// its refusal as an error.
type Conn struct {
	net.Conn
	once  sync.Once
	ready chan struct{}
	err   error
	// chunked: writes are cut to MaxChunk (an engineer's stream, which the
	// relay forwards frame by frame); a device's multiplexer writes whole
	// frames.
	chunked bool
}

// DialEngineer dials the relay at addr and says hello as the holder of
// the session certificate cert, whose key signer holds.
func DialEngineer(ctx context.Context, addr string, cfg *tls.Config, netDial NetDial, signer ssh.Signer, cert *ssh.Certificate) (*Conn, error) {
	tc, err := Dial(ctx, addr, cfg, netDial)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = tc.SetWriteDeadline(dl)
	}
	if err := SendHello(tc, signer, Hello{Role: RoleEngineer, Cert: cert.Marshal()}); err != nil {
		_ = tc.Close()
		return nil, err
	}
	_ = tc.SetWriteDeadline(time.Time{})
	return NewEngineerConn(tc), nil
}

// NewConn is c, on which a hello was sent, with the relay's reply still
// to read: its first Read reads it. A device may start its multiplexer on
// it at once, so that its first registration travels with the hello.
func NewConn(c net.Conn) *Conn {
	return &Conn{Conn: c, ready: make(chan struct{})}
}

// CloseWrite half-closes the connection where it can (TLS); a WebSocket
// cannot, and is left open.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Refusal is the relay's refusal of the hello once its reply has been
// read, or nil.
func (c *Conn) Refusal() error {
	select {
	case <-c.ready:
		if _, ok := errors.AsType[*ReplyError](c.err); ok {
			return c.err
		}
	default:
	}
	return nil
}

// Wait reads the relay's reply, once: nil when the device is joined.
func (c *Conn) Wait() error {
	c.once.Do(func() {
		c.err = ReadReply(c.Conn)
		close(c.ready)
	})
	return c.err
}

// Ready is closed once the relay's reply has been read.
func (c *Conn) Ready() <-chan struct{} { return c.ready }

// Write sends p in one system call; an engineer's in pieces that the
// relay forwards as whole records (see MaxChunk).
func (c *Conn) Write(p []byte) (int, error) {
	write := c.Conn.Write
	if c.chunked {
		write = func(p []byte) (int, error) { return WriteChunks(c.Conn, p) }
	}
	return HeldUnder(c.Conn).Gather(p, write)
}

// Read waits for the relay's reply, then reads the device's bytes.
func (c *Conn) Read(p []byte) (int, error) {
	if err := c.Wait(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

// HeldUnder is the HeldConn under a TLS connection c, or nil: where its
// writes may be gathered (Gather).
func HeldUnder(c net.Conn) *HeldConn {
	if tc, ok := c.(*tls.Conn); ok {
		if held, ok := tc.NetConn().(*HeldConn); ok {
			return held
		}
	}
	return nil
}

// ClosedByPeer reports whether err is a connection that was made and then
// closed by the other end before anything was said (a dial that failed is
// not): what the relay does to a connection past its caps on connections
// in their handshake, so a client says the relay is busy, not that it
// refused.
func ClosedByPeer(err error) bool {
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "dial" {
		return false
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	for _, e := range peerClosedErrnos {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
