package cli

import (
	"context"
	"crypto/tls"
	"sync"
	"time"

	"github.com/porthole/porthole/relay/relayproto"
)

// preDialFresh is how long a relay connection dialed ahead stays worth
// saying hello on: the relay closes one that says nothing for its hello
// timeout (5 s), and a session that waits longer (a reauth prompt, a
// second engineer's approval) dials anew.
const preDialFresh = 3 * time.Second

// preDial is the relay connection dialed while the session is being
// asked for (TCP and TLS, two round trips that no longer wait for the
// server's answer): the relay of a single-node server is its own address,
// where most sessions are placed. The hello waits for the session's
// certificate.
type preDial struct {
	addr string
	at   time.Time
	done chan struct{}

	mu    sync.Mutex
	tc    *tls.Conn // guarded by mu; nil once taken or dropped
	err   error     // guarded by mu
	taken bool      // guarded by mu
}

// startPreDial dials the server's relay address in the background.
func (l *link) startPreDial(ctx context.Context) {
	addr, cfg := l.c.RelayAddr()
	l.pre = startPreDial(ctx, addr, cfg, l.c.DialContext)
}

// startPreDial dials the relay at addr in the background.
func startPreDial(ctx context.Context, addr string, cfg *tls.Config, dial relayproto.NetDial) *preDial {
	p := &preDial{addr: addr, at: time.Now(), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), relayHandshakeTimeout)
		defer cancel()
		tc, err := relayproto.Dial(dctx, addr, cfg, dial)
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.taken {
			if tc != nil {
				_ = tc.Close() // dropped while it dialed
			}
			return
		}
		p.tc, p.err = tc, err
	}()
	return p
}

// take is the pre-dialed connection to addr, once, if it is fresh:
// ok reports that the dial was for addr and fresh, and then err is how it
// failed, if it did (as a dial made now would have: the caller goes on to
// the WebSocket as it would then, without dialing again and waiting as
// long). Otherwise ok is false and whatever was dialed is closed. It
// waits for the dial to end.
func (p *preDial) take(ctx context.Context, addr string) (tc *tls.Conn, ok bool, err error) {
	if p == nil {
		return nil, false, nil
	}
	if p.addr != addr || time.Since(p.at) > preDialFresh {
		p.drop()
		return nil, false, nil
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		p.drop()
		return nil, false, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	tc, err = p.tc, p.err
	p.tc, p.taken = nil, true
	if tc != nil && time.Since(p.at) > preDialFresh {
		_ = tc.Close()
		return nil, false, nil
	}
	return tc, tc != nil || err != nil, err
}

// drop closes the pre-dialed connection if it was not taken.
func (p *preDial) drop() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.taken = true
	if p.tc != nil {
		_ = p.tc.Close()
		p.tc = nil
	}
}
