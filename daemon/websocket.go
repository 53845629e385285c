package daemon

import (
	"net/http"

	"github.com/coder/websocket"

	"github.com/porthole/porthole/relay/relayproto"
)

// handler is the API's port's HTTP side: the API and pages, and the
// relay's second protocol over a WebSocket, for networks whose proxies pass
// only HTTP (and, later, browsers).
func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", s.api.Handler())
	mux.HandleFunc("GET "+relayproto.WebSocketPath, s.relayWebSocket)
	return mux
}

// relayWebSocket carries one relay connection in binary messages; the
// hello inside is bound to this request's TLS connection.
func (s *Server) relayWebSocket(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil {
		http.Error(w, "the relay is reached over TLS only", http.StatusBadRequest)
		return
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{relayproto.ALPN}})
	if err != nil {
		return // Accept has answered
	}
	s.relay.ServeConn(websocket.NetConn(r.Context(), c, websocket.MessageBinary), *r.TLS)
}
