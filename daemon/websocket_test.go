package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/eclipse/paho.golang/paho"
	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/relay/relayproto"
)

// dialWebSocket opens a WebSocket on the dev server's port, pinned as the
// agent pins it, and returns it as a connection with the TLS state it came
// over.
func dialWebSocket(t *testing.T, c DevCredentials, path, subprotocol string) (net.Conn, tls.ConnectionState) {
	t.Helper()
	u, err := url.Parse(c.Server)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, // the pin below is the check
		VerifyConnection: func(cs tls.ConnectionState) error {
			if got := apiclient.Fingerprint(cs.PeerCertificates[0]); got != c.Fingerprint {
				return fmt.Errorf("certificate %s; pinned %s", got, c.Fingerprint)
			}
			return nil
		},
	}}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, "wss://"+u.Host+path, &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: tr}, Subprotocols: []string{subprotocol}})
	if err != nil {
		t.Fatalf("WebSocket to %s: %v", path, err)
	}
	if ws.Subprotocol() != subprotocol || resp.TLS == nil {
		t.Fatalf("subprotocol %q, TLS %v", ws.Subprotocol(), resp.TLS != nil)
	}
	nc := websocket.NetConn(context.Background(), ws, websocket.MessageBinary)
	t.Cleanup(func() { nc.Close() })
	return nc, *resp.TLS
}

// TestWebSockets: over WebSockets on the API's port, a device logs in to
// the embedded broker (and shows online) and to the relay, whose hello is
// bound to the TLS connection under the WebSocket; a hello not signed for
// that connection is refused there as on ALPN.
func TestWebSockets(t *testing.T) {
	t.Parallel()
	c := runDev(t)
	admin, err := apiclient.New(c.Server, apiclient.Options{Token: c.Token, Fingerprint: c.Fingerprint})
	if err != nil {
		t.Fatal(err)
	}
	d := enrollDevice(t, c, "wsdev")

	// MQTT
	conn, _ := dialWebSocket(t, c, MQTTWebSocketPath, "mqtt")
	username, _ := control.DeviceUsername(d.fleet, d.name)
	mc := paho.NewClient(paho.ClientConfig{Conn: conn})
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	if ca, err := mc.Connect(ctx, &paho.Connect{
		ClientID: username, Username: username, UsernameFlag: true, PasswordFlag: true,
		Password: []byte(control.DevicePassword(d.priv, d.fleet, d.name, time.Now())), KeepAlive: 30, CleanStart: true,
	}); err != nil {
		t.Fatalf("MQTT over a WebSocket: %v %+v", err, ca)
	}
	waitDevice(t, admin, "wsdev", "online", func(d apitype.Device) bool { return d.Online })
	_ = mc.Disconnect(&paho.Disconnect{})

	// The relay
	key, err := ssh.NewSignerFromKey(d.priv)
	if err != nil {
		t.Fatal(err)
	}
	hello := relayproto.Hello{Role: relayproto.RoleDevice, Fleet: d.fleet, Device: d.name}
	rc, cs := dialWebSocket(t, c, relayproto.WebSocketPath, relayproto.ALPN)
	binding, err := relayproto.Binding(cs)
	if err != nil {
		t.Fatal(err)
	}
	env, _ := relayproto.Sign(key, binding, hello)
	if err := relayproto.WriteFrame(rc, env); err != nil {
		t.Fatal(err)
	}
	rc.SetReadDeadline(time.Now().Add(waitTimeout))
	if err := relayproto.ReadReply(rc); err != nil {
		t.Fatalf("the relay over a WebSocket refused the device: %v", err)
	}
	// The same hello on another WebSocket: another TLS connection.
	other, _ := dialWebSocket(t, c, relayproto.WebSocketPath, relayproto.ALPN)
	relayproto.WriteFrame(other, env)
	other.SetReadDeadline(time.Now().Add(waitTimeout))
	if err := relayproto.ReadReply(other); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("a hello replayed on another WebSocket: %v; want refused", err)
	}
}
