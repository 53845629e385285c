package api

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/porthole/porthole/internal/pageheaders"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/auth"
	"github.com/porthole/porthole/sso"
	"github.com/porthole/porthole/store"
)

// Single sign-on (package sso has the provider's side).
//
// The web console: GET /api/v1/sso/login begins a sign-in (state, nonce
// and PKCE verifier sealed in the ssoFlowCookie, SameSite=Lax so that it
// comes back on the provider's redirect) and sends the browser to the
// provider; GET /api/v1/sso/callback checks the state against the
// cookie's, redeems the code with the verifier, checks the ID token and
// its nonce, maps the groups to roles (or refuses, saying why), and sets
// the console's session cookies exactly as a password login does.
//
// The CLI (`porthole login --sso`), RFC 8628 served by portholed itself:
//
//	CLI → POST /api/v1/sso/device-code          device_code (the CLI keeps it), user_code,
//	                                          verification_uri(_complete), interval
//	engineer's browser → GET /sso/device?user_code=…
//	                                          the code, the CLI's address and host name and
//	                                          when it asked; a Confirm button (CSRF-protected,
//	                                          not framable)
//	browser → POST /sso/device               → the provider, as for the console, with the
//	                                          grant's ID in the sealed flow
//	provider → GET /api/v1/sso/callback       the grant is approved for the identity that
//	                                          signed in at the provider (never for a console
//	                                          session the browser may hold), or denied
//	CLI → POST /api/v1/sso/token (every interval)
//	                                          authorization_pending, slow_down, access_denied,
//	                                          expired_token; once approved, one login, once
//
// The provider's tokens never leave portholed. Each SSO login keeps the
// provider's refresh token, sealed; RefreshSSO uses it when due and
// revokes the login when the provider refuses it or the user's groups no
// longer map to a role.

const (
	// ssoFlowCookie holds a sealed sso.Flow during a sign-in.
	ssoFlowCookie = "__Host-porthole-sso"
	// ssoCSRFCookie holds the verification page's CSRF value.
	ssoCSRFCookie = "__Host-porthole-sso-csrf"
	// Sealing purposes.
	sealFlow    = "flow"
	sealRefresh = "refresh"

	// deviceGrantTTL is how long `porthole login --sso` may wait.
	deviceGrantTTL = 10 * time.Minute
	// devicePollInterval is the least time between two polls, unless
	// Config.DevicePollInterval says otherwise.
	devicePollInterval = 5 * time.Second
	// ssoPagePath is the verification page.
	ssoPagePath = "/sso/device"
	// refreshLease is how long a node holds a claimed refresh before
	// another may try it again (after a failure to reach the provider).
	refreshLease = 2 * time.Minute
	// minRefreshGap keeps a provider whose access tokens are short-lived
	// from being asked more often than this.
	minRefreshGap = 30 * time.Second
)

// noSSO answers the SSO routes of a server without single sign-on.
func noSSO() *httpError {
	return notFound("this server does not offer single sign-on; log in with your email, password and code")
}

// ssoInfo is GET /api/v1/sso.
func (s *Server) ssoInfo(_ *call, _ *none) (apitype.SSOInfo, error) {
	return apitype.SSOInfo{Enabled: s.sso != nil}, nil
}

// ssoLogin is GET /api/v1/sso/login: the console's "Sign in with SSO".
func (s *Server) ssoLogin(w http.ResponseWriter, r *http.Request) {
	if s.sso == nil {
		s.writeError(w, r, noSSO())
		return
	}
	s.beginSignIn(w, r, "")
}

