package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/porthole/porthole/store"
)

const fleetColumns = `id, name, created_at`

func scanFleet(sc scanner) (*store.Fleet, error) {
	var f store.Fleet
	if err := sc.Scan(&f.ID, &f.Name, (*unixMillis)(&f.CreatedAt)); err != nil {
		return nil, err
	}
	return &f, nil
}

// CreateFleet adds a fleet. An empty ID or CreatedAt is filled in.
func (s *Store) CreateFleet(ctx context.Context, f *store.Fleet) error {
	id, created := orNewID(f.ID, "flt"), normalTime(orNow(f.CreatedAt, time.Now()))
	if err := s.exec(ctx, fmt.Sprintf("create fleet %q", f.Name),
		`INSERT INTO fleets (`+fleetColumns+`) VALUES ($1, $2, $3)`, id, f.Name, millis(created)); err != nil {
		return err
	}
	f.ID, f.CreatedAt = id, created
	return nil
}

// GetFleet returns the fleet with the given ID.
func (s *Store) GetFleet(ctx context.Context, id string) (*store.Fleet, error) {
	return one(ctx, s, fmt.Sprintf("get fleet %q", id), scanFleet,
		`SELECT `+fleetColumns+` FROM fleets WHERE id = $1`, id)
}

// GetFleetByName returns the fleet with the given name.
func (s *Store) GetFleetByName(ctx context.Context, name string) (*store.Fleet, error) {
	return one(ctx, s, fmt.Sprintf("get fleet named %q", name), scanFleet,
		`SELECT `+fleetColumns+` FROM fleets WHERE name = $1`, name)
}

// ListFleets returns every fleet, by name.
func (s *Store) ListFleets(ctx context.Context) ([]*store.Fleet, error) {
	return all(ctx, s, "list fleets", scanFleet, `SELECT `+fleetColumns+` FROM fleets ORDER BY name`)
}

// DeleteFleet deletes a fleet; the schema's cascades delete its devices,
// enrollment tokens and roles in the same statement.
func (s *Store) DeleteFleet(ctx context.Context, id string) error {
	err := s.audited(ctx, func(tx *sql.Tx) (about, error) {
		ab := about{fleetID: id}
		if err := tx.QueryRowContext(ctx, `SELECT name FROM fleets WHERE id = $1`, id).Scan(&ab.fleet); err != nil {
			return about{}, err
		}
		if err := execOne(ctx, tx, `DELETE FROM fleets WHERE id = $1`, id); err != nil {
			return about{}, err
		}
		return ab, s.announce(ctx, tx, store.Change{Kind: store.FleetDeleted, Fleet: ab.fleet})
	})
	if err != nil {
		return fmt.Errorf("store: delete fleet %q: %w", id, s.classify(err))
	}
	return nil
}
