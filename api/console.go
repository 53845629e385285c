package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/auth"
	"github.com/porthole/porthole/store"
)

// The web console's browser session.
//
// POST /api/v1/console/login checks email, password and TOTP exactly as
// POST /api/v1/login does (the same limits, the same audit) and stores a
// login token the same way, hashed, but hands its secret ("phs_...") to
// the browser only in the HttpOnly session cookie, never in a body a
// script could read. Such a secret is taken only from that cookie and a
// bearer token ("pht_...") only from the Authorization header, so neither
// stands in for the other. A login made with a session cookie already
// set revokes the old session first, and the new secret is the server's,
// never the browser's: nobody can fix a session for someone else
// (fixation), and the __Host- prefix keeps sibling subdomains from
// planting one at all.
//
// Every request made with the cookie that is not GET or HEAD must pass
// checkCSRF: SameSite=Strict already keeps other sites' pages from
// sending the cookie, but not pages of a sibling subdomain (the same
// site), nor browsers without SameSite. So the request must also come
// from this origin (http.CrossOriginProtection: Sec-Fetch-Site, or Origin
// against Host) and carry in X-Porthole-CSRF the value of the readable
// CSRF cookie, which is derived from the session's secret: another
// origin can neither read that cookie nor set a custom header without a
// CORS preflight this server never grants, and a value planted in the
// cookie matches no session it does not derive from.
//
// POST /api/v1/logout with the cookie revokes the session in the store,
// clears both cookies and ends the session's presence streams.

// crossOrigin refuses browser requests from other origins.
var crossOrigin = http.NewCrossOriginProtection()

// csrfToken is the CSRF value of the session with secret: anyone with the
// secret can compute it, and no one without.
func csrfToken(secret string) string {
	sum := sha256.Sum256([]byte("porthole console csrf\x00" + secret))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func csrfRefused(format string, args ...any) *httpError {
	return errorf(http.StatusForbidden, apitype.CodeCSRF, format, args...)
}

// checkCSRF lets a request made with the session cookie change something
// only from this origin and with the session's CSRF value.
func checkCSRF(r *http.Request, secret string) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	if err := crossOrigin.Check(r); err != nil {
		return csrfRefused("this request came from another site or origin; the console's own pages may send it")
	}
	got := r.Header.Get(apitype.CSRFHeader)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(csrfToken(secret))) != 1 {
		return csrfRefused("this request lacks the console's %s header; reload the console", apitype.CSRFHeader)
	}
	return nil
}

// authenticateConsole finds the caller by the console's session cookie.
func (c *call) authenticateConsole(secret string) error {
	expired := unauthenticated("your console session expired or was ended; log in again")
	if !strings.HasPrefix(secret, consolePrefix+"_") {
		// A bearer token put in the cookie: not what it was handed out for.
		return expired
	}
	if err := checkCSRF(c.r, secret); err != nil {
		return err
	}
	if err := c.useToken(secret, expired, true); err != nil {
		return err
	}
	c.viaCookie = true
	return nil
}

// consoleLogin is POST /api/v1/console/login.
func (s *Server) consoleLogin(c *call, req *apitype.ConsoleLoginRequest) (apitype.ConsoleLoginResponse, error) {
	// Login CSRF: another site must not log a browser into its account.
	if err := checkLoginOrigin(c); err != nil {
		return apitype.ConsoleLoginResponse{}, err
	}
	user, err := s.logIn(c, &credentials{email: req.Email, password: req.Password, totp: req.TOTP, passkey: req.Passkey})
	if err != nil {
		return apitype.ConsoleLoginResponse{}, err
	}
	method := methodPassword
	if req.Passkey != nil {
		method = methodPasswordPasskey
	}
	return s.startConsoleSession(c, user, method, "console session from ")
}

// checkLoginOrigin refuses a login from another site or origin (login
// CSRF: another site must not log a browser into its account).
func checkLoginOrigin(c *call) error {
	if err := crossOrigin.Check(c.r); err != nil {
		return csrfRefused("a login from another site or origin is refused; log in on the console's own page")
	}
	return nil
}

// startConsoleSession makes the browser's new session for user, who
// proved who they are by method: whatever session it brought is
// revoked, and the new one's secret goes to its cookies only.
func (s *Server) startConsoleSession(c *call, user *store.User, method, name string) (apitype.ConsoleLoginResponse, error) {
	if old, err := c.r.Cookie(apitype.ConsoleSessionCookie); err == nil && strings.HasPrefix(old.Value, consolePrefix+"_") {
		s.revokeConsoleSecret(c, old.Value)
	}
	secret, tok, ms, err := s.issueToken(c, user, consolePrefix, name+clientAddr(c.r), method, nil)
	if err != nil {
		return apitype.ConsoleLoginResponse{}, err
	}
	setConsoleCookies(c.w, secret)
	return apitype.ConsoleLoginResponse{ExpiresAt: tok.ExpiresAt, User: apiUser(user, ms)}, nil
}

// revokeConsoleSecret ends the session a browser logging in again still
// held, if it is still valid; failing to only leaves it to expire.
func (s *Server) revokeConsoleSecret(c *call, secret string) {
	tok, err := s.store.TokenByHash(c.ctx, auth.HashSecret(secret), s.now())
	if err != nil {
		return // expired, revoked, or never ours
	}
	holder, err := s.store.GetUser(c.ctx, tok.UserID)
	if err != nil {
		return // deleted with their tokens
	}
	revoked := audit.Event{Kind: audit.TokenRevoked, Actor: audit.User(holder.ID, holder.Email),
		Detail: map[string]string{"token_id": tok.ID, "why": "replaced by a new console login"}}
	if err := s.store.DeleteToken(store.WithAudit(c.ctx, revoked), tok.UserID, tok.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.logger.Warn("revoking the console session a new login replaces", "request_id", requestID(c.ctx), "token_id", tok.ID, "err", err)
		return
	}
	s.streams.cut(tok.ID, apitype.PresenceEndEvent{Reason: endLoggedOut})
}

// setConsoleCookies hands the browser a session. The cookies last as
// long as the browser runs; the server ends the session after TokenTTL
// whatever the browser keeps.
func setConsoleCookies(w http.ResponseWriter, secret string) {
	http.SetCookie(w, &http.Cookie{Name: apitype.ConsoleSessionCookie, Value: secret, Path: "/",
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.SetCookie(w, &http.Cookie{Name: apitype.ConsoleCSRFCookie, Value: csrfToken(secret), Path: "/",
		Secure: true, SameSite: http.SameSiteStrictMode})
}

// clearConsoleCookies tells the browser to forget its session.
func clearConsoleCookies(w http.ResponseWriter) {
	for _, name := range []string{apitype.ConsoleSessionCookie, apitype.ConsoleCSRFCookie} {
		http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1,
			Secure: true, HttpOnly: name == apitype.ConsoleSessionCookie, SameSite: http.SameSiteStrictMode})
	}
}

// serveConsole answers the console's pages and files, or says this
// server has none.
func (s *Server) serveConsole(w http.ResponseWriter, r *http.Request) {
	if s.console == nil {
		s.writeError(w, r, notFound("this server serves no web console"))
		return
	}
	s.console.ServeHTTP(w, r)
}

// consolePath is where the console is served; GET / is sent there.
const consolePath = "/console/"

// redirectRoot sends a browser at the server's root to the console, when
// it has one.
func (s *Server) redirectRoot(w http.ResponseWriter, r *http.Request) bool {
	if s.console == nil || r.URL.Path != "/" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return false
	}
	http.Redirect(w, r, consolePath, http.StatusFound)
	return true
}
