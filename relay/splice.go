package relay

import (
	"context"
	"io"
	"sync"

	"golang.org/x/crypto/ssh"
)

// spliceBufferSize is the copy buffer of each direction of a splice: two
// full SSH packets (x/crypto and OpenSSH send at most 32 KiB per packet),
// or four TLS records, sent in one system call (heldTLS).
const spliceBufferSize = 64 << 10

var spliceBuffers = sync.Pool{New: func() any { b := make([]byte, spliceBufferSize); return &b }}

// halfConn is one side of a splice: an SSH channel, a yamux stream or a
// TLS connection.
type halfConn interface {
	io.ReadWriteCloser
	// CloseWrite tells the peer that nothing more will be sent, and lets
	// it go on sending.
	CloseWrite() error
}

// goner is a halfConn that knows when its peer has closed it altogether
// (an SSH channel's request stream ends then); the others end by their
// reads.
type goner interface {
	peerGone() <-chan struct{}
}

func (c *sshChannel) peerGone() <-chan struct{} { return c.gone }

// gone is h's peerGone, or nil (never ready) if it has none.
func gone(h halfConn) <-chan struct{} {
	if g, ok := h.(goner); ok {
		return g.peerGone()
	}
	return nil
}

// splice is an engineer's stream joined to a device's.
type splice struct {
	eng, dev  halfConn
	closeOnce sync.Once
}

// close closes both at once.
func (sp *splice) close() {
	sp.closeOnce.Do(func() {
		_ = sp.eng.Close()
		_ = sp.dev.Close()
	})
}

// splice copies between the engineer's stream eng and the device's dev
// until both directions are done, or until the engineer's connection, the
// device's connection or the session ends. It returns when both copies
// have ended.
func (r *Relay) splice(e *engineerConn, dev *deviceConn, eng, dv halfConn) {
	sp := &splice{eng: eng, dev: dv}
	r.mu.Lock()
	r.splices++
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.splices--
		r.mu.Unlock()
	}()
	for _, ctx := range []context.Context{e.ctx, dev.ctx, e.sess.ctx} {
		stop := context.AfterFunc(ctx, sp.close)
		defer stop()
	}

	engGone, devGone := gone(eng), gone(dv)
	up, down := make(chan struct{}), make(chan struct{})
	r.wg.Go(func() {
		copyHalf(sp, dv, activityReader{eng, func() { r.touch(e.sess) }})
		close(up)
	})
	r.wg.Go(func() {
		copyHalf(sp, eng, dv)
		close(down)
	})

	// Half-closes pass through, so each direction ends on its own. When one
	// side closes its channel outright, what it had sent is delivered
	// first, and then the other side's channel is closed too: it would
	// otherwise wait for a peer that will never read.
	var closeAfterUp, closeAfterDown bool
	for up != nil || down != nil {
		select {
		case <-up:
			up = nil
			if closeAfterUp {
				sp.close()
			}
		case <-down:
			down = nil
			if closeAfterDown {
				sp.close()
			}
		case <-engGone:
			engGone = nil
			if up == nil {
				sp.close()
			} else {
				closeAfterUp = true
			}
		case <-devGone:
			devGone = nil
			if down == nil {
				sp.close()
			} else {
				closeAfterDown = true
			}
		}
	}
	sp.close()
}

// drain refuses every request on a channel; the returned channel is closed
// when the stream ends.
func (r *Relay) drain(reqs <-chan *ssh.Request) <-chan struct{} {
	done := make(chan struct{})
	r.wg.Go(func() {
		ssh.DiscardRequests(reqs)
		close(done)
	})
	return done
}

// copyHalf copies src to dst with a pooled buffer. At src's end it passes
// the half-close on; if either side fails, the whole splice is closed: a
// connection that broke will not deliver the rest.
func copyHalf(sp *splice, dst halfConn, src io.Reader) {
	buf := spliceBuffers.Get().(*[]byte)
	defer spliceBuffers.Put(buf)
	if _, err := io.CopyBuffer(dst, src, *buf); err != nil {
		sp.close()
		return
	}
	_ = dst.CloseWrite()
}

// activityReader calls touch whenever it reads something.
type activityReader struct {
	r     io.Reader
	touch func()
}

func (a activityReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.touch()
	}
	return n, err
}
