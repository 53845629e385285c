package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/porthole/porthole/store"
)

// Now is the database's clock; see store.Relays.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	var ms int64
	if err := s.db.QueryRowContext(ctx, "SELECT "+s.dialect.NowMillis).Scan(&ms); err != nil {
		return time.Time{}, fmt.Errorf("store: read the database's clock: %w", err)
	}
	return time.UnixMilli(ms).UTC(), nil
}

// HeartbeatRelay records r as alive; see store.Relays. A zero
// r.HeartbeatAt is the database's clock, read in the same statement; a
// relay's start is its first heartbeat.
func (s *Store) HeartbeatRelay(ctx context.Context, r *store.Relay) error {
	args := []any{r.ID, r.Addr, r.SSHAddr, r.Region}
	at := s.dialect.NowMillis
	if !r.HeartbeatAt.IsZero() {
		args = append(args, millis(normalTime(r.HeartbeatAt)))
		at = "CAST($5 AS BIGINT)"
	}
	// Both databases take INSERT … ON CONFLICT … DO UPDATE. The clock is
	// read once, so that a new relay's start and heartbeat are the same
	// moment (PostgreSQL's clock_timestamp() moves between two calls in
	// one statement); SQLite needs the WHERE to tell the SELECT's end from
	// the ON CONFLICT.
	return s.exec(store.WithoutAudit(ctx), fmt.Sprintf("record relay %q alive", r.ID), `INSERT INTO relays
		(id, addr, ssh_addr, region, started_at, heartbeat_at)
		SELECT $1, $2, $3, $4, clock.t, clock.t FROM (SELECT `+at+` AS t) AS clock WHERE true
		ON CONFLICT (id) DO UPDATE SET addr = excluded.addr, ssh_addr = excluded.ssh_addr,
		region = excluded.region, heartbeat_at = excluded.heartbeat_at`, args...)
}

// ListRelays lists the live relays with their open sessions; see
// store.Relays.
func (s *Store) ListRelays(ctx context.Context, since time.Time) ([]*store.Relay, error) {
	return all(ctx, s, "list relays", func(sc scanner) (*store.Relay, error) {
		var r store.Relay
		err := sc.Scan(&r.ID, &r.Addr, &r.SSHAddr, &r.Region, (*unixMillis)(&r.StartedAt), (*unixMillis)(&r.HeartbeatAt), &r.Sessions)
		return &r, err
	}, `SELECT r.id, r.addr, r.ssh_addr, r.region, r.started_at, r.heartbeat_at,
		(SELECT count(*) FROM sessions s WHERE s.relay_id = r.id AND s.state <> 'closed')
		FROM relays r WHERE r.heartbeat_at >= $1 ORDER BY r.id`, millis(since))
}

// DeleteRelays removes stale relays and the one named; see store.Relays.
func (s *Store) DeleteRelays(ctx context.Context, id string, before time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM relays WHERE id = $1 OR heartbeat_at < $2`, id, millis(before))
	if err != nil {
		return 0, fmt.Errorf("store: delete relays: %w", s.full(err))
	}
	n, err := res.RowsAffected()
	return int(n), err
}
