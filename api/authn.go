package api

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/auth"
	"github.com/porthole/porthole/humanize"
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
	return c.useToken(secret, expired, false)
}

// useToken makes the login whose secret is secret the caller's, or
// answers expired. A console session (console) idle for longer than the
// console's idle timeout is ended instead, and its use is recorded only
// for requests its person made (background).
func (c *call) useToken(secret string, expired error, console bool) error {
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
	if console && c.s.idleOut(tok, now) {
		c.s.endIdle(c, user, tok)
		return unauthenticated("your console session ended after %s without use; log in again", humanize.Duration(c.s.idle))
	}
	if now.Sub(tok.LastUsedAt) >= touchEvery && (!console || !background(c.r)) {
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

// background says whether a console's request was made by the page on
// its own (apitype.BackgroundHeader, or the presence stream), which is
// not use of the session by its person.
func background(r *http.Request) bool {
	return r.Header.Get(apitype.BackgroundHeader) == "1" || r.URL.Path == "/api/v1/presence"
}

// idleOut says whether tok, a console session, was last used by its
// person longer ago than the console's idle timeout (its last use is
// recorded at most every touchEvery, so it may end up to that late).
func (s *Server) idleOut(tok *store.Token, now time.Time) bool {
	return now.Sub(cmp.Or(tok.LastUsedAt, tok.CreatedAt)) > s.idle+touchEvery
}

// endIdle revokes u's console session tok, which was idle too long, and
// ends its presence streams.
func (s *Server) endIdle(c *call, u *store.User, tok *store.Token) {
	revoked := audit.Event{Kind: audit.TokenRevoked, Actor: audit.User(u.ID, u.Email),
		Detail: map[string]string{"token_id": tok.ID, "why": "console session idle for " + humanize.Duration(s.idle)}}
	if err := s.store.DeleteToken(store.WithAudit(c.ctx, revoked), u.ID, tok.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.logger.Warn("revoking an idle console session", "request_id", requestID(c.ctx), "token_id", tok.ID, "err", err)
		return
	}
	s.logger.Info("console session idle: ended", "request_id", requestID(c.ctx), "user", u.ID, "token_id", tok.ID)
	s.streams.cut(tok.ID, apitype.PresenceEndEvent{Reason: endLoggedOut})
}
