package relayproto

import (
	"io"
	"net"
	"sync"
)

// yamux's frame header (github.com/hashicorp/yamux spec.md): version,
// type, flags, stream id, length; a data frame's body of length bytes
// follows it at once.
const (
	muxHeaderSize = 12
	muxTypeData   = 0
)

// MaxChunk is the most a client writes at once on a stream that the relay
// splices: a TLS record carries at most 16 KiB, and a yamux frame's 12-byte
// header must fit beside its body, so that each frame the relay forwards
// to a device (and each the device sends) is one record, not a full one
// and one of a dozen bytes.
const MaxChunk = 16<<10 - muxHeaderSize

// WriteChunks writes p to w in pieces of at most MaxChunk bytes.
func WriteChunks(w io.Writer, p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), MaxChunk)
		m, err := w.Write(p[:k])
		n += m
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

// HeldConn gathers the records of one large write through TLS into one
// system call: a write of more than 16 KiB becomes a record per 16 KiB,
// each its own write(2) otherwise. Put it between TLS and the socket
// (tls.Server(NewHeldConn(c))) and write through Gather.
type HeldConn struct {
	net.Conn
	mu   sync.Mutex
	held bool   // guarded by mu
	buf  []byte // guarded by mu: while held, from gatherBuffers
}

// gatherBuffers hold the records of one burst: taken for the burst and
// given back after, so an idle connection keeps none and a burst does not
// grow a slice record by record.
var gatherBuffers sync.Pool

// recordOverhead bounds what TLS 1.3 adds to each record: a 5-byte header,
// the content type and a 16-byte tag.
const recordOverhead = 5 + 1 + 16

// maxPooledGather is the largest buffer given back to gatherBuffers.
const maxPooledGather = 4 << 20

// NewHeldConn wraps c.
func NewHeldConn(c net.Conn) *HeldConn { return &HeldConn{Conn: c} }

func (c *HeldConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// Gather writes p with write, which writes through TLS over c, with the
// records it makes sent in one system call. A write that fits one record
// (or a nil c) goes straight through: gathering it would only copy it.
func (c *HeldConn) Gather(p []byte, write func([]byte) (int, error)) (int, error) {
	if c == nil || len(p) <= MaxChunk {
		return write(p)
	}
	need := len(p) + (len(p)/MaxChunk+1)*(recordOverhead+muxHeaderSize)
	bp, _ := gatherBuffers.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	if cap(*bp) < need {
		*bp = make([]byte, 0, need)
	}
	c.mu.Lock()
	c.held, c.buf = true, (*bp)[:0]
	c.mu.Unlock()
	n, err := write(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	buf := c.buf
	c.held, c.buf = false, nil
	if len(buf) > 0 {
		if _, werr := c.Conn.Write(buf); err == nil {
			err = werr
		}
	}
	if cap(buf) <= maxPooledGather {
		*bp = buf[:0] // append may have grown it
		gatherBuffers.Put(bp)
	}
	return n, err
}
