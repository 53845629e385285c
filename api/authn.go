package api

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/auth"
	"github.com/porthole/porthole/store"
)

// touchEvery is how often a token's last-used time is written: once a
// minute is precise enough for people, and spares the database a write
// per request.
const touchEvery = time.Minute

// authenticate finds the caller from the "Authorization: Bearer <token>"
// header or, without one, from the web console's session cookie (whose
// requests that change something must pass checkCSRF). The store keeps
// only a token's hash, and answers expired tokens as missing ones.
func (c *call) authenticate() error {
	h := c.r.Header.Get("Authorization")
	if h == "" {
		if ck, err := c.r.Cookie(apitype.ConsoleSessionCookie); err == nil && ck.Value != "" {
			return c.authenticateConsole(ck.Value)
		}
		return unauthenticated("this request needs a login; run `porthole login`")
	}
	scheme, secret, _ := strings.Cut(h, " ")
	secret = strings.TrimSpace(secret)
	if !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return unauthenticated("the Authorization header must be \"Bearer <token>\"")
	}
	expired := unauthenticated("your login expired or was revoked; run `porthole login`")
	if strings.HasPrefix(secret, consolePrefix+"_") {
		// A console session's secret is not a bearer token, wherever it
		// was found.
		return expired
	}
	return c.useToken(secret, expired)
}

// useToken makes the login whose secret is secret the caller's, or
// answers expired.
func (c *call) useToken(secret string, expired error) error {
	now := c.s.now()
	tok, err := c.s.store.TokenByHash(c.ctx, auth.HashSecret(secret), now)
	if errors.Is(err, store.ErrNotFound) {
		return expired
	} else if err != nil {
		return fmt.Errorf("looking up the login token: %w", err)
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
