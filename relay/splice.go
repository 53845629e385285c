package relay

import (
	"context"
	"io"
	"sync"

	"golang.org/x/crypto/ssh"
)

// spliceBufferSize is the copy buffer of each direction of a splice: one
// full SSH packet, as x/crypto and OpenSSH send at most 32 KiB per packet.
const spliceBufferSize = 32 << 10

var spliceBuffers = sync.Pool{New: func() any { b := make([]byte, spliceBufferSize); return &b }}

// splice is an engineer's channel joined to a device's.
type splice struct {
	eng, dev  ssh.Channel
	closeOnce sync.Once
}

// close closes both channels at once.
func (sp *splice) close() {
	sp.closeOnce.Do(func() {
		_ = sp.eng.Close()
		_ = sp.dev.Close()
	})
}

// splice copies between the engineer's channel ech and the device's channel
// dch until both directions are done, or until the engineer's connection,
// the device's connection or the session ends. It returns when both copies
// have ended.
func (r *Relay) splice(e *engineerConn, dev *deviceConn, ech ssh.Channel, ereqs <-chan *ssh.Request, dch ssh.Channel, dreqs <-chan *ssh.Request) {
	sp := &splice{eng: ech, dev: dch}
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

	// A channel's request stream ends when its peer closes the channel
	// (or its connection ends): nobody reads what is sent to it anymore.
	engGone, devGone := r.drain(ereqs), r.drain(dreqs)
	up, down := make(chan struct{}), make(chan struct{})
	r.wg.Go(func() {
		copyChannel(dch, activityReader{ech, func() { r.touch(e.sess) }})
		_ = dch.CloseWrite()
		close(up)
	})
	r.wg.Go(func() {
		copyChannel(ech, dch)
		_ = ech.CloseWrite()
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

// copyChannel copies src to dst with a pooled buffer, until either fails or
// src ends.
func copyChannel(dst io.Writer, src io.Reader) {
	buf := spliceBuffers.Get().(*[]byte)
	defer spliceBuffers.Put(buf)
	_, _ = io.CopyBuffer(dst, src, *buf)
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
