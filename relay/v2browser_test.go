package relay

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/internal/testtls"
	"github.com/porthole/porthole/relay/relayproto"
)

// wsEnv is a v2Env whose relay also takes WebSockets at
// relayproto.WebSocketPath behind a real TLS server, as portholed's API
// port does.
type wsEnv struct {
	*v2Env
	wsAddr string
	wsTLS  *tls.Config
}

func newWSEnv(t testing.TB, tweak func(*Config)) *wsEnv {
	t.Helper()
	e := newV2Env(t, tweak)
	cert, client := testtls.Pair(t, "api.test")
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+relayproto.WebSocketPath, e.relay.ServeWebSocket)
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return &wsEnv{v2Env: e, wsAddr: l.Addr().String(), wsTLS: client}
}

// browser opens a WebSocket of the browser's subprotocol, as the console's
// terminal does, and reads the relay's challenge.
func (e *wsEnv) browser(t testing.TB) (net.Conn, relayproto.Challenge) {
	t.Helper()
	nc, _, err := relayproto.DialWebSocket(context.Background(), e.wsAddr, relayproto.WebSocketPath, relayproto.BrowserSubprotocol, e.wsTLS, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	var ch relayproto.Challenge
	if err := relayproto.ReadFrame(nc, &ch); err != nil {
		t.Fatalf("reading the challenge: %v", err)
	}
	return nc, ch
}

// browserHello sends h signed by key over ch on nc and reads the reply.
func browserHello(t testing.TB, nc net.Conn, ch relayproto.Challenge, key ssh.Signer, h relayproto.Hello) error {
	t.Helper()
	b, err := relayproto.ChallengeBinding(ch)
	if err != nil {
		t.Fatal(err)
	}
	env, err := relayproto.Sign(key, b, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := relayproto.WriteFrame(nc, env); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer nc.SetReadDeadline(time.Time{})
	return relayproto.ReadReply(nc)
}

func engineerHelloOf(key ssh.Signer) relayproto.Hello {
	return relayproto.Hello{Role: relayproto.RoleEngineer, Cert: key.PublicKey().(*ssh.Certificate).Marshal()}
}

// TestV2BrowserSplice: an engineer's browser reaches the device over the
// WebSocket of the browser's subprotocol, its hello signed over the
// relay's challenge (relayproto.SendChallengeHello, as the console's
// terminal does), and the two are spliced; the CLI's WebSocket, bound to
// the TLS connection, works beside it.
func TestV2BrowserSplice(t *testing.T) {
	t.Parallel()
	e := newWSEnv(t, nil)
	e.open("ses_1", "acme", "dev1")
	e.open("ses_2", "acme", "dev1")
	dev := e.mustDevice(t, "acme", "dev1", e.enroll("acme", "dev1"))
	for _, id := range []string{"ses_1", "ses_2"} {
		if _, err := dev.register(id); err != nil {
			t.Fatal(err)
		}
	}
	key := e.certFor(t, newSigner(t), claimsFor("ses_1", "acme", "dev1"))
	nc, _, err := relayproto.DialWebSocket(context.Background(), e.wsAddr, relayproto.WebSocketPath, relayproto.BrowserSubprotocol, e.wsTLS, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := relayproto.SendChallengeHello(nc, key, engineerHelloOf(key)); err != nil {
		t.Fatal(err)
	}
	c := relayproto.NewEngineerConn(nc)
	roundTrip(t, c, "hello from a browser")
	if h := <-dev.headers; h.Session != "ses_1" {
		t.Errorf("stream header = %+v; want ses_1", h)
	}

	key2 := e.certFor(t, newSigner(t), claimsFor("ses_2", "acme", "dev1"))
	cli, err := relayproto.DialEngineerWebSocket(context.Background(), e.wsAddr, e.wsTLS, nil, key2, key2.PublicKey().(*ssh.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	roundTrip(t, cli, "hello from the CLI")
	if n := e.refusalCount(); n != 0 {
		t.Errorf("%d refusals; want none", n)
	}
}

// TestV2BrowserRefusals tries the browser's binding as an attacker would:
// every refusal of the CLI's hello holds, a hello signed for one challenge
// is refused on another connection, and neither binding stands in for the
// other.
func TestV2BrowserRefusals(t *testing.T) {
	t.Parallel()
	e := newWSEnv(t, func(c *Config) { c.EarlyWait = 300 * time.Millisecond })
	devKey := e.enroll("acme", "dev1")
	e.enroll("acme", "dev2")
	e.open("ses_1", "acme", "dev1")
	e.open("ses_2", "acme", "dev2")
	e.open("ses_old", "acme", "dev1")
	e.closeSession("ses_old")

	t.Run("challenges are fresh", func(t *testing.T) {
		_, a := e.browser(t)
		_, b := e.browser(t)
		if len(a.Challenge) != relayproto.ChallengeSize || string(a.Challenge) == string(b.Challenge) {
			t.Fatalf("challenges %x and %x", a.Challenge, b.Challenge)
		}
	})
	t.Run("hello replayed on another connection", func(t *testing.T) {
		// Someone who saw a browser's hello (a proxy's log, a middle)
		// takes it to a connection of its own: its challenge differs.
		key := e.certFor(t, newSigner(t), claimsFor("ses_1", "acme", "dev1"))
		_, ch1 := e.browser(t)
		b1, _ := relayproto.ChallengeBinding(ch1)
		env, _ := relayproto.Sign(key, b1, engineerHelloOf(key))
		nc2, _ := e.browser(t)
		if err := relayproto.WriteFrame(nc2, env); err != nil {
			t.Fatal(err)
		}
		wantRefused(t, relayproto.ReadReply(nc2), "not signed by the certificate's key")
	})
	t.Run("another session's certificate", func(t *testing.T) {
		// The certificate of someone else's session, signed with one's
		// own key.
		other := e.certFor(t, newSigner(t), claimsFor("ses_1", "acme", "dev1"))
		nc, ch := e.browser(t)
		wantRefused(t, browserHello(t, nc, ch, newSigner(t), engineerHelloOf(other)), "not signed by the certificate's key")
	})
	t.Run("closed session", func(t *testing.T) {
		key := e.certFor(t, newSigner(t), claimsFor("ses_old", "acme", "dev1"))
		nc, ch := e.browser(t)
		wantRefused(t, browserHello(t, nc, ch, key, engineerHelloOf(key)), "session ses_old is closed")
	})
	t.Run("certificate names another device", func(t *testing.T) {
		key := e.certFor(t, newSigner(t), claimsFor("ses_2", "acme", "dev1"))
		nc, ch := e.browser(t)
		wantRefused(t, browserHello(t, nc, ch, key, engineerHelloOf(key)), "is not on device acme/dev1")
	})
	t.Run("certificate from another CA", func(t *testing.T) {
		key := certBy(t, newSigner(t), newSigner(t), claimsFor("ses_1", "acme", "dev1"))
		nc, ch := e.browser(t)
		wantRefused(t, browserHello(t, nc, ch, key, engineerHelloOf(key)), "session certificate refused")
	})
	t.Run("bare key", func(t *testing.T) {
		key := newSigner(t)
		nc, ch := e.browser(t)
		wantRefused(t, browserHello(t, nc, ch, key, relayproto.Hello{Role: relayproto.RoleEngineer, Cert: key.PublicKey().Marshal()}), "not a bare key")
	})
	t.Run("a device may not come this way", func(t *testing.T) {
		nc, ch := e.browser(t)
		wantRefused(t, browserHello(t, nc, ch, devKey, relayproto.Hello{Role: relayproto.RoleDevice, Fleet: "acme", Device: "dev1"}), "only engineers may")
	})
	t.Run("a hello bound to the TLS connection, on the browser's subprotocol", func(t *testing.T) {
		// The CLI's binding where the relay asked for its challenge's:
		// the signature is over other bytes.
		key := e.certFor(t, newSigner(t), claimsFor("ses_1", "acme", "dev1"))
		nc, cs, err := relayproto.DialWebSocket(context.Background(), e.wsAddr, relayproto.WebSocketPath, relayproto.BrowserSubprotocol, e.wsTLS, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		var ch relayproto.Challenge
		if err := relayproto.ReadFrame(nc, &ch); err != nil {
			t.Fatal(err)
		}
		if err := relayproto.SendHelloBound(nc, cs, key, engineerHelloOf(key)); err != nil {
			t.Fatal(err)
		}
		wantRefused(t, relayproto.ReadReply(nc), "not signed by the certificate's key")
	})
	t.Run("a hello over a challenge, on the CLI's subprotocol", func(t *testing.T) {
		// The relay sends no challenge there, and a hello signed over one
		// (here, a challenge of the attacker's choosing) does not verify
		// against the TLS connection's keying material.
		key := e.certFor(t, newSigner(t), claimsFor("ses_1", "acme", "dev1"))
		nc, _, err := relayproto.DialWebSocket(context.Background(), e.wsAddr, relayproto.WebSocketPath, relayproto.ALPN, e.wsTLS, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		wantRefused(t, browserHello(t, nc, relayproto.Challenge{Challenge: make([]byte, relayproto.ChallengeSize)}, key, engineerHelloOf(key)),
			"not signed by the certificate's key")
	})
	t.Run("garbage", func(t *testing.T) {
		for _, junk := range [][]byte{{0xff, 0xff}, []byte("\x00\x05hello"), []byte("SSH-2.0-OpenSSH_9.2\r\n"), []byte("\x00\x02{}")} {
			nc, _ := e.browser(t)
			_, _ = nc.Write(junk)
			_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			var rep relayproto.Reply
			if err := relayproto.ReadFrame(nc, &rep); err == nil && rep.OK {
				t.Errorf("junk %q was accepted", junk)
			}
		}
	})
	t.Run("another origin", func(t *testing.T) {
		// A page of another site cannot open the WebSocket in a visitor's
		// browser (it could do nothing with it without a session key,
		// but it is refused before that).
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: e.wsTLS}}
		_, resp, err := websocket.Dial(context.Background(), "wss://"+e.wsAddr+relayproto.WebSocketPath, &websocket.DialOptions{
			HTTPClient: hc, Subprotocols: []string{relayproto.BrowserSubprotocol},
			HTTPHeader: http.Header{"Origin": {"https://evil.example"}}})
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("a WebSocket from another origin: %v, %v; want 403", resp, err)
		}
	})
	t.Run("an unknown subprotocol", func(t *testing.T) {
		_, _, err := relayproto.DialWebSocket(context.Background(), e.wsAddr, relayproto.WebSocketPath, "porthole-relay/9", e.wsTLS, nil)
		if err == nil {
			t.Fatal("a WebSocket of an unknown subprotocol was taken")
		}
	})
}
