package api

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/go-webauthn/webauthn/protocol"

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
//
// Guessing is limited without letting anyone who merely knows an account's
// name keep its owner out:
//
//   - Failures count per account and source (an IPv4 address or an IPv6
//     /64; LoginFailuresPerAccount) and per source across accounts
//     (LoginFailuresPerAddress): a source past either is refused, and no
//     one else is.
//   - No account-wide limit counts wrong passwords: that is what let anyone
//     lock anyone out. None is needed to bound guessing either: every
//     failure answers the same "wrong email, password or code", so a wrong
//     password teaches nothing, and a guess succeeds only if the password
//     and the current TOTP code (one in about 300,000) are both right.
//     Nor do we slow the account down instead: delays do not bound an
//     attacker who sends in parallel, and a queue of delayed attempts
//     would hold the owner out just the same.
//   - The account-wide limit counts only wrong codes sent with the correct
//     password (LoginCodeFailuresPerAccount), which bounds guessing the
//     code by whoever has the password; past it every login to the
//     account is refused, whatever it holds, so the refusal tells nothing
//     about the password tried. Only someone who knows the password can
//     lock the account, and then its owner must change it anyway.
func (s *Server) login(c *call, req *apitype.LoginRequest) (apitype.LoginResponse, error) {
	user, err := s.logIn(c, &credentials{email: req.Email, password: req.Password, totp: req.TOTP})
	if err != nil {
		return apitype.LoginResponse{}, err
	}
	secret, tok, ms, err := s.issueToken(c, user, bearerPrefix, "login from "+clientAddr(c.r), methodPassword, nil)
	if err != nil {
		return apitype.LoginResponse{}, err
	}
	return apitype.LoginResponse{Token: secret, TokenID: tok.ID, ExpiresAt: tok.ExpiresAt, User: apiUser(user, ms)}, nil
}

// credentials are what a password login sends: email, password and a
// second factor, the TOTP code or (the console only) a passkey's
// signature.
type credentials struct {
	email, password, totp string
	passkey               *apitype.PasskeyAssertion
}

// How a login proved who it is, as its login_succeeded and login_failed
// events say (Detail["method"]; a password and TOTP login's events name
// none, as before there were others).
const (
	methodPassword        = ""
	methodPasswordPasskey = "password+passkey"
	methodPasskey         = "passkey"
	methodSSO             = "sso"
)

// logIn returns the user whose email, password and fresh second factor
// (a TOTP code, or a passkey's signature) cred holds, within the limits
// login's comment describes. A passkey's answer is read before anything
// counts or is spent: a malformed one is refused (400) and its sign-in
// waits on.
func (s *Server) logIn(c *call, cred *credentials) (*store.User, error) {
	email, err := normalizeEmail(cred.email)
	if err != nil {
		return nil, err
	}
	if cred.password == "" {
		return nil, badRequest("password is required")
	}
	var passkey *protocol.ParsedCredentialAssertionData
	switch {
	case cred.passkey != nil && cred.totp != "":
		return nil, badRequest("send totp or passkey, not both")
	case cred.passkey != nil:
		if _, err := s.relyingParty(); err != nil {
			return nil, err
		}
		if passkey, err = parseAssertion(cred.passkey); err != nil {
			return nil, err
		}
	case cred.totp == "":
		return nil, badRequest("totp is required: the 6-digit code from your authenticator app")
	}
	method := methodPassword
	if passkey != nil {
		method = methodPasswordPasskey
	}
	now := s.now().UTC()
	addr := clientAddr(c.r)
	src := sourceKey(addr)
	forgive, err := attempt(now,
		limit{s.loginByAccount, email + " " + src, "too many failed logins for this account from your address"},
		limit{s.loginByAddress, src, "too many failed logins from your address"})
	if err != nil {
		s.loginRefused(c, email, method, reasonRateLimited)
		return nil, err
	}
	if wait, locked := s.loginCodes.blocked(email, now); locked {
		forgive() // refused unread: it proves nothing either way
		s.loginRefused(c, email, method, reasonRateLimited)
		return nil, tooMany(codesLocked, wait)
	}
	user, err := s.checkCredentials(c, email, cred.password, cred.totp, passkey, now)
	if err != nil {
		var he *httpError
		if !errors.As(err, &he) {
			forgive() // our failure, not the caller's
		}
		return nil, err
	}
	forgive()
	return user, nil
}

// Prefixes of the secrets a login hands out. A secret is accepted only
// the way it was handed out: a console session's only in its cookie, a
// bearer token's only in the Authorization header.
const (
	bearerPrefix  = "pht"
	consolePrefix = "phs"
)

