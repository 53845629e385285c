package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/porthole/porthole/store"
)

const sessionQuery = `SELECT s.id, s.fleet_id, f.name, s.device_id, d.name, s.user_id, s.user_email,
		s.state, s.close_reason, s.public_key, s.reason, s.ports, s.idle_timeout, s.max_duration,
		s.created_at, s.active_at, s.closed_at, s.last_activity, s.relay_id, s.relay_addr, s.relay_ssh_addr,
		s.four_eyes, s.approved_by, s.approved_email, s.approved_at, s.policy, s.close_due
	FROM sessions s JOIN fleets f ON f.id = s.fleet_id JOIN devices d ON d.id = s.device_id`

func scanSession(sc scanner) (*store.Session, error) {
	var (
		s          store.Session
		ports      string
		idle, maxD int64
	)
	if err := sc.Scan(&s.ID, &s.FleetID, &s.FleetName, &s.DeviceID, &s.DeviceName, (*emptyNull)(&s.UserID), &s.UserEmail,
		&s.State, &s.CloseReason, &s.PublicKey, &s.Reason, &ports, &idle, &maxD,
		(*unixMillis)(&s.CreatedAt), (*unixMillis)(&s.ActiveAt), (*unixMillis)(&s.ClosedAt), (*unixMillis)(&s.LastActivity),
		&s.RelayID, &s.RelayAddr, &s.RelaySSHAddr,
		(*intBool)(&s.FourEyes), (*emptyNull)(&s.ApprovedBy), &s.ApprovedEmail, (*unixMillis)(&s.ApprovedAt), &s.Policy, (*unixMillis)(&s.CloseDue)); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(ports), &s.Ports); err != nil {
		return nil, fmt.Errorf("ports: %w", err)
	}
	s.IdleTimeout, s.MaxDuration = time.Duration(idle)*time.Millisecond, time.Duration(maxD)*time.Millisecond
	return &s, nil
}

// CreateSession stores a new session in its device's fleet; see store.Store.
func (s *Store) CreateSession(ctx context.Context, ses *store.Session) error {
	ses.ID = orNewID(ses.ID, "ses")
	ses.CreatedAt = normalTime(orNow(ses.CreatedAt, time.Now()))
	if ses.State == "" {
		ses.State = store.SessionRequested
	}
	ports, err := json.Marshal(ses.Ports)
	if err != nil {
		return fmt.Errorf("store: create session: %w", err)
	}
	if ses.Ports == nil {
		ports = []byte("[]")
	}
	var got *store.Session
	err = s.audited(ctx, func(tx *sql.Tx) (about, error) {
		// The fleet is read from the device in the same statement, so a
		// session can never sit in another fleet than its device.
		err := execOne(ctx, tx, `INSERT INTO sessions
			(id, fleet_id, device_id, user_id, user_email, state, close_reason, public_key, reason, ports,
			 idle_timeout, max_duration, created_at, active_at, closed_at, last_activity, relay_id, relay_addr, relay_ssh_addr,
			 four_eyes, approved_by, approved_email, approved_at, policy)
			SELECT $1, d.fleet_id, d.id, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
			 $19, $20, $21, $22, $23
			FROM devices d WHERE d.id = $2`,
			ses.ID, ses.DeviceID, nullIfEmpty(ses.UserID), ses.UserEmail, string(ses.State), ses.CloseReason,
			ses.PublicKey, ses.Reason, string(ports), ses.IdleTimeout.Milliseconds(), ses.MaxDuration.Milliseconds(),
			millis(ses.CreatedAt), millis(ses.ActiveAt), millis(ses.ClosedAt), millis(ses.LastActivity),
			ses.RelayID, ses.RelayAddr, ses.RelaySSHAddr,
			boolInt(ses.FourEyes), nullIfEmpty(ses.ApprovedBy), ses.ApprovedEmail, millis(ses.ApprovedAt), ses.Policy)
		if err != nil {
			return about{}, err
		}
		got, err = scanSession(tx.QueryRowContext(ctx, sessionQuery+` WHERE s.id = $1`, ses.ID))
		if err != nil {
			return about{}, err
		}
		return sessionAbout(got), nil
	})
	if err != nil {
		return fmt.Errorf("store: create session on device %q: %w", ses.DeviceID, s.classify(err))
	}
	*ses = *got
	return nil
}

