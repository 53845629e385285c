package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/porthole/porthole/store"
)

const enrollmentTokenColumns = `id, fleet_id, hash, uses_left, max_uses, created_by, created_at, expires_at`

func scanEnrollmentToken(sc scanner) (*store.EnrollmentToken, error) {
	var t store.EnrollmentToken
	if err := sc.Scan(&t.ID, &t.FleetID, &t.Hash, &t.UsesLeft, &t.MaxUses, (*emptyNull)(&t.CreatedBy),
		(*unixMillis)(&t.CreatedAt), (*unixMillis)(&t.ExpiresAt)); err != nil {
		return nil, err
	}
	return &t, nil
}

// CreateEnrollmentToken adds an enrollment token. An empty ID or CreatedAt
// is filled in; a zero ExpiresAt never expires. MaxUses must be at least 1
// and UsesLeft between 0 and MaxUses. A missing fleet or creator is
// ErrNotFound.
func (s *Store) CreateEnrollmentToken(ctx context.Context, t *store.EnrollmentToken) error {
	if t.MaxUses < 1 || t.UsesLeft < 0 || t.UsesLeft > t.MaxUses {
		return fmt.Errorf("store: create enrollment token for fleet %q: %d uses left of %d: want at least 1 use, and no more left than that",
			t.FleetID, t.UsesLeft, t.MaxUses)
	}
	id, created := orNewID(t.ID, "enr"), normalTime(orNow(t.CreatedAt, time.Now()))
	if err := s.exec(ctx, fmt.Sprintf("create enrollment token for fleet %q", t.FleetID),
		`INSERT INTO enrollment_tokens (`+enrollmentTokenColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		id, t.FleetID, t.Hash, t.UsesLeft, t.MaxUses, nullIfEmpty(t.CreatedBy), millis(created), millis(t.ExpiresAt)); err != nil {
		return err
	}
	t.ID, t.CreatedAt, t.ExpiresAt = id, created, normalTime(t.ExpiresAt)
	return nil
}

// ListEnrollmentTokens lists a fleet's enrollment tokens, used up and
// expired ones included, oldest first.
func (s *Store) ListEnrollmentTokens(ctx context.Context, fleetID string) ([]*store.EnrollmentToken, error) {
	return all(ctx, s, fmt.Sprintf("list enrollment tokens of fleet %q", fleetID), scanEnrollmentToken,
		`SELECT `+enrollmentTokenColumns+` FROM enrollment_tokens WHERE fleet_id = $1 ORDER BY created_at, id`, fleetID)
}

// DeleteEnrollmentToken deletes one of a fleet's enrollment tokens.
// Another fleet's token is ErrNotFound, as a missing one is.
func (s *Store) DeleteEnrollmentToken(ctx context.Context, fleetID, id string) error {
	return s.change(ctx, fmt.Sprintf("delete enrollment token %q of fleet %q", id, fleetID),
		`DELETE FROM enrollment_tokens WHERE id = $1 AND fleet_id = $2`, id, fleetID)
}

// EnrollDevice spends one use of the enrollment token with the given hash
// and adds d to the token's fleet, in one transaction: if any step fails,
// the token keeps its use and d is left as it was. On success d holds
// what was stored (ID, fleet, host certificate, times).
func (s *Store) EnrollDevice(ctx context.Context, tokenHash string, now time.Time, d *store.Device, mkCert func(*store.Fleet) (string, error)) error {
	nd := *d
	nd.ID = orNewID(d.ID, "dev")
	nd.EnrolledAt = normalTime(orNow(d.EnrolledAt, now))
	nd.LastSeen = normalTime(d.LastSeen)
	err := s.audited(ctx, func(tx *sql.Tx) (about, error) {
		fleet, err := s.spendEnrollmentUse(ctx, tx, tokenHash, now)
		if err != nil {
			return about{}, err
		}
		// The token, not the device, says which fleet it joins.
		nd.FleetID, nd.FleetName = fleet.ID, fleet.Name
		if nd.HostCert, err = mkCert(fleet); err != nil {
			return about{}, fmt.Errorf("make host certificate: %w", err)
		}
		if err := insertDevice(ctx, tx, &nd); err != nil {
			return about{}, fmt.Errorf("add to fleet %q: %w", fleet.Name, s.classify(err))
		}
		return about{fleetID: fleet.ID, fleet: fleet.Name, deviceID: nd.ID, device: nd.Name},
			s.announce(ctx, tx, store.Change{Kind: store.DeviceEnrolled, Fleet: fleet.Name, Device: nd.Name})
	})
	if err != nil {
		return fmt.Errorf("store: enroll device %q: %w", d.Name, err)
	}
	*d = nd
	return nil
}

// spendEnrollmentUse takes one use off the unexpired enrollment token with
// the given hash and returns its fleet.
func (s *Store) spendEnrollmentUse(ctx context.Context, tx *sql.Tx, tokenHash string, now time.Time) (*store.Fleet, error) {
	var (
		id, fleetID string
		usesLeft    int
		expires     time.Time
	)
	err := tx.QueryRowContext(ctx, `SELECT id, fleet_id, uses_left, expires_at FROM enrollment_tokens WHERE hash = $1`,
		tokenHash).Scan(&id, &fleetID, &usesLeft, (*unixMillis)(&expires))
	if err != nil {
		return nil, fmt.Errorf("look up enrollment token: %w", s.classify(err))
	}
	switch {
	case !expires.IsZero() && !now.Before(expires):
		return nil, store.ErrTokenExpired
	case usesLeft <= 0:
		return nil, store.ErrTokenUsedUp
	}
	// Guarded, so that of enrollments racing for the last use (PostgreSQL
	// re-checks the WHERE after waiting for the row) only one spends it.
	err = execOne(ctx, tx, `UPDATE enrollment_tokens SET uses_left = uses_left - 1 WHERE id = $1 AND uses_left > 0`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrTokenUsedUp
	}
	if err != nil {
		return nil, fmt.Errorf("spend a use of enrollment token %q: %w", id, err)
	}
	fleet, err := scanFleet(tx.QueryRowContext(ctx, `SELECT `+fleetColumns+` FROM fleets WHERE id = $1`, fleetID))
	if err != nil {
		return nil, fmt.Errorf("get fleet %q: %w", fleetID, s.classify(err))
	}
	return fleet, nil
}
