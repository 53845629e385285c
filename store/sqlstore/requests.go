package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/porthole/porthole/store"
)

const requestQuery = `SELECT r.id, r.fleet_id, f.name, r.device_id, d.name, r.kind, r.session_id, r.reason,
		r.requested_by, r.state, r.claimed_by, r.claimed_email, r.close_reason, r.closed_by,
		r.created_at, r.expires_at, r.claimed_at, r.closed_at
	FROM support_requests r JOIN fleets f ON f.id = r.fleet_id JOIN devices d ON d.id = r.device_id`

func scanRequest(sc scanner) (*store.SupportRequest, error) {
	var r store.SupportRequest
	if err := sc.Scan(&r.ID, &r.FleetID, &r.FleetName, &r.DeviceID, &r.DeviceName, &r.Kind, (*emptyNull)(&r.SessionID),
		&r.Reason, &r.RequestedBy, &r.State, (*emptyNull)(&r.ClaimedBy), &r.ClaimedEmail, &r.CloseReason, &r.ClosedBy,
		(*unixMillis)(&r.CreatedAt), (*unixMillis)(&r.ExpiresAt), (*unixMillis)(&r.ClaimedAt), (*unixMillis)(&r.ClosedAt)); err != nil {
		return nil, err
	}
	return &r, nil
}

// CreateSupportRequest stores a new open request; see store.SupportRequests.
func (s *Store) CreateSupportRequest(ctx context.Context, r *store.SupportRequest) error {
	r.ID = orNewID(r.ID, "req")
	r.CreatedAt = normalTime(orNow(r.CreatedAt, time.Now()))
	r.ExpiresAt = normalTime(r.ExpiresAt)
	r.State = store.RequestOpen
	switch r.Kind {
	case store.RequestSupport:
		if r.SessionID != "" {
			return fmt.Errorf("store: create support request: a support request names no session")
		}
	case store.RequestApproval, store.RequestFourEyes:
		if r.SessionID == "" {
			return fmt.Errorf("store: create support request: an %s request names its session", r.Kind)
		}
	default:
		return fmt.Errorf("store: create support request: unknown kind %q", r.Kind)
	}
	// The fleet is read from the device, and an approval's session must be
	// on that device, in the same statement.
	err := s.writeAudited(ctx, func(q execer) error {
		return execOne(ctx, q, `INSERT INTO support_requests
		(id, fleet_id, device_id, kind, session_id, reason, requested_by, state, created_at, expires_at)
		SELECT $1, d.fleet_id, d.id, $3, CAST($4 AS TEXT), $5, $6, $7, $8, $9
		FROM devices d WHERE d.id = $2
		AND (CAST($4 AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM sessions x WHERE x.id = CAST($4 AS TEXT) AND x.device_id = d.id))`,
			r.ID, r.DeviceID, string(r.Kind), nullIfEmpty(r.SessionID), r.Reason, r.RequestedBy, string(r.State),
			millis(r.CreatedAt), millis(r.ExpiresAt))
	})
	if err != nil {
		return fmt.Errorf("store: create support request on device %q: %w", r.DeviceID, s.classify(err))
	}
	got, err := s.GetSupportRequest(ctx, r.ID)
	if err != nil {
		return err
	}
	*r = *got
	return nil
}

// GetSupportRequest returns the request with the given ID.
func (s *Store) GetSupportRequest(ctx context.Context, id string) (*store.SupportRequest, error) {
	r, err := one(ctx, s, fmt.Sprintf("get support request %q", id), scanRequest, requestQuery+` WHERE r.id = $1`, id)
	if err != nil {
		return nil, err
	}
	if err := s.linkSessions(ctx, s.db, []*store.SupportRequest{r}); err != nil {
		return nil, err
	}
	return r, nil
}

// ListSupportRequests lists requests newest first; see
// store.SupportRequestFilter.
func (s *Store) ListSupportRequests(ctx context.Context, f store.SupportRequestFilter) ([]*store.SupportRequest, error) {
	if f.FleetIDs != nil && len(f.FleetIDs) == 0 {
		return []*store.SupportRequest{}, nil
	}
	var w where
	if f.FleetIDs != nil {
		w.in("r.fleet_id", f.FleetIDs)
	}
	if f.DeviceID != "" {
		w.add("r.device_id = ?", f.DeviceID)
	}
	if f.SessionID != "" {
		w.add("r.session_id = ?", f.SessionID)
	}
	if f.Kind != "" {
		w.add("r.kind = ?", string(f.Kind))
	}
	if !f.PendingAt.IsZero() {
		w.add("r.state <> 'closed' AND r.expires_at > ?", millis(f.PendingAt))
	}
	query := requestQuery + w.String() + " ORDER BY r.created_at DESC, r.id LIMIT " + w.arg(limit(f.Limit, 100))
	rs, err := all(ctx, s, "list support requests", scanRequest, query, w.args...)
	if err != nil {
		return nil, err
	}
	if err := s.linkSessions(ctx, s.db, rs); err != nil {
		return nil, err
	}
	return rs, nil
}

