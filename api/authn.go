package api

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/auth"
	"github.com/porthole/porthole/store"
)

// touchEvery is how often a token's last-used time is written: once a
// minute is precise enough for people, and spares the database a write
// per request.
const touchEvery = time.Minute

// authenticate finds the caller from the "Authorization: Bearer <token>"
// header. The store keeps only the token's hash, and answers expired
// tokens as missing ones.
func (c *call) authenticate() error {
	h := c.r.Header.Get("Authorization")
	if h == "" {
		return unauthenticated("this request needs a login; run `porthole login`")
	}
	scheme, secret, _ := strings.Cut(h, " ")
	secret = strings.TrimSpace(secret)
	if !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return unauthenticated("the Authorization header must be \"Bearer <token>\"")
	}
	now := c.s.now()
	expired := unauthenticated("your login expired or was revoked; run `porthole login`")
	tok, err := c.s.store.TokenByHash(c.ctx, auth.HashSecret(secret), now)
	if errors.Is(err, store.ErrNotFound) {
		return expired
	} else if err != nil {
		return fmt.Errorf("looking up the bearer token: %w", err)
	}
	user, err := c.s.store.GetUser(c.ctx, tok.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return expired
	} else if err != nil {
		return fmt.Errorf("looking up the token's user %s: %w", tok.UserID, err)
	}
	if now.Sub(tok.LastUsedAt) >= touchEvery {
		// Losing a last-used time is no reason to refuse the call.
		if err := c.s.store.TouchToken(c.ctx, tok.ID, now); err != nil {
			c.s.logger.Warn("recording a token's use", "request_id", requestID(c.ctx), "token_id", tok.ID, "err", err)
		}
	}
	c.user, c.token = user, tok
	c.ctx = audit.WithActor(c.ctx, audit.User(user.ID, user.Email)) // for layers below (session) that record events
	infoFrom(c.ctx).userID = user.ID
	return nil
}
