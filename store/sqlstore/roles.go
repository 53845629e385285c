package sqlstore

import (
	"context"
	"fmt"

	"github.com/porthole/porthole/store"
)

const membershipQuery = `SELECT r.fleet_id, f.name, r.user_id, u.email, r.role
	FROM roles r JOIN fleets f ON f.id = r.fleet_id JOIN users u ON u.id = r.user_id`

func scanMembership(sc scanner) (*store.Membership, error) {
	var m store.Membership
	if err := sc.Scan(&m.FleetID, &m.FleetName, &m.UserID, &m.Email, &m.Role); err != nil {
		return nil, err
	}
	return &m, nil
}

// SetRole gives a user a role in a fleet, replacing any role they had
// there. A missing fleet or user is ErrNotFound.
func (s *Store) SetRole(ctx context.Context, fleetID, userID string, role store.Role) error {
	what := fmt.Sprintf("set role of user %q in fleet %q", userID, fleetID)
	if !role.Valid() {
		return fmt.Errorf("store: %s: %q is not a role", what, role)
	}
	return s.exec(ctx, what, `INSERT INTO roles (fleet_id, user_id, role) VALUES ($1, $2, $3)
		ON CONFLICT (fleet_id, user_id) DO UPDATE SET role = excluded.role`, fleetID, userID, string(role))
}

// RemoveRole takes away a user's role in a fleet.
func (s *Store) RemoveRole(ctx context.Context, fleetID, userID string) error {
	return s.change(ctx, fmt.Sprintf("remove role of user %q in fleet %q", userID, fleetID),
		`DELETE FROM roles WHERE fleet_id = $1 AND user_id = $2`, fleetID, userID)
}

// Memberships lists a user's roles, by fleet name.
func (s *Store) Memberships(ctx context.Context, userID string) ([]*store.Membership, error) {
	return all(ctx, s, fmt.Sprintf("list roles of user %q", userID), scanMembership,
		membershipQuery+` WHERE r.user_id = $1 ORDER BY f.name`, userID)
}

// FleetMembers lists the roles in a fleet, by email.
func (s *Store) FleetMembers(ctx context.Context, fleetID string) ([]*store.Membership, error) {
	return all(ctx, s, fmt.Sprintf("list members of fleet %q", fleetID), scanMembership,
		membershipQuery+` WHERE r.fleet_id = $1 ORDER BY u.email`, fleetID)
}