// sessionAbout is what the audit log fills in from a session.
func sessionAbout(ses *store.Session) about {
	return about{fleetID: ses.FleetID, fleet: ses.FleetName, deviceID: ses.DeviceID, device: ses.DeviceName, session: ses.ID}
}

// GetSession returns the session with the given ID.
func (s *Store) GetSession(ctx context.Context, id string) (*store.Session, error) {
	return one(ctx, s, fmt.Sprintf("get session %q", id), scanSession, sessionQuery+` WHERE s.id = $1`, id)
}

// ListSessions lists sessions newest first; see store.SessionFilter.
func (s *Store) ListSessions(ctx context.Context, f store.SessionFilter) ([]*store.Session, error) {
	if f.FleetIDs != nil && len(f.FleetIDs) == 0 {
		return []*store.Session{}, nil
	}
	var w where
	if f.FleetIDs != nil {
		w.in("s.fleet_id", f.FleetIDs)
	}
	if f.DeviceID != "" {
		w.add("s.device_id = ?", f.DeviceID)
	}
	if f.UserID != "" {
		w.add("s.user_id = ?", f.UserID)
	}
	if f.UserEmail != "" {
		w.add("s.user_email = ?", f.UserEmail)
	}
	if f.ApprovedEmail != "" {
		w.add("s.approved_email = ?", f.ApprovedEmail)
	}
	if f.OpenOnly {
		w.add("s.state <> 'closed'")
	}
	if !f.CloseDueBy.IsZero() {
		w.add("s.close_due > 0 AND s.close_due <= ?", millis(f.CloseDueBy))
	}
	query := sessionQuery + w.String() + " ORDER BY s.created_at DESC, s.id LIMIT " + w.arg(limit(f.Limit, 100))
	return all(ctx, s, "list sessions", scanSession, query, w.args...)
}

// TransitionSession moves a session between states; see store.Store.
func (s *Store) TransitionSession(ctx context.Context, id string, from []store.SessionState, to store.SessionState, reason string, at time.Time) (*store.Session, bool, error) {
	return s.transition(ctx, id, from, to, reason, at, false)
}

// CloseSession closes an open session, its close command due if tell;
// see store.Store.
func (s *Store) CloseSession(ctx context.Context, id, reason string, at time.Time, tell bool) (*store.Session, bool, error) {
	return s.transition(ctx, id, store.OpenSessionStates, store.SessionClosed, reason, at, tell)
}

// transition moves a session from one of from to to, and to closed with
// its close command due at at if tell.
func (s *Store) transition(ctx context.Context, id string, from []store.SessionState, to store.SessionState, reason string, at time.Time, tell bool) (*store.Session, bool, error) {
	if len(from) == 0 {
		return nil, false, fmt.Errorf("store: transition session %q: no state to move from", id)
	}
	var due int64
	if tell && to == store.SessionClosed {
		due = max(millis(at), 1) // 0 is "nothing due"
	}
	args := []any{id, string(to), millis(at), reason, due}
	marks := make([]string, len(from))
	for i, st := range from {
		args = append(args, string(st))
		marks[i] = fmt.Sprintf("$%d", len(args))
	}
	var (
		ses     *store.Session
		changed bool
	)
	// Audit events go with the change only: of several closers, only the
	// one that closed the session records it.
	err := s.audited(ctx, func(tx *sql.Tx) (about, error) {
		var err error
		if changed, err = execChanged(ctx, tx, `UPDATE sessions SET state = $2,
			active_at = CASE WHEN $2 = 'active' THEN $3 ELSE active_at END,
			closed_at = CASE WHEN $2 = 'closed' THEN $3 ELSE closed_at END,
			close_reason = CASE WHEN $2 = 'closed' THEN $4 ELSE close_reason END,
			close_due = CASE WHEN four_eyes = 1 AND approved_at = 0 THEN 0 ELSE CAST($5 AS BIGINT) END
			WHERE id = $1 AND state IN (`+strings.Join(marks, ", ")+`)`, args...); err != nil {
			return about{}, err
		}
		ses, err = scanSession(tx.QueryRowContext(ctx, sessionQuery+` WHERE s.id = $1`, id))
		if err != nil {
			return about{}, err
		}
		ab := sessionAbout(ses)
		ab.unchanged = !changed
		if changed {
			err = s.announce(ctx, tx, store.Change{Kind: store.SessionChanged, Fleet: ses.FleetName, Device: ses.DeviceName, Session: id, State: to})
		}
		return ab, err
	})
	if err != nil {
		return nil, false, fmt.Errorf("store: move session %q to %s: %w", id, to, s.classify(err))
	}
	return ses, changed, nil
}

