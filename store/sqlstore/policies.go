package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/porthole/porthole/store"
)

// A fleet without a row in fleet_policies has the zero policy: the left
// join reads NULLs, which COALESCE turns into its zero values (ports stays
// NULL: no ports named).
const policyQuery = `SELECT f.id, p.ports, COALESCE(p.consent_floor, ''), COALESCE(p.max_duration, 0),
		COALESCE(p.idle_timeout, 0), COALESCE(p.four_eyes, 0), COALESCE(p.version, 0), COALESCE(p.updated_at, 0),
		COALESCE(p.updated_by, ''), COALESCE(p.reauth, 0)
	FROM fleets f LEFT JOIN fleet_policies p ON p.fleet_id = f.id WHERE f.id = $1`

func scanPolicy(sc scanner) (*store.FleetPolicy, error) {
	var (
		p                  store.FleetPolicy
		ports              sql.NullString
		maxD, idle, reauth int64
	)
	if err := sc.Scan(&p.FleetID, &ports, &p.ConsentFloor, &maxD, &idle, (*intBool)(&p.FourEyes), &p.Version,
		(*unixMillis)(&p.UpdatedAt), &p.UpdatedBy, &reauth); err != nil {
		return nil, err
	}
	if ports.Valid {
		p.Ports = []int{}
		if err := json.Unmarshal([]byte(ports.String), &p.Ports); err != nil {
			return nil, fmt.Errorf("ports: %w", err)
		}
	}
	p.MaxDuration, p.IdleTimeout = time.Duration(maxD)*time.Millisecond, time.Duration(idle)*time.Millisecond
	p.Reauth = time.Duration(reauth) * time.Millisecond
	return &p, nil
}

// GetFleetPolicy returns a fleet's policy; see store.FleetPolicies.
func (s *Store) GetFleetPolicy(ctx context.Context, fleetID string) (*store.FleetPolicy, error) {
	return one(ctx, s, fmt.Sprintf("get the policy of fleet %q", fleetID), scanPolicy, policyQuery, fleetID)
}

// errPolicyChanged: the policy is no longer at the version the caller read.
var errPolicyChanged = errors.New("the policy changed since it was read")

// SetFleetPolicy replaces a fleet's policy over the version read; see
// store.FleetPolicies.
func (s *Store) SetFleetPolicy(ctx context.Context, p *store.FleetPolicy) error {
	var ports sql.NullString
	if p.Ports != nil {
		b, err := json.Marshal(p.Ports)
		if err != nil {
			return fmt.Errorf("store: set fleet policy: %w", err)
		}
		ports = sql.NullString{String: string(b), Valid: true}
	}
	at := normalTime(orNow(p.UpdatedAt, time.Now()))
	next := p.Version + 1
	err := s.audited(ctx, func(tx *sql.Tx) (about, error) {
		ab := about{fleetID: p.FleetID}
		if err := tx.QueryRowContext(ctx, `SELECT name FROM fleets WHERE id = $1`, p.FleetID).Scan(&ab.fleet); err != nil {
			return about{}, err
		}
		args := []any{p.FleetID, ports, p.ConsentFloor, p.MaxDuration.Milliseconds(), p.IdleTimeout.Milliseconds(),
			boolInt(p.FourEyes), next, millis(at), p.UpdatedBy, p.Reauth.Milliseconds()}
		var err error
		if p.Version == 0 {
			// A row someone else inserted meanwhile is a unique
			// violation: ErrConflict, as a changed version is.
			_, err = tx.ExecContext(ctx, `INSERT INTO fleet_policies
				(fleet_id, ports, consent_floor, max_duration, idle_timeout, four_eyes, version, updated_at, updated_by, reauth)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, args...)
		} else {
			err = execOne(ctx, tx, `UPDATE fleet_policies SET ports = $2, consent_floor = $3, max_duration = $4,
				idle_timeout = $5, four_eyes = $6, version = $7, updated_at = $8, updated_by = $9, reauth = $10
				WHERE fleet_id = $1 AND version = $11`, append(args, p.Version)...)
			if errors.Is(err, sql.ErrNoRows) {
				err = errPolicyChanged
			}
		}
		return ab, err
	})
	switch {
	case errors.Is(err, errPolicyChanged):
		return fmt.Errorf("store: set the policy of fleet %q: %w: %w", p.FleetID, store.ErrConflict, err)
	case err != nil:
		return fmt.Errorf("store: set the policy of fleet %q: %w", p.FleetID, s.classify(err))
	}
	p.Version, p.UpdatedAt = next, at
	return nil
}
