package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/store"
)

// How events reach the chain: a write runs in audited (or, for single
// statements, through exec and change, which use it when the context
// carries events); after the change, in the same transaction,
// appendAuditTx takes the chain's head, seals the events onto it and
// inserts them. Taking the head is the last thing a transaction does, so
// audited writes wait for each other only for that moment: on SQLite the
// transaction holds the database's write lock since BEGIN IMMEDIATE
// anyway; on PostgreSQL the UPDATE of the head's one row locks it until
// commit, and a concurrent append's UPDATE waits, then reads the head as
// the first one left it.

// about is what a write tells the audit log about the row it changed:
// whether it changed anything at all, and the fleet, device and session
// it concerns, filled into events that leave them empty.
type about struct {
	unchanged                                 bool
	fleetID, fleet, deviceID, device, session string
}

// audited runs fn in a transaction and, unless fn fails or reports that
// nothing changed, records the events ctx carries (store.WithAudit) at its
// end. Errors of fn come back as they are, for the caller to classify.
func (s *Store) audited(ctx context.Context, fn func(tx *sql.Tx) (about, error)) error {
	evs := store.AuditEvents(ctx)
	return s.inTx(ctx, func(tx *sql.Tx) error {
		ab, err := fn(tx)
		if err != nil || ab.unchanged || len(evs) == 0 {
			return err
		}
		return s.appendAuditTx(ctx, tx, evs, ab)
	})
}

// writeAudited runs a single-statement write: on the pool, or when ctx
// carries audit events, in a transaction that records them after it.
func (s *Store) writeAudited(ctx context.Context, fn func(q execer) error) error {
	if len(store.AuditEvents(ctx)) == 0 {
		return fn(s.db)
	}
	return s.audited(ctx, func(tx *sql.Tx) (about, error) { return about{}, fn(tx) })
}

// errAuditHeadMissing: the audit log's head row is gone, which only
// tampering does. Audited writes fail until it is restored.
var errAuditHeadMissing = fmt.Errorf("%w (table audit_head lost its row): the audit tables were tampered with; "+
	"audited changes are refused until it is restored", audit.ErrNoHead)

// appendAuditTx completes evs with ab, seals them onto the chain and
// inserts them, in tx.
func (s *Store) appendAuditTx(ctx context.Context, tx *sql.Tx, evs []audit.Event, ab about) error {
	now := time.Now()
	out := make([]audit.Event, len(evs))
	fleets := map[string]string{} // name → ID, looked up once per append
	for i, ev := range evs {
		fill(&ev.FleetID, ab.fleetID)
		fill(&ev.Fleet, ab.fleet)
		fill(&ev.DeviceID, ab.deviceID)
		fill(&ev.Device, ab.device)
		fill(&ev.Session, ab.session)
		ev.Time = normalTime(orNow(ev.Time, now))
		ev.Normalize()
		if err := ev.Validate(); err != nil {
			return fmt.Errorf("record audit event: %w", err)
		}
		if ev.FleetID == "" && ev.Fleet != "" {
			id, ok := fleets[ev.Fleet]
			if !ok {
				err := tx.QueryRowContext(ctx, `SELECT id FROM fleets WHERE name = $1`, ev.Fleet).Scan(&id)
				if err != nil && !errors.Is(err, sql.ErrNoRows) {
					return fmt.Errorf("record audit event: look up fleet %q: %w", ev.Fleet, err)
				}
				fleets[ev.Fleet] = id
			}
			ev.FleetID = id
		}
		if ev.DeviceID == "" && ev.Device != "" && ev.FleetID != "" {
			err := tx.QueryRowContext(ctx, `SELECT id FROM devices WHERE fleet_id = $1 AND name = $2`, ev.FleetID, ev.Device).Scan(&ev.DeviceID)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("record audit event: look up device %q: %w", ev.Device, err)
			}
		}
		out[i] = ev
	}

	// Claim the sequence numbers; on PostgreSQL this locks the head row
	// until commit.
	var end int64
	var prev string
	err := tx.QueryRowContext(ctx, `UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash`,
		int64(len(out))).Scan(&end, &prev)
	if errors.Is(err, sql.ErrNoRows) {
		return errAuditHeadMissing
	} else if err != nil {
		return fmt.Errorf("record audit events: take the chain's head: %w", err)
	}
	head := audit.Head{Seq: end - int64(len(out)), Hash: prev}
	for i := range out {
		ev := &out[i]
		ev.Seal(head)
		head = audit.Head{Seq: ev.Seq, Hash: ev.Hash}
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_events (`+auditColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
			ev.Seq, millis(ev.Time), string(ev.Kind), string(ev.Actor.Kind), ev.Actor.ID, ev.Actor.Name,
			ev.FleetID, ev.Fleet, ev.DeviceID, ev.Device, ev.Session, labelsJSON(ev.Detail), ev.PrevHash, ev.Hash); err != nil {
			return fmt.Errorf("record audit event %d (%s): %w", ev.Seq, ev.Kind, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE audit_head SET hash = $1 WHERE id = 1`, head.Hash); err != nil {
		return fmt.Errorf("record audit events: move the chain's head: %w", err)
	}
	return nil
}

