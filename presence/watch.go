package presence

import "time"

// Change is a device's connection change as the tracker is told it.
type Change struct {
	Fleet, Device string // the device's fleet and name
	Online        bool
	// At is when it happened; zero for an "offline" of unknown time (a
	// replayed retained state).
	At time.Time
}

// watchers are the functions Watch registered; their fields are guarded
// by Tracker.mu.
type watchers struct {
	next int
	fns  map[int]func(Change)
}

// Watch calls fn with every change noted from now on (DeviceConnected,
// DeviceDisconnected), in the order they were noted, until stop is called;
// the web console's presence stream follows devices with it. fn runs while
// the tracker holds its lock: it must return at once (hand the change to a
// buffered channel, say) and must not call the tracker. Changes noted
// after Close are not told.
//
// A Tracker hears only of the devices its own node's broker (or its share
// of an external broker's states) tells it of: watchers on other nodes
// must read the store for the rest.
func (t *Tracker) Watch(fn func(Change)) (stop func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.watch.fns == nil {
		t.watch.fns = map[int]func(Change){}
	}
	id := t.watch.next
	t.watch.next++
	t.watch.fns[id] = fn
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		delete(t.watch.fns, id)
	}
}

// tellLocked hands c to every watcher; t.mu is held.
func (t *Tracker) tellLocked(c Change) {
	for _, fn := range t.watch.fns {
		fn(c)
	}
}
