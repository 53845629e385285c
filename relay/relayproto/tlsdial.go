//go:build !js

// The relay's TLS and multiplexer, which a browser's client (the web
// console's terminal, built for js/wasm) does without: its browser holds
// the TLS connection and it speaks to one stream, so leaving these out
// keeps crypto/tls and yamux out of the WebAssembly it loads.

package relayproto

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
	"golang.org/x/crypto/ssh"
)

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
	return sendSigned(c, signer, binding, h)
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

// Binding is the keying material of a TLS 1.3 connection that a hello is
// signed over. It fails for older versions, whose exporters are weaker.
func Binding(cs tls.ConnectionState) ([]byte, error) {
	if cs.Version != tls.VersionTLS13 {
		return nil, errors.New("relayproto: the relay speaks TLS 1.3 only")
	}
	return cs.ExportKeyingMaterial(exporterLabel, nil, 32)
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

// heldUnder is HeldUnder, for Conn's writes.
func heldUnder(c net.Conn) *HeldConn { return HeldUnder(c) }

// Window is each stream's receive window: a 100 ms, 100 Mbit/s path needs
// 1.25 MB in flight, and one stream (an scp) should fill it.
const Window = 4 << 20

// MuxConfig is the yamux configuration of a device connection, for both
// ends. A peer that leaves a ping unanswered for keepAlive after sending it
// (checked every keepAlive) is gone.
func MuxConfig(keepAlive time.Duration) *yamux.Config {
	c := yamux.DefaultConfig()
	c.MaxStreamWindowSize = Window
	c.EnableKeepAlive = true
	c.KeepAliveInterval = keepAlive
	c.ConnectionWriteTimeout = keepAlive
	c.StreamOpenTimeout = 30 * time.Second
	c.StreamCloseTimeout = 30 * time.Second
	c.LogOutput = io.Discard
	return c
}

// Mux starts the yamux session of a device connection: the relay is its
// client, the device its server.
func Mux(conn io.ReadWriteCloser, client bool, keepAlive time.Duration) (*yamux.Session, error) {
	conn = &gluedConn{ReadWriteCloser: conn}
	if client {
		return yamux.Client(conn, MuxConfig(keepAlive))
	}
	return yamux.Server(conn, MuxConfig(keepAlive))
}

// gluedConn writes each yamux data frame's header together with its body.
// yamux writes them apart, which over TLS costs a record (and a system
// call) of 12 bytes per frame; glued, a frame saves that record. Only
// yamux's send loop writes, one frame at a time, and a data frame's header
// is always followed by its body: a header is held only then, never one
// that has no body to wait for.
type gluedConn struct {
	io.ReadWriteCloser
	mu      sync.Mutex
	holding bool   // guarded by mu: buf holds a data frame's header waiting for its body
	buf     []byte // guarded by mu
}

func (g *gluedConn) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.holding {
		g.buf = append(g.buf, p...)
		g.holding = false
		_, err := g.ReadWriteCloser.Write(g.buf)
		return len(p), err
	}
	if len(p) == muxHeaderSize && p[1] == muxTypeData && binary.BigEndian.Uint32(p[8:]) > 0 {
		g.buf = append(g.buf[:0], p...)
		g.holding = true
		return len(p), nil
	}
	return g.ReadWriteCloser.Write(p)
}
