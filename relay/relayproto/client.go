package relayproto

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// ErrNotSupported is Dial's error when the server did not take the ALPN
// protocol: it predates the second protocol, and the client should use the
// SSH relay it names.
var ErrNotSupported = errors.New("relayproto: the server does not speak the relay's second protocol")

// NetDial dials a TCP connection; nil stands for a net.Dialer's. It is the
// same type as proxydial.DialFunc.
type NetDial = func(ctx context.Context, network, addr string) (net.Conn, error)

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
	return heldUnder(c.Conn).Gather(p, write)
}

// Read waits for the relay's reply, then reads the device's bytes.
func (c *Conn) Read(p []byte) (int, error) {
	if err := c.Wait(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
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
