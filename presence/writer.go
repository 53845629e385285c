package presence

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/porthole/porthole/store"
)

// errUnknownDevice: the device no longer exists (deleted while connected),
// so it has no presence to write.
var errUnknownDevice = errors.New("presence: unknown device")

// item is one change taken for writing, with what is needed to tell
// afterwards whether a newer change arrived meanwhile.
type item struct {
	e       *entry
	gen     uint64
	online  bool
	at      time.Time
	id      string
	unknown bool // the device does not exist: nothing to write
}

// run is the writer: it writes changes when woken, retries failures with
// backoff, refreshes last-seen times on a ticker, and writes what is left
// when stopped.
func (t *Tracker) run() {
	defer close(t.done)
	tick := time.NewTicker(t.cfg.RefreshInterval)
	defer tick.Stop()
	wake := t.wake
	var retry <-chan time.Time
	var delay time.Duration
	for {
		select {
		case <-wake:
		case <-retry:
		case <-tick.C:
			if err := t.refresh(context.Background()); err != nil {
				t.log.Warn("refreshing the last-seen time of connected devices failed; trying again at the next refresh", "err", err)
			}
		case <-t.stop:
			t.closeErr = t.final()
			return
		}
		if err := t.flush(context.Background()); err != nil {
			// Changes stay noted; a failing store is not hammered once per
			// change, only retried.
			delay = min(max(2*delay, t.cfg.RetryDelay), t.cfg.RefreshInterval)
			t.log.Warn("writing device presence failed; retrying", "retry_in", delay, "err", err)
			wake, retry = nil, time.After(delay)
			continue
		}
		wake, retry, delay = t.wake, nil, 0
	}
}

// final writes every change still noted and refreshes the last-seen time of
// the devices still connected, all within one WriteTimeout.
func (t *Tracker) final() error {
	ctx, cancel := context.WithTimeout(context.Background(), t.cfg.WriteTimeout)
	defer cancel()
	if err := t.flush(ctx); err != nil {
		return fmt.Errorf("presence: writing the last changes: %w", err)
	}
	return t.refresh(ctx)
}

// flush writes the noted changes, a batch at a time, until none is left or
// a write fails.
func (t *Tracker) flush(ctx context.Context) error {
	for {
		batch := t.take(maxBatch)
		if len(batch) == 0 {
			return nil
		}
		err := t.write(ctx, batch)
		t.settle(batch, err == nil)
		if err != nil {
			return err
		}
	}
}

// take removes up to n changes from pending, oldest first.
func (t *Tracker) take(n int) []item {
	t.mu.Lock()
	defer t.mu.Unlock()
	n = min(n, len(t.pending))
	batch := make([]item, n)
	for i, e := range t.pending[:n] {
		e.dirty = false
		batch[i] = item{e: e, gen: e.gen, online: e.online, at: e.at, id: e.id}
	}
	t.pending = append(t.pending[:0], t.pending[n:]...)
	return batch
}

// write looks up the IDs the batch lacks and writes it in one transaction.
func (t *Tracker) write(parent context.Context, batch []item) error {
	ctx, cancel := context.WithTimeout(parent, t.cfg.WriteTimeout)
	defer cancel()
	changes := make([]store.DevicePresence, 0, len(batch))
	for i := range batch {
		it := &batch[i]
		if it.id == "" {
			id, err := t.lookup(ctx, it.e.key)
			if errors.Is(err, errUnknownDevice) {
				it.unknown = true
				continue
			}
			if err != nil {
				return err
			}
			it.id = id
		}
		changes = append(changes, store.DevicePresence{DeviceID: it.id, Online: it.online, At: it.at})
	}
	if err := t.cfg.Store.SetDevicePresence(ctx, changes...); err != nil {
		return err
	}
	t.log.Debug("device presence written", "changes", len(changes))
	return nil
}

// lookup finds the ID of the device k names.
func (t *Tracker) lookup(ctx context.Context, k deviceKey) (string, error) {
	ds, err := t.cfg.Store.ListDevices(ctx, store.DeviceFilter{FleetName: k.fleet, Name: k.device})
	if err != nil {
		return "", fmt.Errorf("looking up device %s/%s: %w", k.fleet, k.device, err)
	}
	for _, d := range ds {
		if d.FleetName == k.fleet && d.Name == k.device {
			return d.ID, nil
		}
	}
	return "", errUnknownDevice
}

// settle brings the entries of a batch up to date after its write: a
// written offline device is forgotten, an unwritten change is queued
// again. An entry that changed meanwhile is already queued with its newer
// change, and keeps only the ID (if it is still the same connection's).
func (t *Tracker) settle(batch []item, written bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, it := range batch {
		e := it.e
		if e.id == "" && it.gen >= e.connGen {
			e.id = it.id
		}
		switch {
		case e.gen != it.gen:
		case !written:
			e.dirty = true
			t.pending = append(t.pending, e)
		case it.unknown || !e.online:
			delete(t.devices, e.key)
		}
	}
}

// refresh writes now as the last-seen time of every connected device whose
// state is written.
func (t *Tracker) refresh(parent context.Context) error {
	ids := t.connectedIDs()
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(parent, t.cfg.WriteTimeout)
	defer cancel()
	if err := t.cfg.Store.TouchDevicesSeen(ctx, ids, t.cfg.Now()); err != nil {
		return fmt.Errorf("presence: refreshing the last-seen time of %d connected devices: %w", len(ids), err)
	}
	t.log.Debug("last-seen time of connected devices refreshed", "devices", len(ids))
	return nil
}

// connectedIDs lists the connected devices whose online state is written:
// the others get their time with their change.
func (t *Tracker) connectedIDs() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ids []string
	for _, e := range t.devices {
		if e.online && !e.dirty && e.id != "" {
			ids = append(ids, e.id)
		}
	}
	return ids
}
