//go:build unix

package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/ssh/agent"
)

// TestSessionAgent: the proxy's agent shows ssh the session certificate
// and signs with its key, takes no keys, signs for no other key, lives on
// a 0600 socket only until its first signature, and makes a second proxy
// for the same host name wait for that.
func TestSessionAgent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	socket := filepath.Join(t.TempDir(), "agent", "dev1.porthole.sock")
	key := newTestSigner(t)
	cert := testCert(t, key)
	first, err := serveSessionAgent(ctx, socket, "dev1.porthole", key, cert, func(string) { t.Error("the first agent waited") })
	if err != nil {
		t.Fatal(err)
	}
	defer first.close()
	if fi, err := os.Stat(socket); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("agent socket: %v, %v; want mode 0600", fi, err)
	}
	if fi, err := os.Stat(filepath.Dir(socket)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("agent socket dir: %v, %v; want mode 0700", fi, err)
	}

	// A second proxy for the same name waits for the socket.
	key2 := newTestSigner(t)
	waiting := make(chan string, 1)
	second := make(chan *sessionAgent, 1)
	go func() {
		s, err := serveSessionAgent(ctx, socket, "dev1.porthole", key2, testCert(t, key2), func(what string) { waiting <- what })
		if err != nil {
			t.Error(err)
		}
		second <- s
	}()
	if what := <-waiting; what != "waiting for another ssh to dev1.porthole to log in…" {
		t.Errorf("the second proxy says %q", what)
	}

	c, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ag := agent.NewClient(c)
	keys, err := ag.List()
	if err != nil || len(keys) != 1 || keys[0].Format != cert.Type() {
		t.Fatalf("List = %v, %v; want the one certificate", keys, err)
	}
	if err := ag.Add(agent.AddedKey{PrivateKey: newTestSignerKey(t)}); err == nil {
		t.Error("the session agent took a key")
	}
	if err := ag.RemoveAll(); err == nil {
		t.Error("the session agent removed its keys")
	}
	if _, err := ag.Sign(newTestSigner(t).PublicKey(), []byte("data")); err == nil {
		t.Error("the session agent signed for a key it does not have")
	}
	select {
	case <-second:
		t.Fatal("the second proxy got the socket before the first one's ssh signed")
	case <-time.After(3 * lockPoll):
	}
	sig, err := ag.Sign(cert, []byte("data"))
	if err != nil {
		t.Fatal(err)
	}
	if err := key.PublicKey().Verify([]byte("data"), sig); err != nil {
		t.Errorf("the signature does not verify: %v", err)
	}
	var s2 *sessionAgent
	select {
	case s2 = <-second:
	case <-time.After(10 * time.Second):
		t.Fatal("the second proxy never got the socket")
	}
	defer s2.close()
	c2, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	keys, err = agent.NewClient(c2).List()
	if err != nil || len(keys) != 1 || string(keys[0].Blob) == string(cert.Marshal()) {
		t.Errorf("the socket after the hand-over lists %v, %v; want the second session's certificate", keys, err)
	}
	s2.close()
	if _, err := os.Stat(socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the socket is still there after close: %v", err)
	}
}

func newTestSignerKey(t *testing.T) any {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}
