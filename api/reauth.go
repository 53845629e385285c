package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
)

// reauth is POST /api/v1/reauth: the caller proves a fresh second factor
// for the login making the request, which then meets the reauth rule of
// fleets' policies (fleetpolicy.CheckReauth) for the rule's window, and
// may add or remove passkeys for a few minutes (checkFresh). The factor is
// a TOTP code or a passkey's signature (reauthPasskey, passkeys.go).
//
// A code goes through login's path (checkCode): each code is accepted
// once, by login or by reauth, and wrong codes count against the same
// limits, per account and source and account-wide
// (LoginCodeFailuresPerAccount), so a stolen token buys no more guesses
// than a stolen password. Wrong and replayed codes, and refused passkeys,
// are audited as reauth_failed, a proved factor as reauth_succeeded, each
// with its method.
func (s *Server) reauth(c *call, req *apitype.ReauthRequest) (apitype.ReauthResponse, error) {
	switch {
	case req.Passkey != nil && req.TOTP != "":
		return apitype.ReauthResponse{}, badRequest("send totp or passkey, not both")
	case req.Passkey != nil:
		return s.reauthPasskey(c, req.Passkey)
	case req.TOTP == "":
		return apitype.ReauthResponse{}, badRequest("totp is required: the 6-digit code from your authenticator app (or send a passkey's signature)")
	}
	now := s.now().UTC()
	src := sourceKey(clientAddr(c.r))
	forgive, err := attempt(now,
		limit{s.loginByAccount, c.user.Email + " " + src, "too many failed logins for this account from your address"})
	if err != nil {
		s.logger.Info("reauth refused", "request_id", requestID(c.ctx), "email", c.user.Email, "reason", reasonRateLimited)
		return apitype.ReauthResponse{}, err
	}
	if wait, locked := s.loginCodes.blocked(c.user.Email, now); locked {
		forgive()
		return apitype.ReauthResponse{}, tooMany(codesLocked, wait)
	}
	refuse := func(reason string) error {
		if reason == reasonRateLimited {
			s.metrics.loginFailures.WithLabelValues(reason).Inc()
			return nil
		}
		s.reauthRefused(c, methodTOTP, reason, "")
		if reason == reasonReplayedTOTP {
			return errorf(http.StatusForbidden, apitype.CodeWrongCode, "this code was already used; wait for the next one")
		}
		return errorf(http.StatusForbidden, apitype.CodeWrongCode, "wrong code: it is not the current code of your authenticator app")
	}
	if err := s.checkCode(c, c.user, req.TOTP, now, refuse); err != nil {
		if _, ours := errors.AsType[*httpError](err); !ours {
			forgive() // our failure, not the caller's
		}
		return apitype.ReauthResponse{}, err
	}
	forgive()
	return s.proveFactor(c, now, methodTOTP)
}

// methodTOTP is how a re-authentication by code proved itself.
const methodTOTP = "totp"

// reauthRefused counts, logs and audits a refused re-authentication.
func (s *Server) reauthRefused(c *call, method, reason, why string) {
	s.metrics.loginFailures.WithLabelValues(reason).Inc()
	s.logger.Info("reauth refused", "request_id", requestID(c.ctx), "email", c.user.Email, "method", method, "reason", reason,
		"why", why, "remote", clientAddr(c.r))
	ev := audit.Event{Kind: audit.ReauthFailed, Actor: c.actor(),
		Detail: map[string]string{"reason": reason, "method": method, "token_id": c.token.ID, "remote": clientAddr(c.r)}}
	if why != "" {
		ev.Detail["why"] = why
	}
	s.record(c, ev)
}

// proveFactor records that the caller's login proved a second factor by
// method now: the time fleets' reauth rules read.
func (s *Server) proveFactor(c *call, now time.Time, method string) (apitype.ReauthResponse, error) {
	ok := audit.Event{Kind: audit.ReauthSucceeded, Actor: c.actor(),
		Detail: map[string]string{"token_id": c.token.ID, "token": c.token.Name, "method": method, "remote": clientAddr(c.r)}}
	if err := s.store.SetTokenFactor(c.withAudit(ok).ctx, c.user.ID, c.token.ID, now); err != nil {
		return apitype.ReauthResponse{}, fmt.Errorf("recording the second factor: %w", err)
	}
	c.token.FactorAt = now
	s.logger.Info("reauth", "request_id", requestID(c.ctx), "user", c.user.ID, "token_id", c.token.ID, "method", method)
	return apitype.ReauthResponse{FactorAt: now}, nil
}