// beginSignIn sends the browser to the provider, the flow sealed in its
// cookie; grant is the device grant it approves, or "" for the console.
func (s *Server) beginSignIn(w http.ResponseWriter, r *http.Request, grant string) {
	now := s.now()
	f, authURL, err := s.sso.Begin(r.Context(), grant, now)
	if err != nil {
		s.logger.Error("single sign-on: the provider cannot be reached", "request_id", requestID(r.Context()), "err", err)
		s.ssoPage(w, http.StatusBadGateway, "The sign-in provider cannot be reached", "Try again in a moment; if it persists, tell the server's operator (request "+requestID(r.Context())+").", "")
		return
	}
	b, _ := json.Marshal(f)
	http.SetCookie(w, &http.Cookie{Name: ssoFlowCookie, Value: s.sso.Seal(sealFlow, b), Path: "/",
		MaxAge: int(sso.FlowTTL.Seconds()), Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, authURL, http.StatusSeeOther)
}

// ssoCallback is GET /api/v1/sso/callback, where the provider sends the
// browser back.
func (s *Server) ssoCallback(w http.ResponseWriter, r *http.Request) {
	if s.sso == nil {
		s.writeError(w, r, noSSO())
		return
	}
	c := &call{s: s, w: w, r: r, ctx: r.Context()}
	// The flow is used once, whatever comes of it.
	http.SetCookie(w, &http.Cookie{Name: ssoFlowCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	var f *sso.Flow
	if ck, err := r.Cookie(ssoFlowCookie); err == nil {
		if b, err := s.sso.Open(sealFlow, ck.Value); err == nil {
			f = new(sso.Flow)
			if json.Unmarshal(b, f) != nil {
				f = nil
			}
		}
	}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		s.ssoRefused(c, "", "provider_error:"+e, f)
		s.ssoPage(w, http.StatusForbidden, "Sign-in refused", "The provider refused the sign-in: "+e+" "+q.Get("error_description"), "")
		return
	}
	id, err := s.sso.Exchange(r.Context(), f, q.Get("state"), q.Get("code"), s.now())
	if err != nil {
		s.ssoRefused(c, "", "bad_callback", nil) // not f: a forged callback must not deny someone's grant
		s.logger.Info("single sign-on: callback refused", "request_id", requestID(r.Context()), "remote", clientAddr(r), "err", err)
		s.ssoPage(w, http.StatusForbidden, "Sign-in failed", strings.TrimPrefix(err.Error(), "sso: "), "")
		return
	}
	user, _, err := s.ssoUser(c, id)
	if err != nil {
		var he *httpError
		if !errors.As(err, &he) {
			s.writeError(w, r, err)
			return
		}
		s.ssoRefused(c, id.Email, "refused", f)
		s.ssoPage(w, he.status, "Sign-in refused", he.message, "")
		return
	}
	login := s.ssoLoginOf(id)
	if f.Grant != "" {
		s.approveGrant(c, f.Grant, user, login)
		return
	}
	if old, err := r.Cookie(apitype.ConsoleSessionCookie); err == nil && strings.HasPrefix(old.Value, consolePrefix+"_") {
		s.revokeConsoleSecret(c, old.Value)
	}
	secret, _, _, err := s.issueToken(c, user, consolePrefix, "console session (SSO) from "+clientAddr(r), methodSSO, login)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	setConsoleCookies(w, secret)
	// A page, not a redirect: the session cookie is SameSite=Strict, and a
	// navigation that a redirect chain from the provider started would not
	// carry it; one from this page does.
	s.ssoPage(w, http.StatusOK, "Signed in", "Signed in as "+user.Email+".", consolePath)
}

// ssoLogin is what a login keeps of the provider's answer.
type ssoLogin struct {
	refresh   string    // sealed; "" when the provider gave none
	refreshAt time.Time // when it is due
	expires   time.Time // the login's latest expiry: the ID token's without a refresh token
}

func (s *Server) ssoLoginOf(id *sso.Identity) *ssoLogin {
	now := s.now().UTC()
	l := &ssoLogin{expires: now.Add(s.tokenTTL)}
	if id.Refresh == "" {
		// Nothing to learn the user's removal by: the login ends with the
		// provider's own word on it.
		l.expires = minTime(l.expires, id.Expiry)
		return l
	}
	l.refresh = s.sso.Seal(sealRefresh, []byte(id.Refresh))
	l.refreshAt = s.nextRefresh(now, id)
	return l
}

// nextRefresh is when a login refreshed at now is next due: when the
// provider's access token expires, and at least every RefreshEvery, but
// not sooner than minRefreshGap.
func (s *Server) nextRefresh(now time.Time, id *sso.Identity) time.Time {
	next := now.Add(s.sso.RefreshEvery())
	if !id.AccessExpiry.IsZero() {
		next = minTime(next, id.AccessExpiry)
	}
	if next.Before(now.Add(minRefreshGap)) {
		next = now.Add(minRefreshGap)
	}
	return next
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// ssoUser creates or updates the user of id with the roles their groups
// map to, or refuses them with an answer naming the reason.
func (s *Server) ssoUser(c *call, id *sso.Identity) (*store.User, []*store.Membership, error) {
	roles, admin, err := s.sso.Map(id.Groups)
	if errors.Is(err, sso.ErrNoRoles) {
		return nil, nil, forbidden("%s signed in, but none of their groups at the provider (%s claim: %s) gives a role in any fleet here; "+
			"ask this server's operator to map one of them in portholed.yaml (sso.roles), or your provider's administrator to add you to a mapped group",
			id.Email, s.sso.GroupsClaim(), listOrNone(id.Groups))
	}
	u := &store.User{Email: id.Email, SSOSubject: id.Subject, Admin: admin}
	ms, err := s.store.SyncSSOUser(c.ctx, u, roles)
	if errors.Is(err, store.ErrConflict) {
		return nil, nil, conflict("%s is the email of a local account (or of another single sign-on identity) on this server; "+
			"an administrator must delete that account before %s can sign in with single sign-on", id.Email, id.Email)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("storing the SSO user: %w", err)
	}
	if len(ms) == 0 && !admin {
		return nil, nil, forbidden("%s signed in, but the fleets their groups map to do not exist on this server yet; ask an administrator to create them", id.Email)
	}
	return u, ms, nil
}

func listOrNone(groups []string) string {
	if len(groups) == 0 {
		return "none"
	}
	return strings.Join(groups, ", ")
}

// ssoRefused counts, logs and audits a refused sign-in, and denies the
// device grant the flow f would have approved.
func (s *Server) ssoRefused(c *call, email, reason string, f *sso.Flow) {
	s.metrics.loginFailures.WithLabelValues("sso_" + strings.SplitN(reason, ":", 2)[0]).Inc()
	actor := audit.Anonymous(email)
	if email == "" {
		actor = audit.Anonymous("sso")
	}
	s.record(c, audit.Event{Kind: audit.LoginFailed, Actor: actor,
		Detail: map[string]string{"method": "sso", "reason": reason, "remote": clientAddr(c.r)}})
	if f != nil && f.Grant != "" {
		g := &store.DeviceGrant{ID: f.Grant, State: store.GrantDenied}
		if _, err := s.store.DecideDeviceGrant(c.ctx, g, s.now()); err != nil {
			s.logger.Warn("denying a device grant", "request_id", requestID(c.ctx), "err", err)
		}
	}
}

// approveGrant gives the device grant the user who signed in.
func (s *Server) approveGrant(c *call, grantID string, user *store.User, l *ssoLogin) {
	g := &store.DeviceGrant{ID: grantID, State: store.GrantApproved, UserID: user.ID,
		SSORefresh: l.refresh, SSORefreshAt: l.refreshAt, LoginExpires: l.expires}
	ok, err := s.store.DecideDeviceGrant(c.withAudit(audit.Event{Kind: audit.SSODeviceApproved, Actor: audit.User(user.ID, user.Email),
		Detail: map[string]string{"grant": grantID}}).ctx, g, s.now())
	if err != nil {
		s.writeError(c.w, c.r, fmt.Errorf("approving the device grant: %w", err))
		return
	}
	if !ok {
		s.ssoPage(c.w, http.StatusGone, "This code expired", "The sign-in took longer than the code lasts, or the code was already used: run porthole login --sso again.", "")
		return
	}
	s.ssoPage(c.w, http.StatusOK, "Signed in", "Signed in as "+user.Email+". Go back to your terminal: porthole is logged in.", "")
}

// Device authorization grant.

// userCodeAlphabet has no vowels (no words) and no look-alikes.
const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

// newUserCode is 8 letters, XXXX-XXXX: about 34 bits, tried at most
// LoginFailuresPerAddress times per source in the window, for 10 minutes.
func newUserCode() string {
	b := make([]byte, 8)
	rand.Read(b)
	out := make([]byte, 0, 9)
	for i, v := range b {
		if i == 4 {
			out = append(out, '-')
		}
		out = append(out, userCodeAlphabet[int(v)%len(userCodeAlphabet)])
	}
	return string(out)
}

// normalUserCode is a typed user code as stored: upper case, no
// separators.
func normalUserCode(code string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r == '-' || r == ' ':
			return -1
		}
		return r
	}, code)
}

