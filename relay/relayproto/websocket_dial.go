//go:build !js

package relayproto

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"

	"github.com/coder/websocket"
	"golang.org/x/crypto/ssh"
)

// (Not in a browser: there the page's WebSocket is the browser's, and a
// hello is bound to a challenge, SendChallengeHello.)

// DialWebSocket opens a WebSocket to path on the server at addr (host:port)
// with subprotocol, by TLS with a clone of cfg (ALPN http/1.1, as any
// browser's), through netDial, and returns it as a connection with the TLS
// state it came over. It is the way in for a network that lets only HTTPS
// out and inspects what a TLS client asks for: a client that cannot reach
// the relay or the broker by their ALPN protocols tries this next.
func DialWebSocket(ctx context.Context, addr, path, subprotocol string, cfg *tls.Config, netDial NetDial) (net.Conn, tls.ConnectionState, error) {
	c := cfg.Clone()
	if c == nil {
		c = &tls.Config{}
	}
	c.NextProtos = []string{"http/1.1"}
	if c.ServerName == "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			c.ServerName = host
		}
	}
	tr := &http.Transport{TLSClientConfig: c, ForceAttemptHTTP2: false, Proxy: nil}
	if netDial != nil {
		tr.DialContext = netDial
	}
	defer tr.CloseIdleConnections()
	u := url.URL{Scheme: "wss", Host: addr, Path: path}
	ws, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: tr}, Subprotocols: []string{subprotocol}})
	if err != nil {
		return nil, tls.ConnectionState{}, fmt.Errorf("a WebSocket to %s: %w", u.String(), err)
	}
	if ws.Subprotocol() != subprotocol || resp.TLS == nil {
		ws.CloseNow()
		return nil, tls.ConnectionState{}, errors.New("relayproto: the server did not take the WebSocket's subprotocol")
	}
	// The connection's life is its own, not the dial's.
	return websocket.NetConn(context.Background(), ws, websocket.MessageBinary), *resp.TLS, nil
}

// DialEngineerWebSocket is DialEngineer over a WebSocket (see
// DialWebSocket).
func DialEngineerWebSocket(ctx context.Context, addr string, cfg *tls.Config, netDial NetDial, signer ssh.Signer, cert *ssh.Certificate) (*Conn, error) {
	nc, cs, err := DialWebSocket(ctx, addr, WebSocketPath, ALPN, cfg, netDial)
	if err != nil {
		return nil, err
	}
	if err := SendHelloBound(nc, cs, signer, Hello{Role: RoleEngineer, Cert: cert.Marshal()}); err != nil {
		_ = nc.Close()
		return nil, err
	}
	return NewEngineerConn(nc), nil
}
