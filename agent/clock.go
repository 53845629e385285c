package agent

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// A device's clock may be minutes off: one without a battery-backed clock
// that boots before NTP answers, or one whose NTP is blocked. Everything the
// server signs for it is timed by the server's clock: open commands expire
// within a minute or two, session certificates start two minutes before
// they are made, the MQTT password is good for ten minutes either way. So a
// device whose clock is off checks them by the server's time instead,
// measured over the pinned TLS connection to its own server (the Date of
// an answer, which no one between can forge or replay): an open command is
// then verified as sensibly as on a device with a good clock, and the
// owner's log says the clock is off.

// Bounds of ServerClock.
const (
	// clockTolerance: corrections smaller than this are noise (a Date has
	// whole seconds): they are applied, but do not count as a change that
	// a refused command should be checked again for.
	clockTolerance = 5 * time.Second
	// clockResync: Sync measures at most this often.
	clockResync = time.Minute
	// clockResyncEvery: Run measures again this often, so that time the
	// monotonic clock did not count (a suspended device) is made good.
	clockResyncEvery = 10 * time.Minute
)

// ServerClock is the server's time as this device knows it. Once measured,
// it is the server's time at the measurement plus the time elapsed since
// by the monotonic clock, which nothing steps: neither NTP (which someone
// on the network may spoof) nor a person setting the date moves it, so a
// command that expired by the server's time stays expired. Before the
// first measurement it is the device's own clock. It is safe for
// concurrent use.
type ServerClock struct {
	local   func() time.Time
	measure func(context.Context) (time.Time, error)
	log     *slog.Logger

	// Monotonic is the time elapsed since some fixed moment, by a clock
	// nothing steps. NewServerClock sets it from time.Now's monotonic
	// reading; tests may replace it before the clock is used.
	Monotonic func() time.Duration

	anchor atomic.Pointer[clockAnchor] // the last measurement; nil before the first

	mu   sync.Mutex
	last time.Duration // guarded by mu: Monotonic at the last measurement attempt
	ever bool          // guarded by mu: a measurement was attempted
}

// clockAnchor is a measurement: the server's time when Monotonic read at.
type clockAnchor struct {
	server time.Time
	at     time.Duration
}

// NewServerClock returns a clock that reads local (nil: time.Now) until
// measure (the server's time now, over a connection the device trusts,
// such as apiclient.Client.ServerTime) has answered a Sync.
func NewServerClock(local func() time.Time, measure func(context.Context) (time.Time, error), log *slog.Logger) *ServerClock {
	if local == nil {
		local = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	return &ServerClock{local: local, measure: measure, log: log,
		Monotonic: func() time.Duration { return time.Since(start) }}
}

// Now is the server's time as the device knows it.
func (c *ServerClock) Now() time.Time {
	if a := c.anchor.Load(); a != nil {
		return a.server.Add(c.Monotonic() - a.at)
	}
	return c.local()
}

// Offset is how far Now is from the device's own clock.
func (c *ServerClock) Offset() time.Duration {
	if c.anchor.Load() == nil {
		return 0
	}
	return c.Now().Sub(c.local()).Round(time.Second)
}

// Sync measures the server's time, unless it did so within the last minute,
// and reports whether that moved Now by more than a few seconds. The
// server's answer is taken to be of the middle of the round trip.
func (c *ServerClock) Sync(ctx context.Context) (changed bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	start := c.Monotonic()
	if c.ever && start-c.last < clockResync {
		return false, nil
	}
	c.ever, c.last = true, start
	server, err := c.measure(ctx)
	if err != nil {
		return false, err
	}
	end := c.Monotonic()
	before := c.Now()
	a := &clockAnchor{server: server, at: start + (end-start)/2}
	c.anchor.Store(a)
	moved := c.Now().Sub(before)
	if moved.Abs() < clockTolerance {
		return false, nil
	}
	if off := c.Now().Sub(c.local()); off.Abs() >= clockTolerance {
		c.log.Warn("this device's clock is off: it is using the server's time for commands, certificates and logins; set the clock right (NTP)",
			"device_clock_is", describeOffset(-off))
	} else {
		c.log.Info("this device's idea of the server's time moved", "by", moved.Round(time.Second))
	}
	return true, nil
}

// describeOffset says how far the device's clock is from the server's:
// "10m0s ahead" or "3m0s behind".
func describeOffset(d time.Duration) string {
	if d >= 0 {
		return d.Round(time.Second).String() + " ahead"
	}
	return (-d).Round(time.Second).String() + " behind"
}
