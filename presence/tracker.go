// Package presence keeps devices' online state and last-seen time in the
// store without a write per keep-alive.
//
// A Tracker is told when devices connect and disconnect (it is the embedded
// broker's PresenceHandler) and keeps the store in step:
//
//   - A change of state is written at once, but never on the caller's
//     goroutine: the call only notes the change in memory, and one writer
//     goroutine writes every change noted since its last write, in one
//     transaction. A device that changes again before its change is written
//     is written once, with its latest state, so a storm of connects and
//     disconnects costs a little memory per device, not per event, and no
//     goroutines.
//   - The last-seen time of every connected device is refreshed in one
//     batched write every RefreshInterval, so a crash loses at most that
//     much of it. Keep-alives write nothing.
//   - A failed write is retried with backoff; the changes wait in memory.
//
// The broker names devices by fleet and device name; the writer looks the
// device's ID up once per connection.
package presence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/porthole/porthole/store"
)

// ErrClosed is returned by Close after the first call.
var ErrClosed = fmt.Errorf("presence: %w", net.ErrClosed)

// Store is what a Tracker needs of the store; store.Store has it.
type Store interface {
	ListDevices(ctx context.Context, f store.DeviceFilter) ([]*store.Device, error)
	SetDevicePresence(ctx context.Context, changes ...store.DevicePresence) error
	TouchDevicesSeen(ctx context.Context, ids []string, at time.Time) error
}

// Config configures a Tracker. Only Store is required.
type Config struct {
	// Store is where presence is written. Required.
	Store Store
	// Logger receives failed writes (warnings) and what was written
	// (debug). Nil: discarded.
	Logger *slog.Logger
	// RefreshInterval is how often the last-seen time of connected devices
	// is written: the most of it a crash can lose. Zero: 2 minutes.
	RefreshInterval time.Duration
	// RetryDelay is the first wait after a failed write; it doubles after
	// each further failure, up to RefreshInterval. Zero: 1 second.
	RetryDelay time.Duration
	// WriteTimeout bounds each write to the store, and all of Close's final
	// one. Zero: 30 seconds.
	WriteTimeout time.Duration
	// Now is the clock for last-seen refreshes (changes carry their own
	// time). Nil: time.Now.
	Now func() time.Time
}

// Defaults for the zero values of Config.
const (
	DefaultRefreshInterval = 2 * time.Minute
	DefaultRetryDelay      = time.Second
	DefaultWriteTimeout    = 30 * time.Second
)

// maxBatch is the most changes one transaction writes, so that a storm
// does not hold the database's write lock for long at a stretch.
const maxBatch = 1000

// Tracker records devices' presence in a Store. Create it with New and stop
// it with Close. Its methods are safe for concurrent use and never wait for
// the store.
type Tracker struct {
	cfg  Config
	log  *slog.Logger
	wake chan struct{} // holds one token when changes are waiting to be written
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the writer has returned
	// closeErr is the final write's error, set by the writer before done
	// is closed.
	closeErr error

	mu      sync.Mutex
	closed  bool                 // guarded by mu
	devices map[deviceKey]*entry // guarded by mu: connected devices, and others with a change to write
	pending []*entry             // guarded by mu: the entries whose latest change is not written yet
	watch   watchers             // guarded by mu: who is told of each change (Watch)
}

type deviceKey struct{ fleet, device string }

// entry is what the tracker knows of one device; its fields are guarded by
// Tracker.mu.
type entry struct {
	key     deviceKey
	online  bool
	at      time.Time // of the latest change
	gen     uint64    // counts the device's changes, so the writer sees one that arrived while it wrote
	connGen uint64    // gen of the latest connect: an ID looked up since is this connection's
	dirty   bool      // the latest change waits in pending
	id      string    // the device's ID; "" until looked up for this connection
}

// New starts a Tracker. Close it to write what is left and stop its writer.
func New(cfg Config) (*Tracker, error) {
	if cfg.Store == nil {
		return nil, errors.New("presence: Config.Store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.RefreshInterval = orDefault(cfg.RefreshInterval, DefaultRefreshInterval)
	cfg.RetryDelay = orDefault(cfg.RetryDelay, DefaultRetryDelay)
	cfg.WriteTimeout = orDefault(cfg.WriteTimeout, DefaultWriteTimeout)
	if cfg.RefreshInterval < 0 || cfg.RetryDelay < 0 || cfg.WriteTimeout < 0 {
		return nil, errors.New("presence: intervals and timeouts must not be negative")
	}
	t := &Tracker{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "presence"),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		devices: make(map[deviceKey]*entry),
	}
	go t.run()
	return t, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// DeviceConnected records that a device is online since at.
func (t *Tracker) DeviceConnected(fleet, device string, at time.Time) {
	t.note(deviceKey{fleet, device}, true, at)
}

// DeviceDisconnected records that a device went offline at at.
func (t *Tracker) DeviceDisconnected(fleet, device string, at time.Time) {
	t.note(deviceKey{fleet, device}, false, at)
}

// note records a change for the writer and wakes it; it never blocks on
// the writer or the store.
func (t *Tracker) note(k deviceKey, online bool, at time.Time) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		t.log.Debug("presence change after Close ignored", "fleet", k.fleet, "device", k.device, "online", online)
		return
	}
	e := t.devices[k]
	if e == nil {
		e = &entry{key: k}
		t.devices[k] = e
	}
	e.online, e.at = online, at
	e.gen++
	if online {
		// A device deleted and enrolled again under its name has a new ID:
		// look it up again for each connection.
		e.id, e.connGen = "", e.gen
	}
	if !e.dirty {
		e.dirty = true
		t.pending = append(t.pending, e)
	}
	t.tellLocked(Change{Fleet: k.fleet, Device: k.device, Online: online, At: at})
	t.mu.Unlock()

	select {
	case t.wake <- struct{}{}:
	default: // the writer is already due to run
	}
}

// Close writes every change noted so far and the last-seen time of the
// devices still connected, then stops the writer. Changes noted after Close
// are ignored. It returns the final write's error; a second call returns
// ErrClosed.
func (t *Tracker) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	t.closed = true
	t.mu.Unlock()
	close(t.stop)
	<-t.done
	return t.closeErr
}
