package relay

import (
	"net/http"

	"github.com/coder/websocket"

	"github.com/porthole/porthole/relay/relayproto"
)

// ServeWebSocket serves the second protocol over a WebSocket at
// relayproto.WebSocketPath (binary messages), for networks whose proxies
// pass only HTTP and for browsers. A client asking for the subprotocol
// relayproto.ALPN binds its hello to this request's TLS connection, as on
// the relay's own port; a browser, which cannot read the TLS connection's
// keying material, asks for relayproto.BrowserSubprotocol and is sent a
// challenge to sign instead (ServeBrowserConn). The WebSocket library
// refuses a browser's request from another origin than the server's.
func (r *Relay) ServeWebSocket(w http.ResponseWriter, req *http.Request) {
	if req.TLS == nil {
		http.Error(w, "the relay is reached over TLS only", http.StatusBadRequest)
		return
	}
	c, err := websocket.Accept(w, req, &websocket.AcceptOptions{
		Subprotocols: []string{relayproto.ALPN, relayproto.BrowserSubprotocol}})
	if err != nil {
		return // Accept has answered
	}
	nc := websocket.NetConn(req.Context(), c, websocket.MessageBinary)
	switch c.Subprotocol() {
	case relayproto.ALPN:
		r.ServeConn(nc, *req.TLS)
	case relayproto.BrowserSubprotocol:
		r.ServeBrowserConn(nc)
	default:
		c.Close(websocket.StatusPolicyViolation, "the relay speaks the WebSocket subprotocols "+
			relayproto.ALPN+" and "+relayproto.BrowserSubprotocol+" only")
	}
}
