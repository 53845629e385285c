package daemon

import (
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/coder/websocket"

	"github.com/porthole/porthole/relay/relayproto"
)

// MQTTWebSocketPath is where the embedded broker takes MQTT over a
// WebSocket (subprotocol "mqtt", binary messages, as MQTT 5 §6 describes),
// on the API's port.
const MQTTWebSocketPath = relayproto.MQTTWebSocketPath

// handler is the API's port's HTTP side: the API and pages, and, over
// WebSockets for networks whose proxies pass only HTTP (and, later,
// browsers), the relay's second protocol and the embedded broker.
func (s *Server) handler(mqtt *connListener) http.Handler {
	mux := http.NewServeMux()
	if s.cfg.Has(RoleAPI) {
		mux.Handle("/", s.api.Handler())
	} else {
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
		mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "this Porthole node serves no API (roles: "+strings.Join(s.cfg.ServedRoles(), ", ")+"): use the API's address", http.StatusNotFound)
		})
	}
	if s.cfg.Has(RoleRelay) {
		mux.HandleFunc("GET "+relayproto.WebSocketPath, func(w http.ResponseWriter, r *http.Request) { s.relay.ServeWebSocket(w, r) })
	}
	if mqtt != nil {
		mux.HandleFunc("GET "+MQTTWebSocketPath, mqtt.serveWebSocket)
	}
	return mux
}

// connListener is a net.Listener of connections that arrived as
// WebSockets, for the broker to Serve.
type connListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }

// serveWebSocket hands an MQTT WebSocket to the broker and returns once the
// broker has closed it.
func (l *connListener) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"mqtt"}})
	if err != nil {
		return
	}
	if c.Subprotocol() != "mqtt" {
		c.Close(websocket.StatusPolicyViolation, `the broker speaks the WebSocket subprotocol "mqtt" only`)
		return
	}
	nc := &notifyConn{Conn: websocket.NetConn(r.Context(), c, websocket.MessageBinary), closed: make(chan struct{})}
	select {
	case l.conns <- nc:
	case <-l.done:
		nc.Close()
		return
	case <-r.Context().Done():
		nc.Close()
		return
	}
	<-nc.closed
}

// notifyConn says when it is closed.
type notifyConn struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

func (c *notifyConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.closed) })
	return err
}
