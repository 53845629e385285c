package api

import (
	"errors"
	"fmt"
	"strings"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/store"
)

// Members can be read by every member of the fleet (auditors included: who
// may reach the devices is part of what they audit) and changed by owners.

// listMembers is GET /api/v1/fleets/{fleet}/members.
func (s *Server) listMembers(c *call, _ *none) ([]apitype.Member, error) {
	f, _, err := c.fleet(c.r.PathValue("fleet"))
	if err != nil {
		return nil, err
	}
	ms, err := s.store.FleetMembers(c.ctx, f.ID)
	if err != nil {
		return nil, fmt.Errorf("listing the members of %s: %w", f.Name, err)
	}
	return convertAll(ms, apiMember), nil
}

// putMember is PUT /api/v1/fleets/{fleet}/members/{user}: it gives the
// user the role in the body, replacing any other.
func (s *Server) putMember(c *call, req *apitype.Member) (apitype.Member, error) {
	f, _, err := c.fleet(c.r.PathValue("fleet"))
	if err != nil {
		return apitype.Member{}, err
	}
	role, err := parseRole(req.Role)
	if err != nil {
		return apitype.Member{}, err
	}
	u, err := s.findUser(c, c.r.PathValue("user"))
	if err != nil {
		return apitype.Member{}, err
	}
	// The body may repeat who is meant; if it names someone else, the
	// caller is confused and nothing should change.
	if (req.UserID != "" && req.UserID != u.ID) || (req.Email != "" && !strings.EqualFold(req.Email, u.Email)) {
		return apitype.Member{}, badRequest("the body names a different user than the path (%s); leave user_id and email out of the body", u.Email)
	}
	changed := audit.Event{Kind: audit.RoleChanged, FleetID: f.ID, Fleet: f.Name,
		Detail: map[string]string{"user": u.Email, "user_id": u.ID, "role": string(role)}}
	if err := s.store.SetRole(c.withAudit(changed).ctx, f.ID, u.ID, role); err != nil {
		return apitype.Member{}, fmt.Errorf("giving %s the role %s in %s: %w", u.Email, role, f.Name, err)
	}
	s.logger.Info("role set", "request_id", requestID(c.ctx), "by", c.user.ID, "fleet", f.Name, "user", u.ID, "role", role)
	if role == store.RoleAuditor && !u.Admin { // an administrator reaches every fleet's devices anyway
		// An auditor reaches no device: sessions made as an operator end,
		// and requests claimed as one go back in the queue.
		if err := s.releaseClaims(c, u, []string{f.ID}); err != nil {
			return apitype.Member{}, err
		}
		if err := s.cutSessions(c, u, []string{f.ID}, "made an auditor of "+f.Name); err != nil {
			return apitype.Member{}, err
		}
	}
	return apitype.Member{UserID: u.ID, Email: u.Email, Role: string(role)}, nil
}

// deleteMember is DELETE /api/v1/fleets/{fleet}/members/{user}.
func (s *Server) deleteMember(c *call, _ *none) (none, error) {
	f, _, err := c.fleet(c.r.PathValue("fleet"))
	if err != nil {
		return none{}, err
	}
	u, err := s.findUser(c, c.r.PathValue("user"))
	if err != nil {
		return none{}, err
	}
	removed := audit.Event{Kind: audit.RoleRemoved, FleetID: f.ID, Fleet: f.Name,
		Detail: map[string]string{"user": u.Email, "user_id": u.ID}}
	err = s.store.RemoveRole(c.withAudit(removed).ctx, f.ID, u.ID)
	if errors.Is(err, store.ErrNotFound) {
		return none{}, notFound("%s has no role in fleet %s", u.Email, f.Name)
	} else if err != nil {
		return none{}, fmt.Errorf("removing %s from %s: %w", u.Email, f.Name, err)
	}
	s.logger.Info("role removed", "request_id", requestID(c.ctx), "by", c.user.ID, "fleet", f.Name, "user", u.ID)
	if u.Admin {
		return none{}, nil // an administrator reaches every fleet's devices anyway
	}
	if err := s.releaseClaims(c, u, []string{f.ID}); err != nil {
		return none{}, err
	}
	return none{}, s.cutSessions(c, u, []string{f.ID}, "removed from "+f.Name)
}

// findUser finds a user by email (anything with an @) or ID.
func (s *Server) findUser(c *call, ref string) (*store.User, error) {
	var (
		u   *store.User
		err error
	)
	if strings.Contains(ref, "@") {
		u, err = s.store.GetUserByEmail(c.ctx, strings.ToLower(ref))
	} else {
		u, err = s.store.GetUser(c.ctx, ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("there is no user %q; an administrator can create one with `porthole users create`", ref)
	} else if err != nil {
		return nil, fmt.Errorf("looking up user %q: %w", ref, err)
	}
	return u, nil
}
