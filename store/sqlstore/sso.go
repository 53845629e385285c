package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/porthole/porthole/store"
)

// SyncSSOUser creates or updates the user of an SSO identity and replaces
// their roles, in one transaction; see store.Store.
func (s *Store) SyncSSOUser(ctx context.Context, u *store.User, roles map[string]store.Role) ([]*store.Membership, error) {
	what := fmt.Sprintf("sync SSO user %q", u.Email)
	if u.SSOSubject == "" {
		return nil, fmt.Errorf("store: %s: no SSO subject", what)
	}
	for _, r := range roles {
		if !r.Valid() {
			return nil, fmt.Errorf("store: %s: %q is not a role", what, r)
		}
	}
	var id string
	var created time.Time
	err := s.audited(ctx, func(tx *sql.Tx) (about, error) {
		err := tx.QueryRowContext(ctx, `SELECT id, created_at FROM users WHERE sso_subject = $1`, u.SSOSubject).
			Scan(&id, (*unixMillis)(&created))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			id, created = orNewID(u.ID, "usr"), normalTime(orNow(u.CreatedAt, time.Now()))
			if _, err := tx.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, '', '', 0, $3, $4, $5)`,
				id, u.Email, boolInt(u.Admin), millis(created), u.SSOSubject); err != nil {
				return about{}, err
			}
		case err != nil:
			return about{}, err
		default:
			if _, err := tx.ExecContext(ctx, `UPDATE users SET email = $2, admin = $3 WHERE id = $1`,
				id, u.Email, boolInt(u.Admin)); err != nil {
				return about{}, err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM roles WHERE user_id = $1`, id); err != nil {
			return about{}, err
		}
		for _, fleet := range slices.Sorted(maps.Keys(roles)) {
			if _, err := tx.ExecContext(ctx, `INSERT INTO roles (fleet_id, user_id, role) SELECT id, $2, $3 FROM fleets WHERE name = $1`,
				fleet, id, string(roles[fleet])); err != nil {
				return about{}, err
			}
		}
		return about{}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, s.classify(err))
	}
	u.ID, u.CreatedAt, u.PasswordHash, u.TOTPSecret = id, created, "", ""
	return s.Memberships(ctx, id)
}

// DueSSORefreshes lists tokens whose refresh is due; see store.Store.
func (s *Store) DueSSORefreshes(ctx context.Context, now time.Time, limit int) ([]*store.Token, error) {
	return all(ctx, s, "list due SSO refreshes", scanToken, `SELECT `+tokenColumns+` FROM tokens
		WHERE sso_refresh <> '' AND sso_refresh_at <= $1 AND (expires_at = 0 OR expires_at > $1)
		ORDER BY sso_refresh_at, id LIMIT $2`, millis(now), limit)
}

// ClaimSSORefresh claims a due refresh for this caller; see store.Store.
func (s *Store) ClaimSSORefresh(ctx context.Context, id string, due, until time.Time) (bool, error) {
	changed, err := execChanged(ctx, s.db, `UPDATE tokens SET sso_refresh_at = $3 WHERE id = $1 AND sso_refresh_at = $2 AND sso_refresh <> ''`,
		id, millis(due), millis(until))
	if err != nil {
		return false, fmt.Errorf("store: claim the SSO refresh of token %q: %w", id, s.classify(err))
	}
	return changed, nil
}

// SetSSORefresh stores a token's next refresh token; see store.Store.
func (s *Store) SetSSORefresh(ctx context.Context, id, sealed string, next time.Time) error {
	return s.change(ctx, fmt.Sprintf("store the SSO refresh token of token %q", id),
		`UPDATE tokens SET sso_refresh = $2, sso_refresh_at = $3 WHERE id = $1`, id, sealed, millis(next))
}

const grantColumns = `id, device_hash, user_hash, requester, created_at, expires_at, polled_at, state,
	COALESCE(user_id, ''), sso_refresh, sso_refresh_at, login_expires`

func scanGrant(sc scanner) (*store.DeviceGrant, error) {
	var g store.DeviceGrant
	if err := sc.Scan(&g.ID, &g.DeviceHash, &g.UserHash, &g.Requester, (*unixMillis)(&g.CreatedAt),
		(*unixMillis)(&g.ExpiresAt), (*unixMillis)(&g.PolledAt), &g.State, &g.UserID, &g.SSORefresh,
		(*unixMillis)(&g.SSORefreshAt), (*unixMillis)(&g.LoginExpires)); err != nil {
		return nil, err
	}
	return &g, nil
}

