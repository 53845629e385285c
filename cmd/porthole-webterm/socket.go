//go:build js && wasm

package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall/js"
	"time"
)

// maxMessage bounds one message from the relay: its splice writes are
// far smaller.
const maxMessage = 1 << 20

// socketConn is a net.Conn over the relay's WebSocket, which the page
// opened as it started (binary messages, binaryType "arraybuffer") so that
// its TLS and upgrade were done while this client loaded. Each Write is one
// message; reads run on across messages.
type socketConn struct {
	ws    js.Value
	funcs []js.Func
	wake  chan struct{} // a message came or the socket closed
	once  sync.Once

	mu      sync.Mutex // guards the fields below
	pending [][]byte   // messages not yet read, the first maybe in part
	err     error      // why reads end, once the socket closed
}

// takeSocket takes ws from the page, with early, the messages that came
// on it before (an Array of ArrayBuffer): from now on its messages come
// here. It must run in the page's call (not in a goroutine), so that no
// message falls between the two.
func takeSocket(ws, early js.Value) *socketConn {
	c := &socketConn{ws: ws, wake: make(chan struct{}, 1)}
	for i := range early.Length() {
		c.add(early.Index(i))
	}
	onMessage := js.FuncOf(func(_ js.Value, args []js.Value) any {
		c.add(args[0].Get("data"))
		return nil
	})
	onClose := js.FuncOf(func(_ js.Value, args []js.Value) any {
		code, reason := args[0].Get("code").Int(), args[0].Get("reason").String()
		if code == 1000 {
			c.fail(io.EOF)
		} else {
			c.fail(fmt.Errorf("the relay's WebSocket closed (%d %s)", code, reason))
		}
		return nil
	})
	c.funcs = []js.Func{onMessage, onClose}
	ws.Set("onmessage", onMessage)
	ws.Set("onclose", onClose)
	ws.Set("onerror", js.Null())        // a close event follows, which says more
	if ws.Get("readyState").Int() > 1 { // CLOSING or CLOSED
		c.fail(io.EOF)
	}
	return c
}

// add keeps a message (an ArrayBuffer) for Read.
func (c *socketConn) add(data js.Value) {
	n := data.Get("byteLength").Int()
	if n > maxMessage {
		c.fail(fmt.Errorf("the relay sent a message of %d bytes, over %d", n, maxMessage))
		c.ws.Call("close")
		return
	}
	b := make([]byte, n)
	js.CopyBytesToGo(b, js.Global().Get("Uint8Array").New(data))
	c.mu.Lock()
	c.pending = append(c.pending, b)
	c.mu.Unlock()
	c.signal()
}

func (c *socketConn) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	c.signal()
}

func (c *socketConn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *socketConn) Read(p []byte) (int, error) {
	for {
		c.mu.Lock()
		if len(c.pending) > 0 {
			n := copy(p, c.pending[0])
			if n == len(c.pending[0]) {
				c.pending[0] = nil
				c.pending = c.pending[1:]
			} else {
				c.pending[0] = c.pending[0][n:]
			}
			c.mu.Unlock()
			return n, nil
		}
		err := c.err
		c.mu.Unlock()
		if err != nil {
			return 0, err
		}
		<-c.wake
	}
}

func (c *socketConn) Write(p []byte) (n int, err error) {
	c.mu.Lock()
	closed := c.err != nil
	c.mu.Unlock()
	if closed {
		return 0, net.ErrClosed
	}
	defer func() {
		if r := recover(); r != nil { // send threw (a socket still connecting, which the page never hands over)
			n, err = 0, fmt.Errorf("sending on the relay's WebSocket: %v", r)
		}
	}()
	b := js.Global().Get("Uint8Array").New(len(p))
	js.CopyBytesToJS(b, p)
	c.ws.Call("send", b)
	return len(p), nil
}

// Close closes the socket, once; the page's handlers are let go.
func (c *socketConn) Close() error {
	c.once.Do(func() {
		c.mu.Lock()
		c.pending = nil
		c.mu.Unlock()
		c.fail(net.ErrClosed)
		c.ws.Set("onmessage", js.Null())
		c.ws.Set("onclose", js.Null())
		c.ws.Call("close")
		for _, f := range c.funcs {
			f.Release()
		}
	})
	return nil
}

// socketAddr is the relay's WebSocket's address, for net.Conn.
type socketAddr string

func (a socketAddr) Network() string { return "websocket" }
func (a socketAddr) String() string  { return string(a) }

func (c *socketConn) LocalAddr() net.Addr  { return socketAddr("browser") }
func (c *socketConn) RemoteAddr() net.Addr { return socketAddr(c.ws.Get("url").String()) }

var errNoDeadline = errors.New("the relay's WebSocket takes no deadline")

func (c *socketConn) SetDeadline(time.Time) error      { return errNoDeadline }
func (c *socketConn) SetReadDeadline(time.Time) error  { return errNoDeadline }
func (c *socketConn) SetWriteDeadline(time.Time) error { return errNoDeadline }
