package presence

import (
	"sync"
	"time"

	"github.com/porthole/porthole/control"
)

// States turns the state messages a server node reads from an external
// broker into presence (the embedded broker sees connections itself). It remembers which devices this node has seen connected, so
// that each connection is one DeviceConnected, and so that the "offline" a
// (re)subscription replays for a device that left long ago does not move
// its last-seen time to now.
type States struct {
	tracker *Tracker
	now     func() time.Time

	mu     sync.Mutex
	online map[string]bool // guarded by mu; "<fleet>/<device>" this node holds connected
}

// NewStates returns States that tell tracker.
func NewStates(tracker *Tracker) *States {
	return &States{tracker: tracker, now: time.Now, online: make(map[string]bool)}
}

// Apply records one state of device in fleet. The tracker is called under mu so that two
// goroutines delivering states of one device (the shared subscription and
// a snapshot) cannot reorder them; its calls never block.
func (p *States) Apply(fleet, device string, st control.State) {
	key := fleet + "/" + device
	p.mu.Lock()
	defer p.mu.Unlock()
	was := p.online[key]
	if st.Kind == control.StateOffline {
		delete(p.online, key)
		// Seen leaving now, or a replayed retained "offline" of a device
		// gone for who knows how long: the zero time keeps its last-seen.
		var at time.Time
		if was {
			at = p.now()
		}
		p.tracker.DeviceDisconnected(fleet, device, at)
		return
	}
	if !was {
		p.online[key] = true
		p.tracker.DeviceConnected(fleet, device, p.now())
	}
}

// Forget drops what is known of a device, deleted: a device enrolled again
// under its name is a new connection to record.
func (p *States) Forget(fleet, device string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.online, fleet+"/"+device)
}
