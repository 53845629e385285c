// Package testnet gives tests the small network parts they keep needing: a
// TCP echo service on loopback (a device's local service an engineer
// forwards to) and a buffer a writer goroutine and a polling test share.
// Only tests import it.
package testnet

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
)

// Echo listens on 127.0.0.1, answers whatever each connection sends with
// itself, and returns its address. It stops, its connections closed and
// its goroutines ended, when the test ends.
func Echo(t testing.TB) *net.TCPAddr {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				io.Copy(c, c)
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			})
		}
	})
	return ln.Addr().(*net.TCPAddr)
}

// Buffer is a bytes.Buffer safe for a writer goroutine and a reader that
// polls it.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
