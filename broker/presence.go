package broker

import (
	"hash/maphash"
	"sync"
	"time"
)

// presenceShards spreads devices over this many locks, so one slow presence
// handler call holds up only a sliver of the fleet's connects.
const presenceShards = 64

// presence turns connection events into PresenceHandler calls, one device at
// a time and in order. A device counts as online from its newest session
// until that connection ends: when a second connection replaces the first,
// the end of the first is not reported, so the device never looks offline
// in between.
type presence struct {
	handler PresenceHandler
	now     func() time.Time
	seed    maphash.Seed
	shards  [presenceShards]presenceShard
}

type presenceShard struct {
	// mu guards online and is held across handler calls, so the calls for
	// one device are serialized and agree with online.
	mu     sync.Mutex
	online map[string]*deviceConn // username -> its newest connection (claimed at session start)
}

func newPresence(handler PresenceHandler, now func() time.Time) *presence {
	p := &presence{handler: handler, now: now, seed: maphash.MakeSeed()}
	for i := range p.shards {
		p.shards[i].online = make(map[string]*deviceConn)
	}
	return p
}

// claim makes dc its device's current connection, just before the session
// is established and any older connection of the device is cut: the end of
// that older connection then reports nothing.
func (p *presence) claim(dc *deviceConn) {
	p.withShard(dc, func(s *presenceShard, id *identity) {
		s.online[id.username] = dc
	})
}

// established reports the device connected once dc's CONNACK is out, unless
// a newer connection has claimed the device meanwhile.
func (p *presence) established(dc *deviceConn) {
	p.withShard(dc, func(s *presenceShard, id *identity) {
		if s.online[id.username] == dc {
			p.handler.DeviceConnected(id.fleet, id.device, p.now())
		}
	})
}

// ended reports the device disconnected if dc was its current connection.
// A connection that never claimed its device, or that a newer one has
// replaced, changes nothing.
func (p *presence) ended(dc *deviceConn) {
	p.withShard(dc, func(s *presenceShard, id *identity) {
		if s.online[id.username] != dc {
			return
		}
		delete(s.online, id.username)
		p.handler.DeviceDisconnected(id.fleet, id.device, p.now())
	})
}

// withShard runs f with the shard of dc's device locked; it does nothing
// without a handler or for a connection that was never authenticated.
func (p *presence) withShard(dc *deviceConn, f func(*presenceShard, *identity)) {
	id := dc.identity.Load()
	if p.handler == nil || id == nil || id.server {
		return // a server node is no device
	}
	s := &p.shards[maphash.String(p.seed, id.username)%presenceShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s, id)
}
