package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"testing"
	"time"

	"github.com/Microsoft/go-winio"
	"golang.org/x/crypto/ssh/agent"
)

// TestSessionAgentPipe: on Windows the proxy's agent lives on a named pipe
// (as ssh.exe opens it) until its first signature, a second proxy for the
// same name waits for the first's ssh to log in and hang up, and the pipe
// is gone once both are closed.
func TestSessionAgentPipe(t *testing.T) {
	ctx := context.Background()
	var b [6]byte
	rand.Read(b[:])
	pipe := pipePrefix + "porthole-test-" + hex.EncodeToString(b[:]) + "-dev1.porthole"
	key := newTestSigner(t)
	cert := testCert(t, key)
	first, err := serveSessionAgent(ctx, pipe, "dev1.porthole", key, cert, func(string) { t.Error("the first agent waited") })
	if err != nil {
		t.Fatal(err)
	}
	defer first.close()

	key2 := newTestSigner(t)
	waiting := make(chan string, 1)
	second := make(chan *sessionAgent, 1)
	go func() {
		s, err := serveSessionAgent(ctx, pipe, "dev1.porthole", key2, testCert(t, key2), func(what string) { waiting <- what })
		if err != nil {
			t.Error(err)
		}
		second <- s
	}()
	if what := <-waiting; what != "waiting for another ssh to dev1.porthole to log in…" {
		t.Errorf("the second proxy says %q", what)
	}

	dial := func() *agentConn {
		t.Helper()
		timeout := 5 * time.Second
		c, err := winio.DialPipe(pipe, &timeout)
		if err != nil {
			t.Fatal(err)
		}
		return &agentConn{c, agent.NewClient(c)}
	}
	c := dial()
	keys, err := c.ag.List()
	if err != nil || len(keys) != 1 || keys[0].Format != cert.Type() {
		t.Fatalf("List = %v, %v; want the one certificate", keys, err)
	}
	if _, err := c.ag.Sign(newTestSigner(t).PublicKey(), []byte("data")); err == nil {
		t.Error("the session agent signed for a key it does not have")
	}
	sig, err := c.ag.Sign(cert, []byte("data"))
	if err != nil {
		t.Fatal(err)
	}
	if err := key.PublicKey().Verify([]byte("data"), sig); err != nil {
		t.Errorf("the signature does not verify: %v", err)
	}
	select {
	case <-second:
		t.Fatal("the second proxy got the pipe while the first one's ssh is still connected")
	case <-time.After(3 * lockPoll):
	}
	c.Close() // ssh hangs up once logged in
	var s2 *sessionAgent
	select {
	case s2 = <-second:
	case <-time.After(10 * time.Second):
		t.Fatal("the second proxy never got the pipe")
	}
	defer s2.close()
	c2 := dial()
	defer c2.Close()
	keys, err = c2.ag.List()
	if err != nil || len(keys) != 1 || string(keys[0].Blob) == string(cert.Marshal()) {
		t.Errorf("the pipe after the hand-over lists %v, %v; want the second session's certificate", keys, err)
	}
}

type agentConn struct {
	io.Closer
	ag agent.ExtendedAgent
}
