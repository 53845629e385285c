package api

import (
	"errors"
	"fmt"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/auth"
	"github.com/porthole/porthole/store"
)

// wrongCredentials does not say which of the three was wrong, so that
// guessing one at a time learns nothing.
func wrongCredentials() *httpError {
	return unauthenticated("wrong email, password or code")
}

// login checks email, password and TOTP code, in that order and always
// running the password hash (against a dummy for unknown emails, so the
// answer's timing does not tell which emails exist), and returns a new
// bearer token. Each TOTP code is accepted once.
func (s *Server) login(c *call, req *apitype.LoginRequest) (apitype.LoginResponse, error) {
	var resp apitype.LoginResponse
	email, err := normalizeEmail(req.Email)
	if err != nil {
		return resp, err
	}
	if req.Password == "" {
		return resp, badRequest("password is required")
	}
	if req.TOTP == "" {
		return resp, badRequest("totp is required: the 6-digit code from your authenticator app")
	}
	now := s.now().UTC()
	addr := clientAddr(c.r)
	forgive, err := attempt(now,
		limit{s.loginByAccount, email, "too many failed logins for this account"},
		limit{s.loginByAddress, addr, "too many failed logins from your address"})
	if err != nil {
		s.loginRefused(c, email, reasonRateLimited)
		return resp, err
	}
	user, err := s.checkCredentials(c, email, req, now)
	if err != nil {
		var he *httpError
		if !errors.As(err, &he) {
			forgive() // our failure, not the caller's
		}
		return resp, err
	}
	forgive()

	secret, hash := auth.NewSecret("pht")
	tok := &store.Token{UserID: user.ID, Hash: hash, Name: "login from " + addr, CreatedAt: now, ExpiresAt: now.Add(s.tokenTTL)}
	login := audit.Event{Kind: audit.LoginSucceeded, Actor: audit.User(user.ID, user.Email),
		Detail: map[string]string{"token": tok.Name}}
	if err := s.store.CreateToken(c.withAudit(login).ctx, tok); err != nil {
		return resp, fmt.Errorf("storing the new token: %w", err)
	}
	ms, err := s.store.Memberships(c.ctx, user.ID)
	if err != nil {
		return resp, fmt.Errorf("listing the user's roles: %w", err)
	}
	infoFrom(c.ctx).userID = user.ID
	s.logger.Info("login", "request_id", requestID(c.ctx), "user", user.ID, "email", email, "token_id", tok.ID, "remote", addr)
	return apitype.LoginResponse{Token: secret, TokenID: tok.ID, ExpiresAt: tok.ExpiresAt, User: apiUser(user, ms)}, nil
}

// checkCredentials returns the user whose email, password and unused TOTP
// code req holds; otherwise an *httpError, after counting the failure.
func (s *Server) checkCredentials(c *call, email string, req *apitype.LoginRequest, now time.Time) (*store.User, error) {
	user, err := s.store.GetUserByEmail(c.ctx, email)
	if errors.Is(err, store.ErrNotFound) {
		user = nil
	} else if err != nil {
		return nil, fmt.Errorf("looking up the user: %w", err)
	}
	hash := auth.DummyHash
	if user != nil {
		hash = user.PasswordHash
	}
	ok, err := auth.CheckPassword(hash, req.Password)
	if err != nil {
		return nil, fmt.Errorf("checking the password: %w", err)
	}
	switch {
	case user == nil:
		return nil, s.loginRefused(c, email, reasonUnknownUser)
	case !ok:
		return nil, s.loginRefused(c, email, reasonBadPassword)
	}
	step, ok := auth.CheckTOTP(user.TOTPSecret, req.TOTP, now)
	if !ok {
		return nil, s.loginRefused(c, email, reasonBadTOTP)
	}
	fresh, err := s.store.AdvanceTOTPStep(c.ctx, user.ID, step)
	if err != nil {
		return nil, fmt.Errorf("recording the TOTP step: %w", err)
	}
	if !fresh {
		s.loginRefused(c, email, reasonReplayedTOTP)
		return nil, unauthenticated("this code was already used; wait for the next one")
	}
	return user, nil
}

// loginRefused counts, logs and audits a refused login (refusals by the
// rate limits only count and log) and returns the answer for wrong
// credentials.
func (s *Server) loginRefused(c *call, email, reason string) error {
	s.metrics.loginFailures.WithLabelValues(reason).Inc()
	s.logger.Info("login refused", "request_id", requestID(c.ctx), "email", email, "reason", reason, "remote", clientAddr(c.r))
	if reason != reasonRateLimited {
		s.record(c, audit.Event{Kind: audit.LoginFailed, Actor: audit.Anonymous(email),
			Detail: map[string]string{"reason": reason, "remote": clientAddr(c.r)}})
	}
	return wrongCredentials()
}

// logout revokes the token making the request.
func (s *Server) logout(c *call, _ *none) (none, error) {
	revoked := audit.Event{Kind: audit.TokenRevoked, Detail: map[string]string{"token_id": c.token.ID, "why": "logout"}}
	if err := s.store.DeleteToken(c.withAudit(revoked).ctx, c.user.ID, c.token.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return none{}, fmt.Errorf("deleting the token: %w", err)
	}
	return none{}, nil
}