// issueToken stores a new login of user, named name, with a secret of
// the given prefix, and audits it with how it proved who it is (method);
// it returns the secret, the token and the user's roles. sso is what an
// SSO login keeps of the provider's answer; nil for other logins.
func (s *Server) issueToken(c *call, user *store.User, prefix, name, method string, sso *ssoLogin) (string, *store.Token, []*store.Membership, error) {
	now := s.now().UTC()
	secret, hash := auth.NewSecret(prefix)
	// Every login proves a second factor (its TOTP code; a passkey, after
	// the password or alone with its user verification; or the
	// provider's sign-in, which the provider's own policy makes
	// multi-factor): FactorAt.
	tok := &store.Token{UserID: user.ID, Hash: hash, Name: name, CreatedAt: now, ExpiresAt: now.Add(s.tokenTTL), FactorAt: now,
		PasskeyID: c.passkeyID}
	if sso != nil {
		tok.ExpiresAt = minTime(tok.ExpiresAt, sso.expires)
		tok.SSORefresh, tok.SSORefreshAt = sso.refresh, sso.refreshAt
	}
	if method == methodPassword {
		method = "password"
	}
	login := audit.Event{Kind: audit.LoginSucceeded, Actor: audit.User(user.ID, user.Email),
		Detail: map[string]string{"token": tok.Name, "method": method}}
	changed := unauthenticated("your account was reset or deleted by an administrator as you logged in; log in with the password and authenticator they give you")
	if err := s.store.CreateToken(c.withAudit(login).ctx, tok); errors.Is(err, store.ErrNotFound) {
		return "", nil, nil, changed // the user was deleted since their secrets were checked
	} else if err != nil {
		return "", nil, nil, fmt.Errorf("storing the new token: %w", err)
	}
	// A reset since the secrets were checked (hashing the password takes
	// a while) deleted the user's tokens, but not this one, stored after:
	// checked again now that it is stored, it goes as theirs went.
	again, err := s.store.GetUser(c.ctx, user.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", nil, nil, fmt.Errorf("looking up the user again: %w", err)
	}
	if err != nil || again.PasswordHash != user.PasswordHash || again.TOTPSecret != user.TOTPSecret {
		revoked := audit.Event{Kind: audit.TokenRevoked, Actor: audit.User(user.ID, user.Email),
			Detail: map[string]string{"token_id": tok.ID, "why": "the account was reset or deleted as this login was made"}}
		if derr := s.store.DeleteToken(store.WithAudit(c.ctx, revoked), user.ID, tok.ID); derr != nil && !errors.Is(derr, store.ErrNotFound) {
			return "", nil, nil, fmt.Errorf("revoking a login made across a reset: %w", derr)
		}
		return "", nil, nil, changed
	}
	ms, err := s.store.Memberships(c.ctx, user.ID)
	if err != nil {
		return "", nil, nil, fmt.Errorf("listing the user's roles: %w", err)
	}
	infoFrom(c.ctx).userID = user.ID
	s.logger.Info("login", "request_id", requestID(c.ctx), "user", user.ID, "email", user.Email, "token_id", tok.ID, "remote", clientAddr(c.r))
	return secret, tok, ms, nil
}

// checkCredentials returns the user whose email, password and unused
// second factor (the TOTP code, or passkey's signature when it is not nil)
// these are; otherwise an *httpError, after counting the failure.
func (s *Server) checkCredentials(c *call, email, password, code string, passkey *protocol.ParsedCredentialAssertionData, now time.Time) (*store.User, error) {
	method := methodPassword
	if passkey != nil {
		method = methodPasswordPasskey
	}
	user, err := s.store.GetUserByEmail(c.ctx, email)
	if errors.Is(err, store.ErrNotFound) {
		user = nil
	} else if err != nil {
		return nil, fmt.Errorf("looking up the user: %w", err)
	}
	hash := auth.DummyHash
	if user != nil && user.SSOSubject == "" {
		hash = user.PasswordHash
	}
	ok, err := auth.CheckPassword(hash, password)
	if err != nil {
		return nil, fmt.Errorf("checking the password: %w", err)
	}
	switch {
	case user == nil:
		return nil, s.loginRefused(c, email, method, reasonUnknownUser)
	case user.SSOSubject != "":
		// No password: they sign in at their provider. The answer stays
		// the same, so that it does not tell which accounts are SSO's.
		return nil, s.loginRefused(c, email, method, reasonSSOUser)
	case !ok:
		return nil, s.loginRefused(c, email, method, reasonBadPassword)
	}
	// The password is right: the second factor must prove right too.
	if passkey != nil {
		refuse := func(_, reason, why string) error { return s.loginRefusedWhy(c, email, method, reason, why) }
		if _, err := s.checkPasskeySignIn(c, passkey, store.CeremonySecondFactor, user, now, refuse); err != nil {
			return nil, err
		}
		return user, nil
	}
	refuse := func(reason string) error {
		err := s.loginRefused(c, email, method, reason)
		if reason == reasonReplayedTOTP {
			return unauthenticated("this code was already used; wait for the next one")
		}
		return err
	}
	if err := s.checkCode(c, user, code, now, refuse); err != nil {
		return nil, err
	}
	return user, nil
}