// CreateDeviceGrant adds a pending device grant. An empty ID or CreatedAt
// is filled in.
func (s *Store) CreateDeviceGrant(ctx context.Context, g *store.DeviceGrant) error {
	id, created := orNewID(g.ID, "dgr"), normalTime(orNow(g.CreatedAt, time.Now()))
	if err := s.exec(ctx, "create a device grant",
		`INSERT INTO device_grants (id, device_hash, user_hash, requester, created_at, expires_at, state)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		id, g.DeviceHash, g.UserHash, g.Requester, millis(created), millis(g.ExpiresAt), string(store.GrantPending)); err != nil {
		return err
	}
	g.ID, g.CreatedAt, g.ExpiresAt, g.State = id, created, normalTime(g.ExpiresAt), store.GrantPending
	return nil
}

// DeviceGrantByUserCode returns a pending, unexpired grant; see store.Store.
func (s *Store) DeviceGrantByUserCode(ctx context.Context, hash string, now time.Time) (*store.DeviceGrant, error) {
	return one(ctx, s, "look up a device grant by its user code", scanGrant, `SELECT `+grantColumns+` FROM device_grants
		WHERE user_hash = $1 AND state = $2 AND expires_at > $3`, hash, string(store.GrantPending), millis(now))
}

// DeviceGrantByDeviceCode returns a grant in any state; see store.Store.
func (s *Store) DeviceGrantByDeviceCode(ctx context.Context, hash string) (*store.DeviceGrant, error) {
	return one(ctx, s, "look up a device grant by its device code", scanGrant,
		`SELECT `+grantColumns+` FROM device_grants WHERE device_hash = $1`, hash)
}

// PollDeviceGrant records a poll if none came in between; see store.Store.
func (s *Store) PollDeviceGrant(ctx context.Context, id string, last, now time.Time) (bool, error) {
	changed, err := execChanged(ctx, s.db, `UPDATE device_grants SET polled_at = $3 WHERE id = $1 AND polled_at = $2`,
		id, millis(last), millis(now))
	if err != nil {
		return false, fmt.Errorf("store: record a poll of device grant %q: %w", id, s.classify(err))
	}
	return changed, nil
}

// DecideDeviceGrant approves or denies a pending grant; see store.Store.
func (s *Store) DecideDeviceGrant(ctx context.Context, g *store.DeviceGrant, now time.Time) (bool, error) {
	if g.State != store.GrantApproved && g.State != store.GrantDenied {
		return false, fmt.Errorf("store: decide device grant %q: %q is not a decision", g.ID, g.State)
	}
	var user any // NULL unless approved
	if g.UserID != "" {
		user = g.UserID
	}
	var changed bool
	err := s.audited(ctx, func(tx *sql.Tx) (about, error) {
		var err error
		changed, err = execChanged(ctx, tx, `UPDATE device_grants SET state = $2, user_id = $3, sso_refresh = $4,
			sso_refresh_at = $5, login_expires = $6 WHERE id = $1 AND state = 'pending' AND expires_at > $7`,
			g.ID, string(g.State), user, g.SSORefresh, millis(g.SSORefreshAt), millis(g.LoginExpires), millis(now))
		return about{unchanged: !changed}, err
	})
	if err != nil {
		return false, fmt.Errorf("store: decide device grant %q: %w", g.ID, s.classify(err))
	}
	return changed, nil
}

// UseDeviceGrant moves an approved grant to used; see store.Store.
func (s *Store) UseDeviceGrant(ctx context.Context, id string) (bool, error) {
	changed, err := execChanged(ctx, s.db, `UPDATE device_grants SET state = 'used', sso_refresh = '' WHERE id = $1 AND state = 'approved'`, id)
	if err != nil {
		return false, fmt.Errorf("store: use device grant %q: %w", id, s.classify(err))
	}
	return changed, nil
}

// DeleteDeviceGrants deletes the grants that expired before the given time.
func (s *Store) DeleteDeviceGrants(ctx context.Context, before time.Time) error {
	return s.exec(ctx, "delete expired device grants", `DELETE FROM device_grants WHERE expires_at < $1`, millis(before))
}