// ClaimClose takes a due close command to send; see store.Store.
func (s *Store) ClaimClose(ctx context.Context, id string, now time.Time, lease time.Duration) (*store.Session, bool, error) {
	claimed, err := execChanged(ctx, s.db, `UPDATE sessions SET close_due = $2 WHERE id = $1 AND close_due > 0 AND close_due <= $3`,
		id, millis(now.Add(lease)), millis(now))
	if err != nil {
		return nil, false, fmt.Errorf("store: claim the close command of session %q: %w", id, s.classify(err))
	}
	if !claimed {
		return nil, false, nil // read nothing: every API node asks on every close
	}
	ses, err := s.GetSession(ctx, id)
	if err != nil {
		return nil, false, err
	}
	return ses, claimed, nil
}

// CloseSent records that a session's close command was sent; see
// store.Store.
func (s *Store) CloseSent(ctx context.Context, id string) error {
	return s.exec(store.WithoutAudit(ctx), fmt.Sprintf("record the close command of session %q sent", id),
		`UPDATE sessions SET close_due = 0 WHERE id = $1`, id)
}

// ApproveSession records a second engineer's approval and moves the
// session to connecting; see store.Store.
func (s *Store) ApproveSession(ctx context.Context, id, userID, email, policy string, at time.Time) (*store.Session, bool, error) {
	var (
		ses     *store.Session
		changed bool
	)
	err := s.audited(ctx, func(tx *sql.Tx) (about, error) {
		// The approver is never the engineer who asked: the store holds
		// to it as well as the API. And they may still approve: the API
		// checked their role as the call began, and it may have been
		// taken away since (users first, then roles: DeleteUser's order).
		var admin bool
		err := tx.QueryRowContext(ctx, `SELECT admin FROM users WHERE id = $1`+s.dialect.ForUpdate, userID).Scan(&admin)
		if errors.Is(err, sql.ErrNoRows) {
			return about{}, store.ErrMayNotApprove
		} else if err != nil {
			return about{}, err
		}
		var fleetID, role string
		if err := tx.QueryRowContext(ctx, `SELECT fleet_id FROM sessions WHERE id = $1`, id).Scan(&fleetID); err != nil {
			return about{}, err // no rows: ErrNotFound
		}
		err = tx.QueryRowContext(ctx, `SELECT role FROM roles WHERE fleet_id = $1 AND user_id = $2`+s.dialect.ForUpdate,
			fleetID, userID).Scan(&role)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return about{}, err
		}
		if !admin && role != string(store.RoleOperator) && role != string(store.RoleOwner) {
			return about{}, store.ErrMayNotApprove
		}
		if changed, err = execChanged(ctx, tx, `UPDATE sessions SET state = 'connecting', approved_by = $2, approved_email = $3,
			approved_at = $4, policy = $5
			WHERE id = $1 AND state = 'requested' AND four_eyes = 1 AND approved_at = 0
			AND (user_id IS NULL OR user_id <> $2) AND user_email <> $3`, id, userID, email, millis(at), policy); err != nil {
			return about{}, err
		}
		if ses, err = scanSession(tx.QueryRowContext(ctx, sessionQuery+` WHERE s.id = $1`, id)); err != nil {
			return about{}, err
		}
		ab := sessionAbout(ses)
		ab.unchanged = !changed
		if changed {
			err = s.announce(ctx, tx, store.Change{Kind: store.SessionChanged, Fleet: ses.FleetName, Device: ses.DeviceName,
				Session: id, State: store.SessionConnecting})
		}
		return ab, err
	})
	if err != nil {
		return nil, false, fmt.Errorf("store: approve session %q: %w", id, s.classify(err))
	}
	return ses, changed, nil
}

// TouchSessions moves the last activity of open sessions forward.
func (s *Store) TouchSessions(ctx context.Context, ids []string, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	args := []any{millis(at)}
	marks := make([]string, len(ids))
	for i, id := range ids {
		args = append(args, id)
		marks[i] = fmt.Sprintf("$%d", len(args))
	}
	return s.exec(store.WithoutAudit(ctx), fmt.Sprintf("touch %d sessions", len(ids)), `UPDATE sessions
		SET last_activity = CASE WHEN last_activity < $1 THEN $1 ELSE last_activity END
		WHERE state <> 'closed' AND id IN (`+strings.Join(marks, ", ")+`)`, args...)
}
