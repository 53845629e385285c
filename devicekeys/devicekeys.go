// Package devicekeys caches the enrolled public keys of devices for the
// logins that check one at every connection: the embedded MQTT broker's and
// the relay's. Without it a reconnect storm (every device of a fleet
// coming back after a server restart or a network outage) waits on one
// store read per connection; with it the store is read once per device,
// and concurrent logins of one device share that read.
//
// The cache is only as fresh as what it is told: the server hands it every
// store.Change (Apply), so that a deleted device is refused at its next
// login on every node, a device enrolled again under its old name is let
// in with its new key, and a node that lost the change feed for a while
// reads everything again. Entries also expire (Config.TTL) as a bound on
// what a missed change could cost.
package devicekeys

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/store"
)

// ErrUnknownDevice is Key's error for a device that does not exist (never
// enrolled, or deleted). Lookup must return it, or wrap it, for such a
// device. That answer is not kept: a device enrolled through another node
// must be let in as soon as it logs in, before this node may have heard
// of it; and a login under a name that does not exist costs a TLS
// handshake, far more than the indexed read it causes.
var ErrUnknownDevice = errors.New("devicekeys: no such device")

// Lookup reads a device's key from the store.
type Lookup func(ctx context.Context, fleet, device string) (ed25519.PublicKey, error)

// Defaults of Config.
const (
	DefaultTTL        = 10 * time.Minute
	DefaultMaxEntries = 200_000
	// lookupTimeout bounds a store read that several logins share: it
	// runs apart from the context of the login that started it, which may
	// give up before the others.
	lookupTimeout = 10 * time.Second
)

// Config configures a Cache. Lookup is required.
type Config struct {
	Lookup Lookup
	// TTL is how long a key is kept. Zero: DefaultTTL.
	TTL time.Duration
	// MaxEntries bounds the cache (about 150 bytes an entry); when it is
	// full, a random tenth is dropped. Zero: DefaultMaxEntries.
	MaxEntries int
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Cache is a cache of device keys, safe for concurrent use.
type Cache struct {
	cfg   Config
	group singleflight.Group

	mu      sync.Mutex
	entries map[string]entry // guarded by mu; by "<fleet>/<device>"
	// epoch counts the forgets: a lookup that began before one may have
	// read what was just forgotten, so it is returned but not kept.
	epoch uint64 // guarded by mu
}

type entry struct {
	key   ed25519.PublicKey
	until time.Time
}

// New returns an empty cache.
func New(cfg Config) *Cache {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Cache{cfg: cfg, entries: map[string]entry{}}
}

// Key returns the enrolled key of fleet/device, from the cache or from one
// store read shared by every concurrent caller. A device that does not
// exist is ErrUnknownDevice. Only keys are kept, not errors.
func (c *Cache) Key(ctx context.Context, fleet, device string) (ed25519.PublicKey, error) {
	name := fleet + "/" + device
	now := c.cfg.Now()
	c.mu.Lock()
	e, ok := c.entries[name]
	epoch := c.epoch
	c.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.key, nil
	}
	// Keyed by the epoch too: a login after a forget never joins a read
	// that began before it.
	ch := c.group.DoChan(fmt.Sprintf("%s@%d", name, epoch), func() (any, error) {
		// A read that ended between this caller's look and its DoChan
		// may have kept the key already.
		c.mu.Lock()
		e, ok := c.entries[name]
		c.mu.Unlock()
		if ok && c.cfg.Now().Before(e.until) {
			return e.key, nil
		}
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
		defer cancel()
		key, err := c.cfg.Lookup(lctx, fleet, device)
		if err == nil {
			c.keep(name, key, epoch)
		}
		return key, err
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(ed25519.PublicKey), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// keep stores what a lookup that began at epoch found, unless something
// was forgotten since.
func (c *Cache) keep(name string, key ed25519.PublicKey, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return
	}
	if len(c.entries) >= c.cfg.MaxEntries {
		drop := max(1, len(c.entries)/10)
		for k := range c.entries { // map order is random enough to spread it
			delete(c.entries, k)
			if drop--; drop == 0 {
				break
			}
		}
	}
	c.entries[name] = entry{key: key, until: c.cfg.Now().Add(c.cfg.TTL)}
}

// Forget drops what is known of fleet/device.
func (c *Cache) Forget(fleet, device string) {
	c.mu.Lock()
	delete(c.entries, fleet+"/"+device)
	c.epoch++ // a lookup under way is neither kept nor joined (Key)
	c.mu.Unlock()
}

// ForgetAll drops everything.
func (c *Cache) ForgetAll() {
	c.mu.Lock()
	c.entries = map[string]entry{}
	c.epoch++
	c.mu.Unlock()
}

// ForgetFleet drops every device of fleet.
func (c *Cache) ForgetFleet(fleet string) {
	prefix := fleet + "/"
	c.mu.Lock()
	for k := range c.entries {
		if strings.HasPrefix(k, prefix) {
			delete(c.entries, k)
		}
	}
	c.epoch++
	c.mu.Unlock()
}

// Apply updates the cache for a change the store announced.
func (c *Cache) Apply(ch store.Change) {
	switch ch.Kind {
	case store.DeviceEnrolled, store.DeviceDeleted:
		c.Forget(ch.Fleet, ch.Device)
	case store.FleetDeleted:
		c.ForgetFleet(ch.Fleet)
	case store.ChangesLost:
		c.ForgetAll()
	}
}

// Len is the number of entries, for tests and metrics.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// Warm fills the cache with every device's key in st, up to MaxEntries,
// in one read: a node about to take a reconnect storm (every device of
// its embedded broker coming back after a restart) then reads nothing
// more for the devices that exist. It returns how many it kept.
func (c *Cache) Warm(ctx context.Context, st store.Store) (int, error) {
	c.mu.Lock()
	epoch := c.epoch
	c.mu.Unlock()
	ds, err := st.ListDevices(ctx, store.DeviceFilter{})
	if err != nil {
		return 0, fmt.Errorf("reading every device's key: %w", err)
	}
	until := c.cfg.Now().Add(c.cfg.TTL)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch { // a change came meanwhile: the list may be older
		return 0, nil
	}
	n := 0
	for _, d := range ds {
		if len(c.entries) >= c.cfg.MaxEntries {
			break
		}
		key, err := control.ParseDeviceKey(d.PublicKey)
		if err != nil {
			continue // its logins will say why
		}
		c.entries[d.FleetName+"/"+d.Name] = entry{key: key, until: until}
		n++
	}
	return n, nil
}

// StoreLookup reads keys from st: a device that does not exist, deleted
// ones included, is ErrUnknownDevice.
func StoreLookup(st store.Store) Lookup {
	return func(ctx context.Context, fleet, device string) (ed25519.PublicKey, error) {
		ds, err := st.ListDevices(ctx, store.DeviceFilter{FleetName: fleet, Name: device})
		if err != nil {
			return nil, fmt.Errorf("looking up device %s/%s: %w", fleet, device, err)
		}
		for _, d := range ds {
			if d.FleetName == fleet && d.Name == device {
				return control.ParseDeviceKey(d.PublicKey)
			}
		}
		return nil, ErrUnknownDevice
	}
}
