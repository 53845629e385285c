package api

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/auth"
	"github.com/porthole/porthole/store"
)

// Bounds of an enrollment token: a leaked token admits at most
// maxEnrollUses devices, for at most maxEnrollTTL.
const (
	maxEnrollUses    = 10000
	minEnrollTTL     = time.Minute
	maxEnrollTTL     = 30 * 24 * time.Hour
	defaultEnrollTTL = 24 * time.Hour
)

// listEnrollmentTokens is GET /api/v1/fleets/{fleet}/enrollment-tokens.
func (s *Server) listEnrollmentTokens(c *call, _ *none) ([]apitype.EnrollmentToken, error) {
	f, _, err := c.fleet(c.r.PathValue("fleet"))
	if err != nil {
		return nil, err
	}
	ts, err := s.store.ListEnrollmentTokens(c.ctx, f.ID)
	if err != nil {
		return nil, fmt.Errorf("listing the enrollment tokens of %s: %w", f.Name, err)
	}
	return convertAll(ts, func(t *store.EnrollmentToken) apitype.EnrollmentToken { return apiEnrollmentToken(t, f.Name) }), nil
}

// createEnrollmentToken is POST /api/v1/fleets/{fleet}/enrollment-tokens.
// The secret is in this answer only; the store keeps its hash.
func (s *Server) createEnrollmentToken(c *call, req *apitype.CreateEnrollmentTokenRequest) (apitype.EnrollmentToken, error) {
	f, _, err := c.fleet(c.r.PathValue("fleet"))
	if err != nil {
		return apitype.EnrollmentToken{}, err
	}
	uses := orDefault(req.Uses, 1)
	if uses < 1 || uses > maxEnrollUses {
		return apitype.EnrollmentToken{}, badRequest("uses must be between 1 and %d; it is %d", maxEnrollUses, req.Uses)
	}
	// Bounds are checked in seconds: a huge ttl_s would overflow a Duration.
	ttlS := orDefault(req.TTLSeconds, int64(defaultEnrollTTL/time.Second))
	if ttlS < int64(minEnrollTTL/time.Second) || ttlS > int64(maxEnrollTTL/time.Second) {
		return apitype.EnrollmentToken{}, badRequest("ttl_s must be between %d (a minute) and %d (30 days); it is %d",
			int64(minEnrollTTL/time.Second), int64(maxEnrollTTL/time.Second), req.TTLSeconds)
	}
	ttl := time.Duration(ttlS) * time.Second
	now := s.now().UTC()
	secret, hash := auth.NewSecret("phe")
	t := &store.EnrollmentToken{FleetID: f.ID, Hash: hash, UsesLeft: uses, MaxUses: uses,
		CreatedBy: c.user.ID, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	created := audit.Event{Kind: audit.EnrollmentTokenCreated, FleetID: f.ID, Fleet: f.Name,
		Detail: map[string]string{"uses": strconv.Itoa(uses), "expires_at": t.ExpiresAt.Format(time.RFC3339)}}
	if err := s.store.CreateEnrollmentToken(c.withAudit(created).ctx, t); err != nil {
		return apitype.EnrollmentToken{}, fmt.Errorf("storing an enrollment token for %s: %w", f.Name, err)
	}
	s.logger.Info("enrollment token created", "request_id", requestID(c.ctx), "by", c.user.ID, "fleet", f.Name,
		"token_id", t.ID, "uses", uses, "expires_at", t.ExpiresAt)
	out := apiEnrollmentToken(t, f.Name)
	out.Token = secret
	return out, nil
}

// deleteEnrollmentToken is DELETE /api/v1/fleets/{fleet}/enrollment-tokens/{id}.
// The store deletes only a token of the given fleet.
func (s *Server) deleteEnrollmentToken(c *call, _ *none) (none, error) {
	f, _, err := c.fleet(c.r.PathValue("fleet"))
	if err != nil {
		return none{}, err
	}
	id := c.r.PathValue("id")
	deleted := audit.Event{Kind: audit.EnrollmentTokenDeleted, FleetID: f.ID, Fleet: f.Name, Detail: map[string]string{"token_id": id}}
	err = s.store.DeleteEnrollmentToken(c.withAudit(deleted).ctx, f.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return none{}, notFound("fleet %s has no enrollment token with ID %q", f.Name, id)
	} else if err != nil {
		return none{}, fmt.Errorf("deleting enrollment token %q of %s: %w", id, f.Name, err)
	}
	s.logger.Info("enrollment token deleted", "request_id", requestID(c.ctx), "by", c.user.ID, "fleet", f.Name, "token_id", id)
	return none{}, nil
}