// deviceCode is POST /api/v1/sso/device.
func (s *Server) deviceCode(c *call, req *apitype.DeviceCodeRequest) (apitype.DeviceCodeResponse, error) {
	if s.sso == nil {
		return apitype.DeviceCodeResponse{}, noSSO()
	}
	now := s.now().UTC()
	if _, err := attempt(now, limit{s.deviceGrants, sourceKey(clientAddr(c.r)), "too many sign-ins started from your address"}); err != nil {
		return apitype.DeviceCodeResponse{}, err
	}
	name := req.ClientName
	if len(name) > 64 {
		name = name[:64]
	}
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, name)
	device, deviceHash := auth.NewSecret("phd")
	code := newUserCode()
	g := &store.DeviceGrant{DeviceHash: deviceHash, UserHash: auth.HashSecret(normalUserCode(code)),
		Requester: strings.TrimSpace(clientAddr(c.r) + " " + name), CreatedAt: now, ExpiresAt: now.Add(deviceGrantTTL)}
	if err := s.store.CreateDeviceGrant(c.ctx, g); err != nil {
		return apitype.DeviceCodeResponse{}, fmt.Errorf("storing the device grant: %w", err)
	}
	page := s.publicURL(c.r) + ssoPagePath
	return apitype.DeviceCodeResponse{DeviceCode: device, UserCode: code, VerificationURI: page,
		VerificationURIComplete: page + "?" + url.Values{"user_code": {code}}.Encode(),
		ExpiresIn:               int(deviceGrantTTL.Seconds()), Interval: int(s.pollInterval.Seconds())}, nil
}

