package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/porthole/porthole/store"
)

const tokenColumns = `id, user_id, hash, name, created_at, expires_at, last_used_at, factor_at, sso_refresh, sso_refresh_at, passkey_id`

func scanToken(sc scanner) (*store.Token, error) {
	var t store.Token
	if err := sc.Scan(&t.ID, &t.UserID, &t.Hash, &t.Name, (*unixMillis)(&t.CreatedAt),
		(*unixMillis)(&t.ExpiresAt), (*unixMillis)(&t.LastUsedAt), (*unixMillis)(&t.FactorAt),
		&t.SSORefresh, (*unixMillis)(&t.SSORefreshAt), &t.PasskeyID); err != nil {
		return nil, err
	}
	return &t, nil
}

// CreateToken adds an API token. An empty ID or CreatedAt is filled in; a
// zero ExpiresAt never expires. A missing user is ErrNotFound.
func (s *Store) CreateToken(ctx context.Context, t *store.Token) error {
	id, created := orNewID(t.ID, "tok"), normalTime(orNow(t.CreatedAt, time.Now()))
	if err := s.exec(ctx, fmt.Sprintf("create token %q for user %q", t.Name, t.UserID),
		`INSERT INTO tokens (`+tokenColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		id, t.UserID, t.Hash, t.Name, millis(created), millis(t.ExpiresAt), millis(t.LastUsedAt), millis(t.FactorAt),
		t.SSORefresh, millis(t.SSORefreshAt), t.PasskeyID); err != nil {
		return err
	}
	t.ID, t.CreatedAt = id, created
	t.ExpiresAt, t.LastUsedAt, t.FactorAt = normalTime(t.ExpiresAt), normalTime(t.LastUsedAt), normalTime(t.FactorAt)
	t.SSORefreshAt = normalTime(t.SSORefreshAt)
	return nil
}

// TokenByHash returns the token with the given hash unless it has expired
// at now; an expired token is ErrNotFound, as an unknown one is.
func (s *Store) TokenByHash(ctx context.Context, hash string, now time.Time) (*store.Token, error) {
	// The hash is a credential's digest: keep it out of messages.
	return one(ctx, s, "look up token", scanToken, `SELECT `+tokenColumns+` FROM tokens
		WHERE hash = $1 AND (expires_at = 0 OR expires_at > $2)`, hash, millis(now))
}

// ListTokens lists a user's tokens, expired ones included, oldest first.
func (s *Store) ListTokens(ctx context.Context, userID string) ([]*store.Token, error) {
	return all(ctx, s, fmt.Sprintf("list tokens of user %q", userID), scanToken,
		`SELECT `+tokenColumns+` FROM tokens WHERE user_id = $1 ORDER BY created_at, id`, userID)
}

// DeleteToken deletes one of a user's tokens. Another user's token is
// ErrNotFound, as a missing one is.
func (s *Store) DeleteToken(ctx context.Context, userID, id string) error {
	return s.change(ctx, fmt.Sprintf("delete token %q of user %q", id, userID),
		`DELETE FROM tokens WHERE id = $1 AND user_id = $2`, id, userID)
}

// TouchToken records that a token was used at the given time.
func (s *Store) TouchToken(ctx context.Context, id string, at time.Time) error {
	return s.change(store.WithoutAudit(ctx), fmt.Sprintf("touch token %q", id),
		`UPDATE tokens SET last_used_at = $2 WHERE id = $1`, id, millis(at))
}

// SetTokenFactor records that one of a user's tokens proved a second
// factor at the given time; see store.Store.
func (s *Store) SetTokenFactor(ctx context.Context, userID, id string, at time.Time) error {
	return s.change(ctx, fmt.Sprintf("record the second factor of token %q", id),
		`UPDATE tokens SET factor_at = $3 WHERE id = $1 AND user_id = $2`, id, userID, millis(at))
}
