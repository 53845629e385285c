package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/porthole/porthole/store"
)

const userColumns = `id, email, password_hash, totp_secret, totp_last_step, admin, created_at, sso_subject`

func scanUser(sc scanner) (*store.User, error) {
	var u store.User
	if err := sc.Scan(&u.ID, &u.Email, &u.PasswordHash, &u.TOTPSecret, &u.TOTPLastStep,
		(*intBool)(&u.Admin), (*unixMillis)(&u.CreatedAt), &u.SSOSubject); err != nil {
		return nil, err
	}
	return &u, nil
}

// CreateUser adds a user. An empty ID or CreatedAt is filled in.
func (s *Store) CreateUser(ctx context.Context, u *store.User) error {
	id, created := orNewID(u.ID, "usr"), normalTime(orNow(u.CreatedAt, time.Now()))
	if err := s.exec(ctx, fmt.Sprintf("create user %q", u.Email),
		`INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		id, u.Email, u.PasswordHash, u.TOTPSecret, u.TOTPLastStep, boolInt(u.Admin), millis(created), u.SSOSubject); err != nil {
		return err
	}
	u.ID, u.CreatedAt = id, created
	return nil
}

// GetUser returns the user with the given ID.
func (s *Store) GetUser(ctx context.Context, id string) (*store.User, error) {
	return one(ctx, s, fmt.Sprintf("get user %q", id), scanUser,
		`SELECT `+userColumns+` FROM users WHERE id = $1`, id)
}

// GetUserByEmail returns the user with exactly this email address.
func (s *Store) GetUserByEmail(ctx context.Context, email string) (*store.User, error) {
	return one(ctx, s, fmt.Sprintf("get user %q", email), scanUser,
		`SELECT `+userColumns+` FROM users WHERE email = $1`, email)
}

// ListUsers returns every user, by email.
func (s *Store) ListUsers(ctx context.Context) ([]*store.User, error) {
	return all(ctx, s, "list users", scanUser, `SELECT `+userColumns+` FROM users ORDER BY email`)
}

// CountUsers returns how many users there are.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count users: %w", err)
	}
	return n, nil
}

// AdvanceTOTPStep records step as the user's last used TOTP step if it is
// later than the one recorded. It is one guarded UPDATE, so of several
// concurrent logins with the same code exactly one sees true.
func (s *Store) AdvanceTOTPStep(ctx context.Context, userID string, step int64) (bool, error) {
	err := execOne(ctx, s.db, `UPDATE users SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2`, userID, step)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("store: advance TOTP step of user %q: %w", userID, err)
	}
	// Nothing changed: a replay, or no such user.
	if _, err := s.GetUser(ctx, userID); err != nil {
		return false, err
	}
	return false, nil
}

// DeleteUser deletes a user; the schema's cascades delete their tokens,
// passkeys and roles in the same statement, and clear the creator of their enrollment
// tokens. With by, both users' rows are locked first, in one order, so that
// of two administrators deleting each other one waits for the other and
// then finds itself gone.
func (s *Store) DeleteUser(ctx context.Context, id, by string) error {
	err := s.audited(ctx, func(tx *sql.Tx) (about, error) {
		if by != "" {
			if _, err := tx.ExecContext(ctx, `SELECT id FROM users WHERE id IN ($1, $2) ORDER BY id`+s.dialect.ForUpdate, id, by); err != nil {
				return about{}, err
			}
			var admin bool
			err := tx.QueryRowContext(ctx, `SELECT admin FROM users WHERE id = $1`, by).Scan(&admin)
			if errors.Is(err, sql.ErrNoRows) || err == nil && !admin {
				return about{}, store.ErrNotAdmin
			}
			if err != nil {
				return about{}, err
			}
		}
		return about{}, execOne(ctx, tx, `DELETE FROM users WHERE id = $1`, id)
	})
	if err != nil {
		return fmt.Errorf("store: delete user %q: %w", id, s.classify(err))
	}
	return nil
}

// ResetUserSecrets replaces a user's password hash and TOTP secret and
// deletes their tokens and passkeys, together: a reset that left an old
// login or passkey alive would not lock out whoever stole the old
// secrets.
func (s *Store) ResetUserSecrets(ctx context.Context, id, passwordHash, totpSecret string) error {
	err := s.audited(ctx, func(tx *sql.Tx) (about, error) {
		if err := execOne(ctx, tx, `UPDATE users SET password_hash = $2, totp_secret = $3, totp_last_step = 0 WHERE id = $1`,
			id, passwordHash, totpSecret); err != nil {
			return about{}, err
		}
		for _, q := range []string{`DELETE FROM tokens WHERE user_id = $1`, `DELETE FROM passkeys WHERE user_id = $1`} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return about{}, err
			}
		}
		return about{}, nil
	})
	if err != nil {
		return fmt.Errorf("store: reset the secrets of user %q: %w", id, s.classify(err))
	}
	return nil
}