// publicURL is the scheme and host the client reached this server at.
func (s *Server) publicURL(r *http.Request) string {
	if s.ssoPublicURL != "" {
		return s.ssoPublicURL
	}
	return "https://" + r.Host
}

func grantRefused(code, format string, args ...any) *httpError {
	return errorf(http.StatusBadRequest, code, format, args...)
}

// deviceToken is POST /api/v1/sso/token: the CLI's poll.
func (s *Server) deviceToken(c *call, req *apitype.DeviceTokenRequest) (apitype.LoginResponse, error) {
	var resp apitype.LoginResponse
	if s.sso == nil {
		return resp, noSSO()
	}
	now := s.now().UTC()
	g, err := s.store.DeviceGrantByDeviceCode(c.ctx, auth.HashSecret(req.DeviceCode))
	if errors.Is(err, store.ErrNotFound) {
		return resp, grantRefused(apitype.CodeInvalidGrant, "this device code is not one this server gave, or it expired long ago: run porthole login --sso again")
	}
	if err != nil {
		return resp, fmt.Errorf("looking up the device grant: %w", err)
	}
	switch {
	case g.State == store.GrantUsed:
		return resp, grantRefused(apitype.CodeInvalidGrant, "this device code was already used: run porthole login --sso again")
	case !now.Before(g.ExpiresAt):
		return resp, grantRefused(apitype.CodeExpiredToken, "the code expired before anyone signed in: run porthole login --sso again")
	case now.Sub(g.PolledAt) < s.pollInterval:
		return resp, grantRefused(apitype.CodeSlowDown, "polled too soon: wait %v between polls", s.pollInterval)
	}
	if polled, err := s.store.PollDeviceGrant(c.ctx, g.ID, g.PolledAt, now); err != nil {
		return resp, fmt.Errorf("recording the poll: %w", err)
	} else if !polled {
		return resp, grantRefused(apitype.CodeSlowDown, "polled twice at once: wait %v between polls", s.pollInterval)
	}
	switch g.State {
	case store.GrantPending:
		return resp, grantRefused(apitype.CodeAuthorizationPending, "waiting for the sign-in in the browser")
	case store.GrantDenied:
		return resp, grantRefused(apitype.CodeAccessDenied, "the sign-in was refused; the browser said why")
	}
	used, err := s.store.UseDeviceGrant(c.ctx, g.ID)
	if err != nil {
		return resp, fmt.Errorf("using the device grant: %w", err)
	}
	if !used {
		return resp, grantRefused(apitype.CodeInvalidGrant, "this device code was already used: run porthole login --sso again")
	}
	user, err := s.store.GetUser(c.ctx, g.UserID)
	if err != nil {
		return resp, fmt.Errorf("reading the signed-in user: %w", err)
	}
	l := &ssoLogin{refresh: g.SSORefresh, refreshAt: g.SSORefreshAt, expires: g.LoginExpires}
	secret, tok, ms, err := s.issueToken(c, user, bearerPrefix, "login (SSO) from "+g.Requester, methodSSO, l)
	if err != nil {
		return resp, err
	}
	return apitype.LoginResponse{Token: secret, TokenID: tok.ID, ExpiresAt: tok.ExpiresAt, User: apiUser(user, ms)}, nil
}

