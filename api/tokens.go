package api

import (
	"errors"
	"fmt"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/store"
)

// listTokens is GET /api/v1/tokens: the caller's own tokens only.
func (s *Server) listTokens(c *call, _ *none) ([]apitype.TokenInfo, error) {
	ts, err := s.store.ListTokens(c.ctx, c.user.ID)
	if err != nil {
		return nil, fmt.Errorf("listing tokens: %w", err)
	}
	return convertAll(ts, func(t *store.Token) apitype.TokenInfo { return apiToken(t, t.ID == c.token.ID) }), nil
}

// deleteToken is DELETE /api/v1/tokens/{id}. The store deletes only a
// token of the given user, so another's token is as missing as none.
func (s *Server) deleteToken(c *call, _ *none) (none, error) {
	id := c.r.PathValue("id")
	revoked := audit.Event{Kind: audit.TokenRevoked, Detail: map[string]string{"token_id": id, "why": "revoked by its owner"}}
	err := s.store.DeleteToken(c.withAudit(revoked).ctx, c.user.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return none{}, notFound("you have no token with ID %q; `porthole tokens` lists yours", id)
	} else if err != nil {
		return none{}, fmt.Errorf("deleting token %q: %w", id, err)
	}
	s.streams.cut(id, apitype.PresenceEndEvent{Reason: endLoggedOut})
	return none{}, nil
}