// querier is *sql.DB or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// linkSessions fills SessionIDs: an approval's or four-eyes request's own
// session; for a support
// request, the sessions on its device that began from its creation until
// it closed or expired, whichever came first.
func (s *Store) linkSessions(ctx context.Context, q querier, rs []*store.SupportRequest) error {
	if len(rs) == 0 {
		return nil
	}
	byID := make(map[string]*store.SupportRequest, len(rs))
	args := make([]any, 0, len(rs))
	marks := make([]string, 0, len(rs))
	for _, r := range rs {
		r.SessionIDs = []string{}
		byID[r.ID] = r
		args = append(args, r.ID)
		marks = append(marks, fmt.Sprintf("$%d", len(args)))
	}
	rows, err := q.QueryContext(ctx, `SELECT r.id, x.id FROM support_requests r JOIN sessions x ON
		(r.kind <> 'support' AND x.id = r.session_id) OR
		(r.kind = 'support' AND x.device_id = r.device_id AND x.created_at >= r.created_at AND
		 x.created_at < CASE WHEN r.closed_at > 0 AND r.closed_at < r.expires_at THEN r.closed_at ELSE r.expires_at END)
		WHERE r.id IN (`+strings.Join(marks, ", ")+`) ORDER BY x.created_at, x.id`, args...)
	if err != nil {
		return fmt.Errorf("store: sessions of support requests: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var rid, sid string
		if err := rows.Scan(&rid, &sid); err != nil {
			return fmt.Errorf("store: sessions of support requests: %w", err)
		}
		byID[rid].SessionIDs = append(byID[rid].SessionIDs, sid)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: sessions of support requests: %w", err)
	}
	return nil
}

// ClaimSupportRequest gives an open request to a user; see
// store.SupportRequests.
func (s *Store) ClaimSupportRequest(ctx context.Context, id, userID, email string, at time.Time) (*store.SupportRequest, bool, error) {
	return s.changeRequest(ctx, id, "claim", `UPDATE support_requests
		SET state = 'claimed', claimed_by = $2, claimed_email = $3, claimed_at = $4
		WHERE id = $1 AND state = 'open' AND expires_at > $4`,
		id, userID, email, millis(at))
}

// CloseSupportRequest closes a request; see store.SupportRequests.
func (s *Store) CloseSupportRequest(ctx context.Context, id, reason, by string, at time.Time) (*store.SupportRequest, bool, error) {
	if reason == "" {
		return nil, false, fmt.Errorf("store: close support request %q: a reason is required", id)
	}
	return s.changeRequest(ctx, id, "close", `UPDATE support_requests
		SET state = 'closed', close_reason = $2, closed_by = $3, closed_at = $4
		WHERE id = $1 AND state <> 'closed'`,
		id, reason, by, millis(at))
}

// ReleaseSupportRequest puts a claimed request back in the queue; see
// store.SupportRequests.
func (s *Store) ReleaseSupportRequest(ctx context.Context, id, email string) (*store.SupportRequest, bool, error) {
	return s.changeRequest(ctx, id, "release", `UPDATE support_requests
		SET state = 'open', claimed_by = NULL, claimed_email = '', claimed_at = 0
		WHERE id = $1 AND state = 'claimed' AND claimed_email = $2`,
		id, email)
}

// changeRequest runs a conditional update of one request in a transaction
// and returns the request as it is afterwards.
func (s *Store) changeRequest(ctx context.Context, id, what, update string, args ...any) (*store.SupportRequest, bool, error) {
	var (
		r       *store.SupportRequest
		changed bool
	)
	// The events ctx carries are recorded only if the request changed.
	err := s.audited(ctx, func(tx *sql.Tx) (about, error) {
		var err error
		if changed, err = execChanged(ctx, tx, update, args...); err != nil {
			return about{}, err
		}
		if r, err = scanRequest(tx.QueryRowContext(ctx, requestQuery+` WHERE r.id = $1`, id)); err != nil {
			return about{}, err
		}
		return about{unchanged: !changed, fleetID: r.FleetID, deviceID: r.DeviceID, session: r.SessionID},
			s.linkSessions(ctx, tx, []*store.SupportRequest{r})
	})
	if err != nil {
		return nil, false, fmt.Errorf("store: %s support request %q: %w", what, id, s.classify(err))
	}
	return r, changed, nil
}
