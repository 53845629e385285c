package store

import (
	"context"
	"time"
)

// Relay is a server node's relay as it registered itself: where devices
// and engineers reach it, and when it was last heard from.
type Relay struct {
	// ID names the node's relay for as long as its process runs.
	ID string
	// Addr is the host:port of its TLS port (the relay's second
	// protocol, also over WebSocket); SSHAddr that of its SSH relay, the
	// first protocol, for agents that predate the second.
	Addr, SSHAddr string
	// Region is the operator's label for where it runs ("eu"); a device
	// labelled region=eu prefers a relay of that region.
	Region      string
	StartedAt   time.Time
	HeartbeatAt time.Time
	// Sessions is how many open sessions are placed on it (filled by
	// ListRelays).
	Sessions int
}

// Relays is the registry of the server nodes' relays. Its times are the
// database's (Now), so that nodes whose clocks differ still agree on which
// relays are live.
type Relays interface {
	// Now is the database's clock.
	Now(ctx context.Context) (time.Time, error)
	// HeartbeatRelay records r as alive at r.HeartbeatAt (zero: now, by
	// the database's clock), adding it if it is new; its start is its
	// first heartbeat.
	HeartbeatRelay(ctx context.Context, r *Relay) error
	// ListRelays lists the relays heard from at or after since, each with
	// its number of open sessions, in ID order.
	ListRelays(ctx context.Context, since time.Time) ([]*Relay, error)
	// DeleteRelays removes the relays not heard from since before, and
	// the one with ID id if id is not empty (a node stopping cleanly). It
	// returns how many it removed.
	DeleteRelays(ctx context.Context, id string, before time.Time) (int, error)
}
