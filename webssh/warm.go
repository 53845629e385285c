package webssh

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/sshalgo"
)

// Warm runs the client's handshake code against an SSH server in memory,
// with each cipher family a device may choose, and returns when done. A browser compiles WebAssembly a function at a time, on its first
// call, and optimises the ones that run hot; the page runs Warm while it
// is prerendered (before Connect is pressed), so that the real handshake
// runs code that is already compiled, and optimised where it got hot. It
// reaches nothing and keeps nothing.
func Warm() error {
	_, hostKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	host, err := ssh.NewSignerFromKey(hostKey)
	if err != nil {
		return err
	}
	// Each family once, and AES-GCM (what a device with AES instructions
	// chooses) twice more, which got the handshake from the device
	// joining to the shell from about 60 ms to 41-44 in Chromium
	// (bench/README.md).
	for _, cipher := range []string{ssh.CipherAES128GCM, ssh.CipherChaCha20Poly1305, ssh.CipherAES128GCM, ssh.CipherAES128GCM} {
		if err := warmOnce(host, cipher); err != nil {
			return fmt.Errorf("webssh: warming the %s handshake: %w", cipher, err)
		}
	}
	return nil
}

func warmOnce(host ssh.Signer, cipher string) error {
	client, server := memPipe()
	defer client.Close()
	scfg := &ssh.ServerConfig{
		Config:       ssh.Config{KeyExchanges: sshalgo.KeyExchanges(), Ciphers: []string{cipher}},
		NoClientAuth: true, // a server of its own, in memory: there is nothing to guard
	}
	scfg.AddHostKey(host)
	served := make(chan error, 1)
	go func() {
		defer server.Close()
		conn, chans, reqs, err := ssh.NewServerConn(server, scfg)
		if err != nil {
			served <- err
			return
		}
		go ssh.DiscardRequests(reqs)
		go func() {
			for nc := range chans {
				_ = nc.Reject(ssh.Prohibited, "warming up")
			}
		}()
		served <- conn.Wait()
	}()
	c, chans, reqs, err := ssh.NewClientConn(client, "warm", &ssh.ClientConfig{
		Config:          sshalgo.Client(),
		User:            "warm",
		HostKeyCallback: ssh.FixedHostKey(host.PublicKey()),
	})
	if err != nil {
		return err
	}
	go ssh.DiscardRequests(reqs)
	go func() {
		for nc := range chans {
			_ = nc.Reject(ssh.Prohibited, "warming up")
		}
	}()
	_ = c.Close()
	<-served
	return nil
}

// memPipe is a connection in memory whose writes do not wait for the
// reader (net.Pipe's do, and both ends of SSH write their version line
// before reading the other's).
func memPipe() (net.Conn, net.Conn) {
	a, b := &memQueue{}, &memQueue{}
	a.cond.L, b.cond.L = &a.mu, &b.mu
	return &memConn{in: a, out: b}, &memConn{in: b, out: a}
}

// memQueue is one direction of a memPipe.
type memQueue struct {
	mu     sync.Mutex
	cond   sync.Cond
	buf    []byte // guarded by mu
	closed bool   // guarded by mu
}

func (q *memQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

type memConn struct{ in, out *memQueue }

func (c *memConn) Read(p []byte) (int, error) {
	q := c.in
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.buf) == 0 && !q.closed {
		q.cond.Wait()
	}
	if len(q.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, q.buf)
	q.buf = q.buf[n:]
	return n, nil
}

func (c *memConn) Write(p []byte) (int, error) {
	q := c.out
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return 0, net.ErrClosed
	}
	q.buf = append(q.buf, p...)
	q.mu.Unlock()
	q.cond.Broadcast()
	return len(p), nil
}

func (c *memConn) Close() error {
	c.in.close()
	c.out.close()
	return nil
}

type memAddr struct{}

func (memAddr) Network() string { return "memory" }
func (memAddr) String() string  { return "memory" }

func (c *memConn) LocalAddr() net.Addr              { return memAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return memAddr{} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }
