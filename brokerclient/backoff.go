package brokerclient

import (
	"math/rand/v2"
	"sync"
	"time"
)

const (
	retryBase = time.Second
	retryCap  = 60 * time.Second
	// stableAfter is how long a connection must last for the next
	// reconnection to start again without delay. A shorter one counts as a
	// flap, so a broker that accepts and at once drops the client (or
	// another process taking over its client id, back and forth) is not
	// hammered.
	stableAfter = 10 * time.Second
)

// backoff spaces reconnection attempts exponentially from base up to max,
// each delay drawn at random from its upper half so that server nodes
// restarted together do not reconnect in step. Its methods are safe for
// concurrent use.
type backoff struct {
	base, max time.Duration
	stable    time.Duration

	mu      sync.Mutex
	flaps   int       // guarded by mu; short-lived connections in a row
	upSince time.Time // guarded by mu; when the current connection came up
}

func newBackoff() *backoff {
	return &backoff{base: retryBase, max: retryCap, stable: stableAfter}
}

// delay is how long to wait before connection attempt number attempt
// (0 for the first after a loss): nothing, unless recent connections
// flapped.
func (b *backoff) delay(attempt int) time.Duration {
	b.mu.Lock()
	n := attempt + b.flaps
	b.mu.Unlock()
	if n <= 0 {
		return 0
	}
	d := b.base
	for i := 1; i < n && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	return d/2 + rand.N(d/2+1)
}

func (b *backoff) up(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.upSince = now
}

func (b *backoff) down(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Sub(b.upSince) < b.stable {
		b.flaps++
	} else {
		b.flaps = 0
	}
}