// fill sets *p to v when *p is empty.
func fill(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

const auditColumns = `seq, at, kind, actor_kind, actor_id, actor_name, fleet_id, fleet, device_id, device, session_id, detail, prev_hash, hash`

func scanAuditEvent(sc scanner) (*audit.Event, error) {
	var (
		e      audit.Event
		detail jsonLabels
	)
	if err := sc.Scan(&e.Seq, (*unixMillis)(&e.Time), &e.Kind, &e.Actor.Kind, &e.Actor.ID, &e.Actor.Name,
		&e.FleetID, &e.Fleet, &e.DeviceID, &e.Device, &e.Session, &detail, &e.PrevHash, &e.Hash); err != nil {
		return nil, err
	}
	e.Detail = detail
	return &e, nil
}

// AppendAudit records evs, with the events ctx carries, in one
// transaction; see store.AuditLog.
func (s *Store) AppendAudit(ctx context.Context, evs ...audit.Event) error {
	ctx = store.WithAudit(ctx, evs...)
	if len(store.AuditEvents(ctx)) == 0 {
		return nil
	}
	if err := s.audited(ctx, func(*sql.Tx) (about, error) { return about{}, nil }); err != nil {
		return fmt.Errorf("store: append %d audit events: %w", len(store.AuditEvents(ctx)), err)
	}
	return nil
}

// ListAudit lists the events f selects, oldest first; see store.AuditFilter.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]audit.Event, error) {
	if f.FleetIDs != nil && len(f.FleetIDs) == 0 {
		return []audit.Event{}, nil
	}
	var w where
	if f.FleetIDs != nil {
		w.in("fleet_id", f.FleetIDs)
	}
	if f.Device != "" {
		w.add("device = ?", f.Device)
	}
	if f.Session != "" {
		w.add("session_id = ?", f.Session)
	}
	if !f.Since.IsZero() {
		w.add("at >= ?", millis(f.Since))
	}
	if f.After > 0 {
		w.add("seq > ?", f.After)
	}
	if f.Before > 0 {
		w.add("seq < ?", f.Before)
	}
	order := "seq"
	if f.Latest {
		order = "seq DESC"
	}
	query := `SELECT ` + auditColumns + ` FROM audit_events` + w.String() + " ORDER BY " + order + " LIMIT " + w.arg(limit(f.Limit, 100))
	evs, err := all(ctx, s, "list audit events", scanAuditEvent, query, w.args...)
	if err != nil {
		return nil, err
	}
	if f.Latest {
		slices.Reverse(evs)
	}
	return deref(evs), nil
}

// AuditHead returns the chain's head as the last append recorded it.
func (s *Store) AuditHead(ctx context.Context) (audit.Head, error) {
	var h audit.Head
	err := s.db.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&h.Seq, &h.Hash)
	if errors.Is(err, sql.ErrNoRows) {
		return h, fmt.Errorf("store: %w", errAuditHeadMissing)
	} else if err != nil {
		return h, fmt.Errorf("store: read the audit chain's head: %w", err)
	}
	return h, nil
}

// AuditChain returns up to limit events after seq after, in order, as
// stored.
func (s *Store) AuditChain(ctx context.Context, after int64, limit int) ([]audit.Event, error) {
	evs, err := all(ctx, s, fmt.Sprintf("read audit events after %d", after), scanAuditEvent,
		`SELECT `+auditColumns+` FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
	if err != nil {
		return nil, err
	}
	return deref(evs), nil
}

func deref(evs []*audit.Event) []audit.Event {
	out := make([]audit.Event, len(evs))
	for i, e := range evs {
		out[i] = *e
	}
	return out
}
