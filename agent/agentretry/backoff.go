// Package agentretry paces the agent's attempts to reach what it cannot
// reach yet (its broker, its server): random waits that grow with each
// failure up to a cap (Backoff).
package agentretry

import (
	"fmt"
	"time"
)

// Backoff is how long the agent waits between attempts to reach its broker
// (or its server, to send recordings). When a broker restarts, all its devices lose it at the same moment; the
// waits are random so that they do not all come back in the same second,
// and grow so that a broker that is down for long is not hammered.
type Backoff struct {
	// First bounds the wait before reconnecting to a broker just lost; the
	// wait after the n-th failed attempt is bounded by First·2^n. Zero: 2 s.
	First time.Duration
	// Max caps every wait. Zero: 60 s.
	Max time.Duration
}

// Default reconnect waits.
const (
	DefaultFirst = 2 * time.Second
	DefaultMax   = 60 * time.Second
)

// WithDefaults fills in zero fields and checks the result: what the
// agent's parts use.
func (b Backoff) WithDefaults() (Backoff, error) {
	if b.First == 0 {
		b.First = DefaultFirst
	}
	if b.Max == 0 {
		b.Max = DefaultMax
	}
	if b.First < 0 || b.Max < b.First {
		return b, fmt.Errorf("agentretry: backoff from %v to %v is not a range of positive durations", b.First, b.Max)
	}
	return b, nil
}

// Delay is the wait before attempt number attempt after losing the broker,
// given r drawn uniformly from [0, 1). Attempt 0, the first reconnect, waits
// anywhere in [0, First): a device that merely blipped is back at once,
// and a fleet that lost its broker together is spread out. After n failed
// attempts the ceiling is min(Max, First·2^n) and the wait lies in its upper
// half ("equal jitter"), so it keeps growing while still spreading devices,
// and never exceeds Max.
func (b Backoff) Delay(attempt int, r float64) time.Duration {
	if attempt <= 0 {
		return time.Duration(r * float64(b.First))
	}
	ceiling := b.First
	for i := 0; i < attempt && ceiling < b.Max; i++ {
		if ceiling > b.Max/2 { // doubling would pass Max, or overflow
			ceiling = b.Max
			break
		}
		ceiling *= 2
	}
	ceiling = min(ceiling, b.Max)
	half := ceiling / 2
	return half + time.Duration(r*float64(ceiling-half))
}
