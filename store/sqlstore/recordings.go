package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/porthole/porthole/store"
)

const recordingQuery = `SELECT r.session_id, s.fleet_id, s.device_id, r.files, r.bytes, r.started_at, r.updated_at, r.completed_at
	FROM recordings r JOIN sessions s ON s.id = r.session_id`

func scanRecording(sc scanner) (*store.Recording, error) {
	var r store.Recording
	if err := sc.Scan(&r.SessionID, &r.FleetID, &r.DeviceID, &r.FileCount, &r.Bytes,
		(*unixMillis)(&r.StartedAt), (*unixMillis)(&r.UpdatedAt), (*unixMillis)(&r.CompletedAt)); err != nil {
		return nil, err
	}
	return &r, nil
}

func scanRecordingFile(sc scanner) (*store.RecordingFile, error) {
	var f store.RecordingFile
	if err := sc.Scan(&f.Name, &f.Size, (*unixMillis)(&f.UpdatedAt)); err != nil {
		return nil, err
	}
	return &f, nil
}

// PutRecordingFile records a file's size; see store.Recordings.
func (s *Store) PutRecordingFile(ctx context.Context, sessionID, name string, size int64, at time.Time) error {
	if name == "" || size < 0 {
		return fmt.Errorf("store: put recording file %q of session %q: a name and a size of at least 0 are required", name, sessionID)
	}
	ms := millis(normalTime(at))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO recordings (session_id, started_at, updated_at) VALUES ($1, $2, $2)
			ON CONFLICT (session_id) DO NOTHING`, sessionID, ms); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO recording_files (session_id, name, size, updated_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (session_id, name) DO UPDATE SET size = excluded.size, updated_at = excluded.updated_at
			WHERE recording_files.size <> excluded.size`, sessionID, name, size, ms)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err // the same size again: nothing to count
		}
		_, err = tx.ExecContext(ctx, `UPDATE recordings SET
			files = (SELECT COUNT(*) FROM recording_files f WHERE f.session_id = $1),
			bytes = (SELECT COALESCE(SUM(f.size), 0) FROM recording_files f WHERE f.session_id = $1),
			updated_at = $2, completed_at = 0
			WHERE session_id = $1`, sessionID, ms)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: put recording file %q of session %q: %w", name, sessionID, s.classify(err))
	}
	return nil
}

