package api

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/auth"
	"github.com/porthole/porthole/store"
)

// minPasswordLen is the shortest password a user may be given. Generated
// ones are much longer.
const minPasswordLen = 12

// totpIssuer names the service in authenticator apps.
const totpIssuer = "Porthole"

// CreateUser makes a user who logs in with email, password and a new TOTP
// secret, and returns the secret as an otpauth:// URI for an authenticator
// app. It is how `portholed init` and `portholed dev` make the first
// administrator; the API's POST /api/v1/users does the same. Errors are
// sentences fit for the person who chose the email and password: an invalid
// email, a password shorter than 12 characters, an email already taken
// (wrapping store.ErrConflict).
func CreateUser(ctx context.Context, st store.Store, email, password string, admin bool) (*store.User, string, error) {
	return createUser(ctx, st, email, password, admin, time.Now())
}

func createUser(ctx context.Context, st store.Store, email, password string, admin bool, now time.Time) (*store.User, string, error) {
	email, err := normalizeEmail(email)
	if err != nil {
		return nil, "", err
	}
	if len(password) < minPasswordLen {
		return nil, "", badRequest("the password is too short: use at least %d characters, or leave it empty to have one generated", minPasswordLen)
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return nil, "", fmt.Errorf("hashing the password: %w", err)
	}
	secret, uri, err := auth.NewTOTP(totpIssuer, email)
	if err != nil {
		return nil, "", fmt.Errorf("making a TOTP secret: %w", err)
	}
	u := &store.User{Email: email, PasswordHash: hash, TOTPSecret: secret, Admin: admin, CreatedAt: now.UTC()}
	// The actor is the administrator calling the API, or the system for
	// `portholed init` and `dev`.
	created := audit.Event{Kind: audit.UserCreated, Actor: audit.ActorFrom(ctx),
		Detail: map[string]string{"email": email, "admin": strconv.FormatBool(admin)}}
	if err := st.CreateUser(store.WithAudit(ctx, created), u); errors.Is(err, store.ErrConflict) {
		e := conflict("a user with email %s already exists", email)
		e.wrapped = err
		return nil, "", e
	} else if err != nil {
		return nil, "", fmt.Errorf("storing user %s: %w", email, err)
	}
	return u, uri, nil
}

// createUser is POST /api/v1/users: the new user's generated password (if
// none was given) and TOTP secret are in this answer only.
func (s *Server) createUser(c *call, req *apitype.CreateUserRequest) (apitype.CreateUserResponse, error) {
	password, generated := req.Password, req.Password == ""
	if generated {
		password = auth.GeneratePassword()
	}
	u, uri, err := createUser(c.ctx, s.store, req.Email, password, req.Admin, s.now())
	if err != nil {
		return apitype.CreateUserResponse{}, err
	}
	s.logger.Info("user created", "request_id", requestID(c.ctx), "by", c.user.ID, "user", u.ID, "email", u.Email, "admin", u.Admin)
	resp := apitype.CreateUserResponse{User: apiUser(u, nil), TOTPURI: uri}
	if generated {
		resp.Password = password
	}
	return resp, nil
}

// deleteUser is DELETE /api/v1/users/{user}: an administrator deletes a
// user (an engineer who left) with their logins and fleet roles, and
// their open sessions are cut (user_removed). Nobody deletes themselves
// (another administrator must). The user is
// deleted before their sessions are closed, so none can be opened
// between the two.
func (s *Server) deleteUser(c *call, _ *none) (none, error) {
	u, err := s.findUser(c, c.r.PathValue("user"))
	if err != nil {
		return none{}, err
	}
	// Only administrators call this, never on themselves, and the store
	// checks the caller is still one as the row goes: so the last
	// administrator is never deleted.
	if u.ID == c.user.ID {
		return none{}, conflict("you cannot delete your own account; another administrator can")
	}
	deleted := audit.Event{Kind: audit.UserDeleted, Actor: c.actor(),
		Detail: map[string]string{"user": u.Email, "user_id": u.ID, "admin": strconv.FormatBool(u.Admin)}}
	if err := s.store.DeleteUser(c.withAudit(deleted).ctx, u.ID, c.user.ID); errors.Is(err, store.ErrNotFound) {
		return none{}, notFound("there is no user %q (deleted meanwhile?)", u.Email)
	} else if errors.Is(err, store.ErrNotAdmin) {
		return none{}, forbidden("you are no longer an administrator (your account was deleted or changed meanwhile); %s was not deleted", u.Email)
	} else if err != nil {
		return none{}, fmt.Errorf("deleting user %s: %w", u.Email, err)
	}
	s.logger.Info("user deleted", "request_id", requestID(c.ctx), "by", c.user.ID, "user", u.ID, "email", u.Email)
	s.streams.cutUser(u.ID, apitype.PresenceEndEvent{Reason: endLoggedOut})
	if err := s.releaseClaims(c, u, nil); err != nil {
		return none{}, err
	}
	return none{}, s.cutSessions(c, u, nil, "deleted")
}

