package bench

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// delayProxy forwards each TCP connection it accepts to target, holding
// every chunk for a fixed one-way delay in each direction: a long link
// without a bandwidth limit, so that round trips cost what they cost on a
// WAN while loopback keeps everything else equal. Unlike netem on the
// loopback interface it delays only the benchmark's own connections.
type delayProxy struct {
	ln     net.Listener
	target string
	delay  time.Duration // one way
	wg     sync.WaitGroup
	mu     sync.Mutex // guards conns
	conns  map[net.Conn]struct{}
}

// startDelayProxy listens on a free loopback port.
func startDelayProxy(target string, oneWay time.Duration) (*delayProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &delayProxy{ln: ln, target: target, delay: oneWay, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.serve)
	return p, nil
}

// port is the proxy's port.
func (p *delayProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *delayProxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.forward(in) })
	}
}

// forward carries one connection both ways until both are done.
func (p *delayProxy) forward(in net.Conn) {
	out, err := net.Dial("tcp", p.target)
	if err != nil {
		in.Close()
		return
	}
	if !p.track(in, out) {
		return
	}
	defer p.untrack(in, out)
	var wg sync.WaitGroup
	wg.Go(func() { p.pipe(out, in) })
	wg.Go(func() { p.pipe(in, out) })
	wg.Wait()
}

// chunk is what one read returned, and when.
type chunk struct {
	data []byte
	at   time.Time
	err  error // io.EOF or the read's error, with no data
}

// pipe copies from src to dst, each chunk written delay after it was read,
// in order; src's end becomes dst's half-close, delayed likewise.
func (p *delayProxy) pipe(dst, src net.Conn) {
	queue := make(chan chunk, 4096)
	go func() {
		defer close(queue)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			now := time.Now()
			if n > 0 {
				queue <- chunk{data: buf[:n], at: now}
			}
			if err != nil {
				queue <- chunk{at: now, err: err}
				return
			}
		}
	}()
	for c := range queue {
		if wait := time.Until(c.at.Add(p.delay)); wait > 0 {
			time.Sleep(wait)
		}
		if c.err != nil {
			if tc, ok := dst.(*net.TCPConn); ok && errors.Is(c.err, io.EOF) {
				_ = tc.CloseWrite()
			} else {
				dst.Close()
			}
			break
		}
		if _, err := dst.Write(c.data); err != nil {
			src.Close()
			break
		}
	}
	for range queue { // let the reader finish
	}
}

func (p *delayProxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil { // closed
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *delayProxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		c.Close()
		delete(p.conns, c)
	}
}

// close stops listening, ends every connection and waits for them.
func (p *delayProxy) close() {
	if p == nil {
		return
	}
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}