// CompleteRecording marks a recording complete; see store.Recordings.
func (s *Store) CompleteRecording(ctx context.Context, sessionID string, at time.Time) (*store.Recording, bool, error) {
	var (
		rec     *store.Recording
		changed bool
	)
	err := s.audited(ctx, func(tx *sql.Tx) (about, error) {
		var err error
		if changed, err = execChanged(ctx, tx, `UPDATE recordings SET completed_at = $2 WHERE session_id = $1 AND completed_at = 0`,
			sessionID, millis(normalTime(at))); err != nil {
			return about{}, err
		}
		if rec, err = scanRecording(tx.QueryRowContext(ctx, recordingQuery+` WHERE r.session_id = $1`, sessionID)); err != nil {
			return about{}, err
		}
		ses, err := scanSession(tx.QueryRowContext(ctx, sessionQuery+` WHERE s.id = $1`, sessionID))
		if err != nil {
			return about{}, err
		}
		ab := sessionAbout(ses)
		ab.unchanged = !changed
		return ab, nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("store: complete the recording of session %q: %w", sessionID, s.classify(err))
	}
	return rec, changed, nil
}

// GetRecording returns a session's recording with its files.
func (s *Store) GetRecording(ctx context.Context, sessionID string) (*store.Recording, error) {
	what := fmt.Sprintf("get the recording of session %q", sessionID)
	r, err := one(ctx, s, what, scanRecording, recordingQuery+` WHERE r.session_id = $1`, sessionID)
	if err != nil {
		return nil, err
	}
	files, err := all(ctx, s, what, scanRecordingFile,
		`SELECT name, size, updated_at FROM recording_files WHERE session_id = $1 ORDER BY name`, sessionID)
	if err != nil {
		return nil, err
	}
	r.Files = make([]store.RecordingFile, len(files))
	for i, f := range files {
		r.Files[i] = *f
	}
	return r, nil
}

// ListRecordings lists recordings newest session first; see
// store.RecordingFilter.
func (s *Store) ListRecordings(ctx context.Context, f store.RecordingFilter) ([]*store.Recording, error) {
	if f.FleetIDs != nil && len(f.FleetIDs) == 0 || f.SessionIDs != nil && len(f.SessionIDs) == 0 {
		return []*store.Recording{}, nil
	}
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	in := func(col string, vs []string) string {
		marks := make([]string, len(vs))
		for i, v := range vs {
			marks[i] = arg(v)
		}
		return col + " IN (" + strings.Join(marks, ", ") + ")"
	}
	if f.FleetIDs != nil {
		where = append(where, in("s.fleet_id", f.FleetIDs))
	}
	if f.DeviceID != "" {
		where = append(where, "s.device_id = "+arg(f.DeviceID))
	}
	if f.SessionIDs != nil {
		where = append(where, in("r.session_id", f.SessionIDs))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	query := recordingQuery
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY s.created_at DESC, r.session_id LIMIT " + arg(limit)
	return all(ctx, s, "list recordings", scanRecording, query, args...)
}

const ownerTokenQuery = `SELECT o.id, o.device_id, d.name, d.fleet_id, f.name, o.hash, o.created_at, o.expires_at
	FROM owner_tokens o JOIN devices d ON d.id = o.device_id JOIN fleets f ON f.id = d.fleet_id`

func scanOwnerToken(sc scanner) (*store.OwnerToken, error) {
	var t store.OwnerToken
	if err := sc.Scan(&t.ID, &t.DeviceID, &t.DeviceName, &t.FleetID, &t.FleetName, &t.Hash,
		(*unixMillis)(&t.CreatedAt), (*unixMillis)(&t.ExpiresAt)); err != nil {
		return nil, err
	}
	return &t, nil
}

// CreateOwnerToken stores a device's owner token in place of the one it
// had; see store.Recordings.
func (s *Store) CreateOwnerToken(ctx context.Context, t *store.OwnerToken) error {
	id, created := orNewID(t.ID, "own"), normalTime(orNow(t.CreatedAt, time.Now()))
	var got *store.OwnerToken
	err := s.audited(ctx, func(tx *sql.Tx) (about, error) {
		if _, err := tx.ExecContext(ctx, `DELETE FROM owner_tokens WHERE device_id = $1`, t.DeviceID); err != nil {
			return about{}, err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO owner_tokens (id, device_id, hash, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5)`, id, t.DeviceID, t.Hash, millis(created), millis(t.ExpiresAt)); err != nil {
			return about{}, err
		}
		var err error
		if got, err = scanOwnerToken(tx.QueryRowContext(ctx, ownerTokenQuery+` WHERE o.id = $1`, id)); err != nil {
			return about{}, err
		}
		return about{fleetID: got.FleetID, fleet: got.FleetName, deviceID: got.DeviceID, device: got.DeviceName}, nil
	})
	if err != nil {
		// The hash is a credential's digest: keep it out of messages.
		return fmt.Errorf("store: create the owner token of device %q: %w", t.DeviceID, s.classify(err))
	}
	*t = *got
	return nil
}

// OwnerTokenByHash returns the owner token with the given hash unless it
// has expired at now.
func (s *Store) OwnerTokenByHash(ctx context.Context, hash string, now time.Time) (*store.OwnerToken, error) {
	return one(ctx, s, "look up owner token", scanOwnerToken, ownerTokenQuery+` WHERE o.hash = $1 AND o.expires_at > $2`,
		hash, millis(now))
}
