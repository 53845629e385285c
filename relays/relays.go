// Package relays is the registry of the server nodes' relays, kept in the
// store that every node shares: a node that serves the relay registers
// itself and beats its heart (Registration), and each new session is
// placed on a live relay (Placer) whose addresses the device and the
// engineer are then told, so that the two meet on one node. No cluster
// protocol of our own: the store is the only thing the nodes share, as
// it already is for everything else.
//
// A relay is live while it beats every Interval (1 s); one silent for
// three intervals gets no new session, so a node that died stops getting
// sessions within seconds, and the open sessions of one silent for ten
// intervals are closed as relay_lost (session.Config.RelaysHeard). Every
// time here is the database's clock (store.Relays.Now), so nodes whose
// clocks differ still agree on which relays are live. Placement prefers a
// relay of the device's region (its label region=, against the relay's
// region), then the one with the fewest open sessions, choosing at random
// among equals so that sessions asked for at once spread.
package relays

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/porthole/porthole/store"
)

// DefaultInterval is how often a relay beats.
const DefaultInterval = time.Second

// deadAfter is how many intervals of silence make a relay dead.
const deadAfter = 3

// forgetAfter is how long a dead relay's row stays, for an operator to
// see what went.
const forgetAfter = time.Hour

// RegionLabel is the device label that names the region whose relay it
// prefers.
const RegionLabel = "region"

// ErrNoRelay is Place's error when no relay is live.
var ErrNoRelay = errors.New("relays: no relay is running")

// Registration keeps one node's relay registered: Beat records it alive
// now, Run beats until its context ends. Its fields are read once, at
// the first Beat or Run; use one Registration from one goroutine at a
// time.
type Registration struct {
	Store store.Store
	// Relay is this node's relay: ID, addresses and region.
	Relay store.Relay
	// Interval is how often it beats. Zero: DefaultInterval.
	Interval time.Duration
	Logger   *slog.Logger

	started bool
	failing bool // the last beat failed, and said so
}

func (r *Registration) start() {
	if r.started {
		return
	}
	r.started = true
	if r.Interval <= 0 {
		r.Interval = DefaultInterval
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
}

// Beat records the relay as alive now, by the database's clock, in one
// statement (registering it the first time). A failure is logged once
// until a beat succeeds again, and returned.
func (r *Registration) Beat(ctx context.Context) error {
	r.start()
	// Three intervals to answer: a slow database must not make a live
	// relay look dead.
	bctx, cancel := context.WithTimeout(ctx, deadAfter*r.Interval)
	defer cancel()
	beat := r.Relay
	beat.HeartbeatAt = time.Time{} // the database's clock
	err := r.Store.HeartbeatRelay(bctx, &beat)
	switch {
	case err != nil && !r.failing && ctx.Err() == nil:
		r.Logger.Error("could not record this relay as alive; other nodes will stop placing sessions here", "relay", r.Relay.ID, "err", err)
		r.failing = true
	case err == nil && r.failing:
		r.Logger.Info("this relay is recorded as alive again", "relay", r.Relay.ID)
		r.failing = false
	}
	return err
}

// sweep clears the relays that died long ago (any live node does).
func (r *Registration) sweep(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, deadAfter*r.Interval)
	defer cancel()
	now, err := r.Store.Now(sctx)
	if err == nil {
		_, err = r.Store.DeleteRelays(sctx, "", now.Add(-forgetAfter))
	}
	if err != nil && ctx.Err() == nil {
		r.Logger.Warn("could not clear relays that died long ago", "err", err)
	}
}

// Run beats at once and every Interval until ctx is done, then removes
// the relay, so that no session is placed on a node that stopped
// cleanly. A failed beat is tried again at the next interval: meanwhile
// other nodes stop placing sessions here, which is right for a node that
// cannot reach the store.
func (r *Registration) Run(ctx context.Context) {
	r.start()
	if r.Beat(ctx) == nil {
		r.Logger.Info("relay registered", "relay", r.Relay.ID, "addr", r.Relay.Addr, "ssh_addr", r.Relay.SSHAddr, "region", r.Relay.Region)
	}
	tick := time.NewTicker(r.Interval)
	defer tick.Stop()
	for beats := 1; ; beats++ {
		select {
		case <-tick.C:
			r.Beat(ctx)
			if beats%60 == 0 {
				r.sweep(ctx)
			}
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if _, err := r.Store.DeleteRelays(dctx, r.Relay.ID, time.Time{}); err != nil {
				r.Logger.Warn("could not remove this relay from the registry; other nodes stop placing sessions here within seconds anyway", "relay", r.Relay.ID, "err", err)
			}
			return
		}
	}
}

// lostAfter is how many intervals of silence make a relay's sessions
// lost: longer than what stops placement, so that a relay whose beat is
// only late (a slow database) keeps its sessions.
const lostAfter = 10

// Heard returns the IDs of the relays heard from within lostAfter
// intervals of the newest heartbeat of any relay: an open session placed
// on any other is lost (session.Config.RelaysHeard). Measured from the
// newest heartbeat, not from now, so that a database that stalls, which
// stops every relay's beats at once, loses no session; and a node's own
// running relay, whose beats are the newest when it is alone, is never
// lost to its own sweeper.
func Heard(ctx context.Context, st store.Store, interval time.Duration) (map[string]bool, error) {
	if interval <= 0 {
		interval = DefaultInterval
	}
	all, err := st.ListRelays(ctx, time.Time{})
	if err != nil {
		return nil, fmt.Errorf("listing the relays: %w", err)
	}
	var newest time.Time
	for _, r := range all {
		if r.HeartbeatAt.After(newest) {
			newest = r.HeartbeatAt
		}
	}
	ids := make(map[string]bool, len(all))
	for _, r := range all {
		if !r.HeartbeatAt.Before(newest.Add(-lostAfter * interval)) {
			ids[r.ID] = true
		}
	}
	return ids, nil
}

// Placer places sessions on live relays.
type Placer struct {
	Store store.Store
	// Interval is the relays' heartbeat interval. Zero: DefaultInterval.
	Interval time.Duration
}

// Place chooses the relay for a new session on d.
func (p *Placer) Place(ctx context.Context, d *store.Device) (*store.Relay, error) {
	interval := p.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	now, err := p.Store.Now(ctx) // the clock the relays beat by
	if err != nil {
		return nil, err
	}
	live, err := p.Store.ListRelays(ctx, now.Add(-deadAfter*interval))
	if err != nil {
		return nil, fmt.Errorf("listing the live relays: %w", err)
	}
	if len(live) == 0 {
		return nil, fmt.Errorf("%w: no node with the relay role has been heard from in the last %v", ErrNoRelay, deadAfter*interval)
	}
	return choose(live, d.Labels[RegionLabel]), nil
}

// choose picks, among live, the least loaded relay of region if there is
// one of that region, else the least loaded of all; at random among
// equals.
func choose(live []*store.Relay, region string) *store.Relay {
	pool := live
	if region != "" {
		var same []*store.Relay
		for _, r := range live {
			if r.Region == region {
				same = append(same, r)
			}
		}
		if len(same) > 0 {
			pool = same
		}
	}
	var best []*store.Relay
	for _, r := range pool {
		switch {
		case len(best) == 0 || r.Sessions < best[0].Sessions:
			best = append(best[:0], r)
		case r.Sessions == best[0].Sessions:
			best = append(best, r)
		}
	}
	return best[rand.IntN(len(best))]
}
