package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/porthole/porthole/store"
)

// How many devices one presence statement names, however many change at
// once: far within both databases' placeholder limits, and small enough
// that binding the placeholders stays cheap (in the SQLite driver their
// cost grows faster than their number: one statement of 1,000 rows takes
// four times as long per row as ten of 100).
const (
	setChunk   = 100 // rows of SetDevicePresence, three placeholders each
	touchChunk = 250 // IDs of TouchDevicesSeen
)

// laterSeen is the last_seen column moved forward to the time in the
// expression at, never back. (SQLite's max() and PostgreSQL's GREATEST()
// are spelt differently; CASE is the same in both.)
func laterSeen(at string) string {
	return "CASE WHEN devices.last_seen < " + at + " THEN " + at + " ELSE devices.last_seen END"
}

// SetDevicePresence records connection changes, in one transaction; see
// store.Store.
func (s *Store) SetDevicePresence(ctx context.Context, changes ...store.DevicePresence) error {
	changes = lastChangePerDevice(changes)
	err := s.inChunks(ctx, len(changes), setChunk, func(tx *sql.Tx, lo, hi int) error {
		// WITH v(...) AS (VALUES ...) UPDATE ... FROM v: one statement for
		// the chunk, understood alike by SQLite and PostgreSQL. The casts
		// give PostgreSQL the types of the placeholders in VALUES.
		rows := make([]string, 0, hi-lo)
		args := make([]any, 0, 3*(hi-lo))
		for _, c := range changes[lo:hi] {
			n := len(args)
			rows = append(rows, fmt.Sprintf("($%d, CAST($%d AS INTEGER), CAST($%d AS BIGINT))", n+1, n+2, n+3))
			args = append(args, c.DeviceID, boolInt(c.Online), millis(c.At))
		}
		_, err := tx.ExecContext(ctx, `WITH v (id, online, at) AS (VALUES `+strings.Join(rows, ", ")+`)
			UPDATE devices SET online = v.online, last_seen = `+laterSeen("v.at")+`
			FROM v WHERE devices.id = v.id AND (devices.online <> v.online OR devices.last_seen < v.at)`, args...)
		// Only rows that change are written: a node's snapshot of an
		// external broker's retained states replays "offline" for every
		// device that ever left, and rewriting each of a million rows
		// (a new row version apiece in PostgreSQL) would change nothing.
		return err
	})
	if err != nil {
		return fmt.Errorf("store: set the presence of %d devices: %w", len(changes), err)
	}
	return nil
}

// lastChangePerDevice keeps each device's last change, in the order of the
// devices' first appearance: one UPDATE must not match a row twice.
func lastChangePerDevice(changes []store.DevicePresence) []store.DevicePresence {
	at := make(map[string]int, len(changes))
	out := make([]store.DevicePresence, 0, len(changes))
	for _, c := range changes {
		if i, ok := at[c.DeviceID]; ok {
			out[i] = c
			continue
		}
		at[c.DeviceID] = len(out)
		out = append(out, c)
	}
	return out
}

// TouchDevicesSeen moves the last-seen time of devices forward to at, in one
// transaction; see store.Store.
func (s *Store) TouchDevicesSeen(ctx context.Context, ids []string, at time.Time) error {
	err := s.inChunks(ctx, len(ids), touchChunk, func(tx *sql.Tx, lo, hi int) error {
		marks := make([]string, 0, hi-lo)
		args := []any{millis(at)}
		for _, id := range ids[lo:hi] {
			args = append(args, id)
			marks = append(marks, fmt.Sprintf("$%d", len(args)))
		}
		_, err := tx.ExecContext(ctx, `UPDATE devices SET last_seen = $1
			WHERE last_seen < $1 AND id IN (`+strings.Join(marks, ", ")+`)`, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: touch the last-seen time of %d devices: %w", len(ids), err)
	}
	return nil
}

// inChunks runs fn on the [lo, hi) chunks of n items, chunk at a time, all
// in one transaction. Nothing to do starts no transaction.
func (s *Store) inChunks(ctx context.Context, n, chunk int, fn func(tx *sql.Tx, lo, hi int) error) error {
	if n == 0 {
		return nil
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for lo := 0; lo < n; lo += chunk {
			if err := fn(tx, lo, min(lo+chunk, n)); err != nil {
				return err
			}
		}
		return nil
	})
}

// MarkAllOffline marks every online device offline; see store.Store.
func (s *Store) MarkAllOffline(ctx context.Context) (int, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE devices SET online = 0 WHERE online = 1`)
	if err != nil {
		return 0, fmt.Errorf("store: mark every device offline: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: mark every device offline: rows affected: %w", err)
	}
	return int(n), nil
}
