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
	// clockTolerance: smaller offsets are noise (a Date has whole
	// seconds) and are not applied.
	clockTolerance = 5 * time.Second
	// clockResync: Sync measures at most this often.
	clockResync = time.Minute
)

// ServerClock is the server's time as this device knows it: the device's
// own clock corrected by the offset last measured against the server's.
// The zero offset (nothing measured, or the clocks agree) is the device's
// own time. It is safe for concurrent use.
type ServerClock struct {
	local   func() time.Time
	measure func(context.Context) (time.Time, error)
	log     *slog.Logger

	offset atomic.Int64 // nanoseconds: the server's time less the device's

	mu   sync.Mutex
	last time.Time // guarded by mu: local time of the last measurement
}

// NewServerClock returns a clock that reads local (nil: time.Now) and
// corrects it by what measure (the server's time now, over a connection
// the device trusts, such as apiclient.Client.ServerTime) says at Sync.
func NewServerClock(local func() time.Time, measure func(context.Context) (time.Time, error), log *slog.Logger) *ServerClock {
	if local == nil {
		local = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ServerClock{local: local, measure: measure, log: log}
}

// Now is the server's time as the device knows it.
func (c *ServerClock) Now() time.Time {
	return c.local().Add(time.Duration(c.offset.Load()))
}

// Offset is the server's time less the device's, as last measured (zero
// when within a few seconds).
func (c *ServerClock) Offset() time.Duration { return time.Duration(c.offset.Load()) }

// Sync measures the server's time, unless it did so within the last minute,
// and reports whether the offset changed. The device's clock is taken to
// have read the server's at the middle of the round trip.
func (c *ServerClock) Sync(ctx context.Context) (changed bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	start := c.local()
	if !c.last.IsZero() && start.Sub(c.last).Abs() < clockResync {
		return false, nil
	}
	c.last = start
	server, err := c.measure(ctx)
	if err != nil {
		return false, err
	}
	end := c.local()
	off := server.Sub(start.Add(end.Sub(start) / 2))
	if off.Abs() < clockTolerance {
		off = 0
	}
	if old := time.Duration(c.offset.Swap(int64(off))); old == off {
		return false, nil
	}
	if off == 0 {
		c.log.Info("this device's clock agrees with the server's again")
	} else {
		c.log.Warn("this device's clock is off: it is using the server's time for commands, certificates and logins; set the clock right (NTP)",
			"device_clock_is", describeOffset(-off))
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
