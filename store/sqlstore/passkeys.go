package sqlstore

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/porthole/porthole/store"
)

// Passkeys and WebAuthn ceremonies; see store.Passkeys. Bytes are stored
// as base64url TEXT (b64), so the schema stays portable.

const passkeyColumns = `id, user_id, credential_id, public_key, attestation_format, aaguid, sign_count, transports,
	user_verified, backup_eligible, backup_state, name, created_at, last_used_at`

// b64 is bytes as the schema keeps them.
func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// b64Bytes scans base64url TEXT into bytes.
type b64Bytes []byte

func (b *b64Bytes) Scan(src any) error {
	var s string
	switch v := src.(type) {
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		return fmt.Errorf("bytes column holds %T; want base64url text", src)
	}
	out, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("bytes column: %w", err)
	}
	*b = out
	return nil
}

// wordList scans a comma-separated TEXT into words; empty text is none.
type wordList []string

func (w *wordList) Scan(src any) error {
	s, ok := src.(string)
	if !ok {
		if b, isBytes := src.([]byte); isBytes {
			s, ok = string(b), true
		}
	}
	if !ok {
		return fmt.Errorf("list column holds %T; want text", src)
	}
	*w = nil
	if s != "" {
		*w = strings.Split(s, ",")
	}
	return nil
}

func scanPasskey(sc scanner) (*store.Passkey, error) {
	var p store.Passkey
	var count int64
	if err := sc.Scan(&p.ID, &p.UserID, (*b64Bytes)(&p.CredentialID), (*b64Bytes)(&p.PublicKey), &p.AttestationFormat,
		(*b64Bytes)(&p.AAGUID), &count, (*wordList)(&p.Transports), (*intBool)(&p.UserVerified), (*intBool)(&p.BackupEligible),
		(*intBool)(&p.BackupState), &p.Name, (*unixMillis)(&p.CreatedAt), (*unixMillis)(&p.LastUsedAt)); err != nil {
		return nil, err
	}
	p.SignCount = uint32(count)
	return &p, nil
}

// CreatePasskey stores a new passkey; see store.Passkeys.
func (s *Store) CreatePasskey(ctx context.Context, p *store.Passkey) error {
	for _, t := range p.Transports {
		if t == "" || strings.Contains(t, ",") {
			return fmt.Errorf("store: create passkey %q of user %q: transport %q is no word", p.Name, p.UserID, t)
		}
	}
	id, created := orNewID(p.ID, "psk"), normalTime(orNow(p.CreatedAt, time.Now()))
	if err := s.exec(ctx, fmt.Sprintf("create passkey %q of user %q", p.Name, p.UserID),
		`INSERT INTO passkeys (`+passkeyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		id, p.UserID, b64(p.CredentialID), b64(p.PublicKey), p.AttestationFormat, b64(p.AAGUID), int64(p.SignCount),
		strings.Join(p.Transports, ","), boolInt(p.UserVerified), boolInt(p.BackupEligible), boolInt(p.BackupState),
		p.Name, millis(created), millis(p.LastUsedAt)); err != nil {
		return err
	}
	p.ID, p.CreatedAt, p.LastUsedAt = id, created, normalTime(p.LastUsedAt)
	return nil
}

// ListPasskeys lists a user's passkeys, oldest first.
func (s *Store) ListPasskeys(ctx context.Context, userID string) ([]*store.Passkey, error) {
	return all(ctx, s, fmt.Sprintf("list passkeys of user %q", userID), scanPasskey,
		`SELECT `+passkeyColumns+` FROM passkeys WHERE user_id = $1 ORDER BY created_at, id`, userID)
}

// PasskeyByCredentialID returns the passkey with a credential ID.
func (s *Store) PasskeyByCredentialID(ctx context.Context, credentialID []byte) (*store.Passkey, error) {
	return one(ctx, s, "look up a passkey by its credential ID", scanPasskey,
		`SELECT `+passkeyColumns+` FROM passkeys WHERE credential_id = $1`, b64(credentialID))
}