// resetUser is POST /api/v1/users/{user}/reset: an administrator gives a
// user who lost their password or authenticator a new password (given,
// or generated) and TOTP secret, shown in this answer only; every login
// the user had ends, and so do their open sessions (user_removed), since
// whoever held the old secrets may have made them.
func (s *Server) resetUser(c *call, req *apitype.ResetUserRequest) (apitype.CreateUserResponse, error) {
	u, err := s.findUser(c, c.r.PathValue("user"))
	if err != nil {
		return apitype.CreateUserResponse{}, err
	}
	if u.SSOSubject != "" {
		// A password would be a way in past the provider, which decides
		// who this user is and whether they still may come.
		return apitype.CreateUserResponse{}, conflict("%s signs in with single sign-on and has no password or authenticator here to reset; change or remove them at your identity provider (or delete them here)", u.Email)
	}
	password, generated := req.Password, req.Password == ""
	if generated {
		password = auth.GeneratePassword()
	}
	if len(password) < minPasswordLen {
		return apitype.CreateUserResponse{}, badRequest("the password is too short: use at least %d characters, or leave it empty to have one generated", minPasswordLen)
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return apitype.CreateUserResponse{}, fmt.Errorf("hashing the password: %w", err)
	}
	secret, uri, err := auth.NewTOTP(totpIssuer, u.Email)
	if err != nil {
		return apitype.CreateUserResponse{}, fmt.Errorf("making a TOTP secret: %w", err)
	}
	reset := audit.Event{Kind: audit.UserReset, Actor: c.actor(),
		Detail: map[string]string{"user": u.Email, "user_id": u.ID, "self": strconv.FormatBool(u.ID == c.user.ID)}}
	if err := s.store.ResetUserSecrets(c.withAudit(reset).ctx, u.ID, hash, secret); errors.Is(err, store.ErrNotFound) {
		return apitype.CreateUserResponse{}, notFound("there is no user %q (deleted meanwhile?)", u.Email)
	} else if err != nil {
		return apitype.CreateUserResponse{}, fmt.Errorf("resetting user %s: %w", u.Email, err)
	}
	s.logger.Info("user reset", "request_id", requestID(c.ctx), "by", c.user.ID, "user", u.ID, "email", u.Email)
	s.streams.cutUser(u.ID, apitype.PresenceEndEvent{Reason: endLoggedOut})
	if err := s.cutSessions(c, u, nil, "reset"); err != nil {
		return apitype.CreateUserResponse{}, err
	}
	resp := apitype.CreateUserResponse{User: apiUser(u, nil), TOTPURI: uri}
	if generated {
		resp.Password = password
	}
	return resp, nil
}

// releaseClaims puts the support requests u claimed (in fleetIDs, if not
// nil) back in the queue after their access was taken away: others could
// not claim them, and no one would answer them.
func (s *Server) releaseClaims(c *call, u *store.User, fleetIDs []string) error {
	rs, err := s.store.ListSupportRequests(c.ctx, store.SupportRequestFilter{FleetIDs: fleetIDs, PendingAt: s.now(), Limit: 1000})
	if err != nil {
		return fmt.Errorf("%s lost their access, but listing the support requests they claimed failed: %w", u.Email, err)
	}
	for _, r := range rs {
		if r.State != store.RequestClaimed || r.ClaimedEmail != u.Email {
			continue
		}
		if _, _, err := s.store.ReleaseSupportRequest(c.ctx, r.ID, u.Email); err != nil {
			return fmt.Errorf("%s lost their access, but putting support request %s they claimed back in the queue failed: %w", u.Email, r.ID, err)
		}
		s.logger.Info("support request released", "request_id", requestID(c.ctx), "user", u.ID, "support_request", r.ID)
	}
	return nil
}

// cutSessions closes the open sessions of u (on devices of fleetIDs, if
// not nil) after their access was taken away (what: "deleted", ...).
// The change is made by then: a failure here says so.
func (s *Server) cutSessions(c *call, u *store.User, fleetIDs []string, what string) error {
	if s.sessions == nil {
		return nil // this server opens no sessions, so holds none
	}
	n, err := s.sessions.CloseUser(c.ctx, u.Email, fleetIDs)
	if n > 0 {
		s.logger.Info("sessions cut", "request_id", requestID(c.ctx), "user", u.ID, "why", what, "sessions", n)
	}
	if err != nil {
		return fmt.Errorf("%s %s, but closing their open sessions failed (they end at their limits, or close them with porthole sessions close): %w", u.Email, what, err)
	}
	return nil
}

// me is GET /api/v1/me.
func (s *Server) me(c *call, _ *none) (apitype.User, error) {
	ms, err := s.store.Memberships(c.ctx, c.user.ID)
	if err != nil {
		return apitype.User{}, fmt.Errorf("listing the caller's roles: %w", err)
	}
	return apiUser(c.user, ms), nil
}

// listUsers is GET /api/v1/users. Roles are left out (one query per user);
// a fleet's members list has them.
func (s *Server) listUsers(c *call, _ *none) ([]apitype.User, error) {
	us, err := s.store.ListUsers(c.ctx)
	if err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	return convertAll(us, func(u *store.User) apitype.User { return apiUser(u, nil) }), nil
}
