package api

import (
	"errors"
	"fmt"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/store"
)

// listFleets is GET /api/v1/fleets: the fleets the caller has a role in,
// with the role; every fleet for administrators.
func (s *Server) listFleets(c *call, _ *none) ([]apitype.Fleet, error) {
	fleets, err := s.store.ListFleets(c.ctx)
	if err != nil {
		return nil, fmt.Errorf("listing fleets: %w", err)
	}
	roles := map[string]store.Role{}
	if !c.user.Admin {
		ms, err := s.store.Memberships(c.ctx, c.user.ID)
		if err != nil {
			return nil, fmt.Errorf("listing the caller's roles: %w", err)
		}
		for _, m := range ms {
			roles[m.FleetID] = m.Role
		}
	}
	out := []apitype.Fleet{}
	for _, f := range fleets {
		role := roles[f.ID]
		if c.user.Admin {
			role = roleAdmin
		}
		if role != "" {
			out = append(out, apiFleet(f, role))
		}
	}
	return out, nil
}

// getFleet is GET /api/v1/fleets/{fleet}.
func (s *Server) getFleet(c *call, _ *none) (apitype.Fleet, error) {
	f, role, err := c.fleet(c.r.PathValue("fleet"))
	if err != nil {
		return apitype.Fleet{}, err
	}
	return apiFleet(f, role), nil
}

// createFleet is POST /api/v1/fleets.
func (s *Server) createFleet(c *call, req *apitype.CreateFleetRequest) (apitype.Fleet, error) {
	if err := checkName("fleet name", req.Name); err != nil {
		return apitype.Fleet{}, err
	}
	f := &store.Fleet{Name: req.Name, CreatedAt: s.now().UTC()}
	// The store fills in the new fleet's ID from its name.
	created := audit.Event{Kind: audit.FleetCreated, Fleet: req.Name}
	if err := s.store.CreateFleet(c.withAudit(created).ctx, f); errors.Is(err, store.ErrConflict) {
		return apitype.Fleet{}, conflict("a fleet named %s already exists", req.Name)
	} else if err != nil {
		return apitype.Fleet{}, fmt.Errorf("creating fleet %s: %w", req.Name, err)
	}
	s.logger.Info("fleet created", "request_id", requestID(c.ctx), "by", c.user.ID, "fleet", f.Name)
	return apiFleet(f, roleAdmin), nil
}