// ssoDevicePage is GET /sso/device: the verification page.
func (s *Server) ssoDevicePage(w http.ResponseWriter, r *http.Request) {
	if s.sso == nil {
		s.writeError(w, r, noSSO())
		return
	}
	code := r.URL.Query().Get("user_code")
	csrf := rand.Text()
	http.SetCookie(w, &http.Cookie{Name: ssoCSRFCookie, Value: csrf, Path: "/", MaxAge: int(deviceGrantTTL.Seconds()),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	data := devicePageData{CSRF: csrf, Code: code}
	if code != "" {
		g, err := s.store.DeviceGrantByUserCode(r.Context(), auth.HashSecret(normalUserCode(code)), s.now())
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.writeError(w, r, fmt.Errorf("looking up the user code: %w", err))
			return
		}
		if g != nil {
			data.Grant, data.Requester, data.Asked = true, g.Requester, g.CreatedAt.UTC().Format("15:04:05 MST, 2 Jan 2006")
		} else {
			data.Unknown = true
		}
	}
	s.securePage(w)
	if err := devicePage.Execute(w, data); err != nil {
		s.logger.Warn("writing the verification page", "err", err)
	}
}

// ssoDeviceConfirm is POST /sso/device: the engineer confirmed the code.
func (s *Server) ssoDeviceConfirm(w http.ResponseWriter, r *http.Request) {
	if s.sso == nil {
		s.writeError(w, r, noSSO())
		return
	}
	if err := crossOrigin.Check(r); err != nil {
		s.ssoPage(w, http.StatusForbidden, "Refused", "This confirmation came from another site: open the link porthole printed.", "")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	ck, err := r.Cookie(ssoCSRFCookie)
	if err != nil || ck.Value == "" || r.PostFormValue("csrf") != ck.Value {
		s.ssoPage(w, http.StatusForbidden, "Refused", "This confirmation did not come from the page this server showed: open the link porthole printed again.", "")
		return
	}
	now := s.now().UTC()
	forgive, err := attempt(now, limit{s.loginByAddress, sourceKey(clientAddr(r)), "too many wrong codes from your address"})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	g, err := s.store.DeviceGrantByUserCode(r.Context(), auth.HashSecret(normalUserCode(r.PostFormValue("user_code"))), now)
	if errors.Is(err, store.ErrNotFound) {
		s.ssoPage(w, http.StatusNotFound, "Unknown code", "No sign-in waits for this code: it expired, was used, or was mistyped. Run porthole login --sso again.", "")
		return
	}
	if err != nil {
		s.writeError(w, r, fmt.Errorf("looking up the user code: %w", err))
		return
	}
	forgive()
	s.beginSignIn(w, r, g.ID)
}

type devicePageData struct {
	CSRF, Code       string
	Grant, Unknown   bool
	Requester, Asked string
}

var devicePage = template.Must(template.New("device").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Porthole: sign in a terminal</title>
<meta name="viewport" content="width=device-width"></head>
<body style="font-family: sans-serif; max-width: 36em; margin: 3em auto">
<h1>Sign in a terminal</h1>
{{if .Grant}}
<p>A terminal asked to sign in to Porthole as you:</p>
<ul><li>code <strong id="code">{{.Code}}</strong></li><li>from <strong id="requester">{{.Requester}}</strong></li><li>at <strong>{{.Asked}}</strong></li></ul>
<p>Continue only if you ran <code>porthole login --sso</code> yourself just now, and it shows this same code.
Whoever holds that terminal will act as you.</p>
<form method="post" action="/sso/device"><input type="hidden" name="csrf" value="{{.CSRF}}">
<input type="hidden" name="user_code" value="{{.Code}}"><button type="submit">Confirm and sign in</button></form>
{{else}}
{{if .Unknown}}<p role="alert">No sign-in waits for the code {{.Code}}: it expired, was used, or was mistyped.</p>{{end}}
<form method="get" action="/sso/device"><label>Code shown by <code>porthole login --sso</code>:
<input name="user_code" autocomplete="off" autofocus></label> <button type="submit">Next</button></form>
{{end}}
</body></html>
`))

var ssoResult = template.Must(template.New("result").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Porthole: {{.Title}}</title>
{{if .Next}}<meta http-equiv="refresh" content="0;url={{.Next}}">{{end}}
<meta name="viewport" content="width=device-width"></head>
<body style="font-family: sans-serif; max-width: 36em; margin: 3em auto">
<h1>{{.Title}}</h1><p id="message">{{.Message}}</p>
{{if .Next}}<p><a href="{{.Next}}">Continue</a></p>{{end}}
</body></html>
`))

// ssoPage answers a sign-in's end, or its refusal, in words.
func (s *Server) ssoPage(w http.ResponseWriter, status int, title, message, next string) {
	s.securePage(w)
	w.WriteHeader(status)
	ssoResult.Execute(w, struct{ Title, Message, Next string }{title, message, next})
}

// securePage sets the headers of the sign-in pages: no scripts and no
// framing (the Confirm button must not be clicked through a frame). No
// form-action: the confirmation's answer redirects to the provider, whose
// sign-in may move between its own hosts.
func (s *Server) securePage(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	pageheaders.Set(h, "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Cache-Control", "no-store")
}

// RefreshSSO uses the refresh tokens of the SSO logins that are due, as
// every node's sweep does every minute or so: a login whose refresh the
// provider refuses (the user was removed, or their sessions revoked), or
// whose groups no longer map to a role, is revoked, with its console
// streams; the others' roles follow the groups of the new ID token. Nodes
// sharing a database each claim a login before refreshing it, so a
// refresh token is never used twice. It returns the number of logins it
// revoked.
func (s *Server) RefreshSSO(ctx context.Context) (int, error) {
	if s.sso == nil {
		return 0, nil
	}
	now := s.now().UTC()
	if err := s.store.DeleteDeviceGrants(ctx, now.Add(-time.Hour)); err != nil {
		s.logger.Warn("deleting expired device grants", "err", err)
	}
	due, err := s.store.DueSSORefreshes(ctx, now, 100)
	if err != nil {
		return 0, fmt.Errorf("listing due SSO refreshes: %w", err)
	}
	revoked := 0
	for _, tok := range due {
		won, err := s.store.ClaimSSORefresh(ctx, tok.ID, tok.SSORefreshAt, now.Add(refreshLease))
		if err != nil {
			return revoked, fmt.Errorf("claiming an SSO refresh: %w", err)
		}
		if !won {
			continue // another node has it
		}
		gone, err := s.refreshLogin(ctx, tok, now)
		if err != nil {
			s.logger.Warn("single sign-on: refresh failed; trying again later", "token_id", tok.ID, "err", err)
			continue
		}
		if gone {
			revoked++
		}
	}
	return revoked, nil
}

// refreshLogin refreshes one claimed login; it reports whether it
// revoked it.
func (s *Server) refreshLogin(ctx context.Context, tok *store.Token, now time.Time) (bool, error) {
	user, err := s.store.GetUser(ctx, tok.UserID)
	if err != nil {
		return false, fmt.Errorf("reading the login's user: %w", err)
	}
	rt, err := s.sso.Open(sealRefresh, tok.SSORefresh)
	if err != nil {
		return true, s.revokeSSO(ctx, user, tok, "its provider refresh token cannot be opened (the client secret changed)")
	}
	id, err := s.sso.Refresh(ctx, string(rt), user.SSOSubject)
	if errors.Is(err, sso.ErrRefused) {
		return true, s.revokeSSO(ctx, user, tok, "the provider refused its refresh token: the user was removed, or their sessions revoked")
	}
	if err != nil {
		return false, err
	}
	c := &call{s: s, ctx: ctx, r: &http.Request{RemoteAddr: "system"}}
	if _, _, err := s.ssoUser(c, id); err != nil {
		var he *httpError
		if errors.As(err, &he) {
			return true, s.revokeSSO(ctx, user, tok, he.message)
		}
		return false, err
	}
	next := id.Refresh
	if next == "" {
		next = string(rt) // the provider does not rotate its refresh tokens
	}
	return false, s.store.SetSSORefresh(ctx, tok.ID, s.sso.Seal(sealRefresh, []byte(next)), s.nextRefresh(now, id))
}

// revokeSSO ends an SSO login, audited, with its console streams.
func (s *Server) revokeSSO(ctx context.Context, user *store.User, tok *store.Token, why string) error {
	ev := audit.Event{Kind: audit.TokenRevoked, Actor: audit.System,
		Detail: map[string]string{"token_id": tok.ID, "user": user.Email, "why": "single sign-on: " + why}}
	if err := s.store.DeleteToken(store.WithAudit(ctx, ev), tok.UserID, tok.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("revoking the SSO login: %w", err)
	}
	s.logger.Info("single sign-on: login revoked", "user", user.Email, "token_id", tok.ID, "why", why)
	s.streams.cut(tok.ID, apitype.PresenceEndEvent{Reason: endLoggedOut})
	return nil
}