// UsePasskey records a use of a passkey if its sign count is still from:
// one guarded UPDATE, so of two uses racing with the same counter one
// wins.
func (s *Store) UsePasskey(ctx context.Context, p *store.Passkey, from uint32) (bool, error) {
	what := fmt.Sprintf("record a use of passkey %q", p.ID)
	changed, err := execChanged(ctx, s.db, `UPDATE passkeys SET sign_count = $4, backup_state = $5, last_used_at = $6
		WHERE id = $1 AND user_id = $2 AND sign_count = $3`,
		p.ID, p.UserID, int64(from), int64(p.SignCount), boolInt(p.BackupState), millis(p.LastUsedAt))
	if err != nil {
		return false, fmt.Errorf("store: %s: %w", what, s.classify(err))
	}
	if changed {
		p.LastUsedAt = normalTime(p.LastUsedAt)
		return true, nil
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM passkeys WHERE id = $1 AND user_id = $2`, p.ID, p.UserID).Scan(&n); err != nil {
		return false, fmt.Errorf("store: %s: %w", what, s.classify(err))
	}
	if n == 0 {
		return false, fmt.Errorf("store: %s: %w", what, store.ErrNotFound)
	}
	return false, nil
}

// DeletePasskey deletes one of a user's passkeys.
func (s *Store) DeletePasskey(ctx context.Context, userID, id, keep string) ([]string, error) {
	var ended []string
	err := s.audited(ctx, func(tx *sql.Tx) (about, error) {
		if err := execOne(ctx, tx, `DELETE FROM passkeys WHERE id = $1 AND user_id = $2`, id, userID); err != nil {
			return about{}, err
		}
		rows, err := tx.QueryContext(ctx, `SELECT id FROM tokens WHERE passkey_id = $1 AND user_id = $2 AND id <> $3 ORDER BY id`, id, userID, keep)
		if err != nil {
			return about{}, err
		}
		defer rows.Close()
		for rows.Next() {
			var t string
			if err := rows.Scan(&t); err != nil {
				return about{}, err
			}
			ended = append(ended, t)
		}
		if err := rows.Err(); err != nil {
			return about{}, err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM tokens WHERE passkey_id = $1 AND user_id = $2 AND id <> $3`, id, userID, keep)
		return about{}, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: delete passkey %q of user %q: %w", id, userID, s.classify(err))
	}
	return ended, nil
}

// nullable is s, or NULL when empty (for optional references).
func nullable(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// PutCeremony stores a ceremony in place of one with the same ID, and
// forgets the long expired ones, in one transaction.
func (s *Store) PutCeremony(ctx context.Context, c *store.Ceremony) error {
	created := normalTime(orNow(c.CreatedAt, time.Now()))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM webauthn_ceremonies WHERE expires_at <= $1 OR id = $2`,
			millis(created.Add(-store.CeremonyPurgeAfter)), c.ID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO webauthn_ceremonies (id, kind, user_id, token_id, session, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			c.ID, c.Kind, nullable(c.UserID), nullable(c.TokenID), c.Session, millis(created), millis(c.ExpiresAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: store a %s ceremony: %w", c.Kind, s.classify(err))
	}
	c.CreatedAt, c.ExpiresAt = created, normalTime(c.ExpiresAt)
	return nil
}

// TakeCeremony deletes and returns an unexpired ceremony: one DELETE …
// RETURNING, so of two callers taking it at once exactly one gets it.
func (s *Store) TakeCeremony(ctx context.Context, id, kind string, now time.Time) (*store.Ceremony, error) {
	var c store.Ceremony
	err := s.db.QueryRowContext(ctx, `DELETE FROM webauthn_ceremonies WHERE id = $1 AND kind = $2 AND expires_at > $3
		RETURNING id, kind, COALESCE(user_id, ''), COALESCE(token_id, ''), session, created_at, expires_at`,
		id, kind, millis(now)).Scan(&c.ID, &c.Kind, &c.UserID, &c.TokenID, &c.Session, (*unixMillis)(&c.CreatedAt), (*unixMillis)(&c.ExpiresAt))
	if err != nil {
		// The ID may be a credential's hash: keep it out of messages.
		return nil, fmt.Errorf("store: take a %s ceremony: %w", kind, s.classify(err))
	}
	return &c, nil
}