// checkCode checks that code is user's current TOTP code and unused, and
// marks it used (login's and reauth's one path). It counts the code as
// wrong until it proves right, so that codes sent all at once get no more
// tries than codes sent one by one (LoginCodeFailuresPerAccount for the
// account, across logins and re-authentications). A wrong or replayed code
// is answered by refuse with its reason, which records it.
func (s *Server) checkCode(c *call, user *store.User, code string, now time.Time, refuse func(reason string) error) error {
	forgiveCode, err := attempt(now, limit{s.loginCodes, user.Email, codesLocked})
	if err != nil {
		refuse(reasonRateLimited)
		return err
	}
	step, ok := auth.CheckTOTP(user.TOTPSecret, code, now)
	if !ok {
		return refuse(reasonBadTOTP)
	}
	fresh, err := s.store.AdvanceTOTPStep(c.ctx, user.ID, step)
	if err != nil {
		forgiveCode()
		return fmt.Errorf("recording the TOTP step: %w", err)
	}
	if !fresh {
		// A code used already was seen, not guessed.
		forgiveCode()
		return refuse(reasonReplayedTOTP)
	}
	forgiveCode()
	return nil
}

// codesLocked is the refusal of every login to an account that collected
// LoginCodeFailuresPerAccount wrong codes sent with its correct password.
const codesLocked = "too many wrong authenticator codes were sent for this account with its correct password " +
	"(if they were not yours, your password is known: have an administrator reset it)"

// loginRefused counts, logs and audits a refused login (refusals by the
// rate limits only count and log) and returns the answer for wrong
// credentials of its method.
func (s *Server) loginRefused(c *call, email, method, reason string) error {
	return s.loginRefusedWhy(c, email, method, reason, "")
}

// loginRefusedWhy is loginRefused with why it was refused in more words
// (a passkey's signature that did not verify, and how), for the audit
// log and the server's log only: the answer stays the same.
func (s *Server) loginRefusedWhy(c *call, email, method, reason, why string) error {
	s.metrics.loginFailures.WithLabelValues(reason).Inc()
	s.logger.Info("login refused", "request_id", requestID(c.ctx), "email", email, "method", cmp.Or(method, "password"),
		"reason", reason, "why", why, "remote", clientAddr(c.r))
	if reason != reasonRateLimited {
		actor := audit.Anonymous(email)
		if email == "" {
			actor = audit.Anonymous("passkey") // an unknown passkey names no one
		}
		ev := audit.Event{Kind: audit.LoginFailed, Actor: actor, Detail: map[string]string{"reason": reason, "remote": clientAddr(c.r)}}
		if method != methodPassword {
			ev.Detail["method"] = method
		}
		if why != "" {
			ev.Detail["why"] = why
		}
		s.record(c, ev)
	}
	switch method {
	case methodPasskey:
		return unauthenticated("this passkey was not accepted (unknown or removed, its sign-in expired or already used, or its signature wrong); " +
			"try again, or log in with your password")
	case methodPasswordPasskey:
		return unauthenticated("wrong email, password or passkey")
	}
	return wrongCredentials()
}

// logout revokes the token making the request; a console session's
// browser is told to forget its cookies, and its presence streams end.
func (s *Server) logout(c *call, _ *none) (none, error) {
	revoked := audit.Event{Kind: audit.TokenRevoked, Detail: map[string]string{"token_id": c.token.ID, "why": "logout"}}
	if err := s.store.DeleteToken(c.withAudit(revoked).ctx, c.user.ID, c.token.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return none{}, fmt.Errorf("deleting the token: %w", err)
	}
	s.streams.cut(c.token.ID, apitype.PresenceEndEvent{Reason: endLoggedOut})
	if c.viaCookie {
		clearConsoleCookies(c.w)
		c.w.Header().Set("Clear-Site-Data", `"cache", "storage"`)
	}
	return none{}, nil
}
