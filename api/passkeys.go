package api

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/auth"
	"github.com/porthole/porthole/fleetpolicy"
	"github.com/porthole/porthole/store"
)

// Passkeys (WebAuthn, issue 15), checked by github.com/go-webauthn/webauthn.
//
// The relying party is the server's public URL (Config.PublicURL): its
// host is the RP ID, and its origin the one origin a browser's answer may
// come from; anything else fails (the library checks the client data's
// origin and the authenticator data's RP ID hash). A server without a
// public URL, or whose public URL names an IP address (browsers allow no
// passkeys there), offers none, and says why.
//
// Protocol flow. Each ceremony is two calls. The first stores its
// challenge on the server (store.Ceremony: 5 minutes, taken once, bound
// to the login or, for a sign-in, to a secret in an HttpOnly cookie of
// the browser that began it); the second takes it, whatever comes of it,
// and checks the authenticator's answer against it. An answer that cannot
// be read is refused (400) before the ceremony is taken.
//
//	register (logged in, a second factor within the last 5 minutes):
//	  POST /api/v1/passkeys/register-options   creation options: a discoverable credential,
//	                                           user verification required, no attestation
//	  navigator.credentials.create
//	  POST /api/v1/passkeys {name, credential}  stored (a credential ID is one user's): passkey_registered
//	sign in with a passkey alone:
//	  POST /api/v1/console/passkey-options {}   request options, user verification required
//	                                           (the cookie __Host-porthole-passkey binds it)
//	  navigator.credentials.get
//	  POST /api/v1/console/passkey-login {passkey}
//	                                           the console session's cookies, as a password login
//	                                           sets them: login_succeeded (method passkey)
//	a passkey in place of the TOTP code, after the password:
//	  POST /api/v1/console/passkey-options {second_factor: true}
//	                                           request options, user verification preferred
//	  navigator.credentials.get
//	  POST /api/v1/console/login {email, password, passkey}
//	                                           as a password login (method password+passkey)
//	re-authenticate (a fleet's reauth rule; adding or removing a passkey):
//	  POST /api/v1/reauth/passkey-options       request options for the caller's passkeys
//	  navigator.credentials.get
//	  POST /api/v1/reauth {passkey}             the login's second factor is now: reauth_succeeded
//
// Every use checks the signature counter: one that does not move forward
// (from an authenticator that keeps one) is a cloned key's, refused and
// audited; the stored count moves only over the count the check read, so
// two uses at once are one use.
//
// Users who sign in with single sign-on may add passkeys, but only to
// re-authenticate: a sign-in with their passkey is refused, since their
// logins must stay the provider's to vouch for and to end.

const (
	// ceremonyTTL is how long a ceremony's challenge waits.
	ceremonyTTL = 5 * time.Minute
	// freshForPasskeys is how recent a login's second factor must be
	// for it to add or remove a passkey: a stolen session cookie alone
	// does neither.
	freshForPasskeys = 5 * time.Minute
	// maxPasskeys is the most passkeys one user may have.
	maxPasskeys = 20
	// maxPasskeyName is the longest name of one, in characters.
	maxPasskeyName = 64
	// rpName is the relying party's name authenticators show.
	rpName = "Porthole"
)

// Reasons a passkey was refused, counted with login failures and in the
// audit log's Detail["reason"].
const (
	reasonNoCeremony       = "passkey_no_ceremony" // none waits: never begun, expired, or already used (a replay)
	reasonUnknownPasskey   = "unknown_passkey"     // no such passkey (never registered, or removed)
	reasonPasskeyInvalid   = "passkey_invalid"     // the answer did not verify (signature, challenge, origin, RP ID, user verification); Detail["why"]
	reasonPasskeyCloned    = "passkey_cloned"      // its signature counter did not move forward
	reasonPasskeyRaced     = "passkey_raced"       // another use of it came in between
	reasonOtherUserPasskey = "passkey_of_another_user"
	reasonNoFreshFactor    = "no_fresh_factor"
	reasonCredentialTaken  = "credential_taken"
)

// newRelyingParty is the WebAuthn relying party of the server's public
// URL, or nil and the words that say why the server offers no passkeys.
func newRelyingParty(publicURL string) (*webauthn.WebAuthn, string) {
	const off = "this server offers no passkeys: "
	if publicURL == "" {
		return nil, off + "it has no public URL (public_url in portholed.yaml)"
	}
	u, err := url.Parse(publicURL)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" {
		return nil, fmt.Sprintf(off+"its public_url %q is not an https:// URL", publicURL)
	}
	host := strings.ToLower(u.Hostname())
	if net.ParseIP(host) != nil {
		return nil, fmt.Sprintf(off+"its public_url (%s) names an IP address, where browsers allow no passkeys; set public_url to a host name", publicURL)
	}
	origin := "https://" + host
	if p := u.Port(); p != "" && p != "443" {
		origin += ":" + p
	}
	wa, err := webauthn.New(&webauthn.Config{
		RPID:                  host,
		RPDisplayName:         rpName,
		RPOrigins:             []string{origin},
		AttestationPreference: protocol.PreferNoAttestation,
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: ceremonyTTL, TimeoutUVD: ceremonyTTL},
			Registration: webauthn.TimeoutConfig{Timeout: ceremonyTTL, TimeoutUVD: ceremonyTTL},
		},
	})
	if err != nil {
		return nil, fmt.Sprintf(off+"its public_url (%s) is no relying party: %v", publicURL, err)
	}
	return wa, ""
}

// relyingParty is the server's, or the answer of a server that has none.
func (s *Server) relyingParty() (*webauthn.WebAuthn, error) {
	if s.passkeys == nil {
		return nil, notFound("%s", s.passkeysOff)
	}
	return s.passkeys, nil
}

// passkeyUser is a user and their passkeys, as the library reads them.
type passkeyUser struct {
	user *store.User
	keys []*store.Passkey
}

var _ webauthn.User = (*passkeyUser)(nil)

// WebAuthnID is the user handle authenticators keep: the user's ID,
// which holds nothing about the person.
func (p *passkeyUser) WebAuthnID() []byte          { return []byte(p.user.ID) }
func (p *passkeyUser) WebAuthnName() string        { return p.user.Email }
func (p *passkeyUser) WebAuthnDisplayName() string { return p.user.Email }

func (p *passkeyUser) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, len(p.keys))
	for i, k := range p.keys {
		out[i] = credentialOf(k)
	}
	return out
}

// key is the stored passkey of a credential ID the library returned.
func (p *passkeyUser) key(credentialID []byte) *store.Passkey {
	for _, k := range p.keys {
		if string(k.CredentialID) == string(credentialID) {
			return k
		}
	}
	return nil
}

// credentialOf is a stored passkey as the library's credential record.
func credentialOf(k *store.Passkey) webauthn.Credential {
	flags := protocol.FlagUserPresent
	if k.UserVerified {
		flags |= protocol.FlagUserVerified
	}
	if k.BackupEligible {
		flags |= protocol.FlagBackupEligible
	}
	if k.BackupState {
		flags |= protocol.FlagBackupState
	}
	transports := make([]protocol.AuthenticatorTransport, len(k.Transports))
	for i, t := range k.Transports {
		transports[i] = protocol.AuthenticatorTransport(t)
	}
	return webauthn.Credential{ID: k.CredentialID, PublicKey: k.PublicKey, AttestationFormat: k.AttestationFormat,
		Transport: transports, Flags: webauthn.NewCredentialFlags(flags),
		Authenticator: webauthn.Authenticator{AAGUID: k.AAGUID, SignCount: k.SignCount}}
}

func (s *Server) passkeyUserOf(c *call, u *store.User) (*passkeyUser, error) {
	keys, err := s.store.ListPasskeys(c.ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("listing the passkeys of %s: %w", u.Email, err)
	}
	return &passkeyUser{user: u, keys: keys}, nil
}

// credentialTag names a credential in the audit log without its ID: the
// first 8 bytes of its SHA-256, in hex.
func credentialTag(id []byte) string {
	sum := sha256.Sum256(id)
	return hex.EncodeToString(sum[:8])
}

func apiPasskey(k *store.Passkey) apitype.Passkey {
	return apitype.Passkey{ID: k.ID, Name: k.Name, CreatedAt: k.CreatedAt, LastUsedAt: k.LastUsedAt,
		Synced: k.BackupState, Transports: k.Transports}
}

// Ceremonies.

// errNoCeremony: none waits with that ID and kind.
var errNoCeremony = errors.New("no ceremony waits")

// loginCeremony is the ID of a logged-in user's ceremony of kind: one of
// each kind per login, a new one replacing the last.
func loginCeremony(tok *store.Token, kind string) string { return tok.ID + " " + kind }

// putCeremony stores a ceremony's session data for ceremonyTTL.
func (s *Server) putCeremony(c *call, id, kind, userID, tokenID string, session *webauthn.SessionData) error {
	b, err := json.Marshal(session)
	if err != nil {
		return fmt.Errorf("encoding a %s ceremony: %w", kind, err)
	}
	now := s.now().UTC()
	cer := &store.Ceremony{ID: id, Kind: kind, UserID: userID, TokenID: tokenID, Session: string(b), CreatedAt: now, ExpiresAt: now.Add(ceremonyTTL)}
	if err := s.store.PutCeremony(c.ctx, cer); err != nil {
		return fmt.Errorf("storing a %s ceremony: %w", kind, err)
	}
	return nil
}

// takeCeremony takes the ceremony of this ID and kind: errNoCeremony when
// none waits.
func (s *Server) takeCeremony(c *call, id, kind string) (*webauthn.SessionData, error) {
	cer, err := s.store.TakeCeremony(c.ctx, id, kind, s.now())
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoCeremony
	} else if err != nil {
		return nil, fmt.Errorf("taking a %s ceremony: %w", kind, err)
	}
	var session webauthn.SessionData
	if err := json.Unmarshal([]byte(cer.Session), &session); err != nil {
		return nil, fmt.Errorf("decoding a %s ceremony: %w", kind, err)
	}
	return &session, nil
}

// takeSignInCeremony takes the sign-in of kind that this browser began,
// found by the secret in its cookie, which it is told to forget.
func (s *Server) takeSignInCeremony(c *call, kind string) (*webauthn.SessionData, error) {
	http.SetCookie(c.w, &http.Cookie{Name: apitype.PasskeyCookie, Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	ck, err := c.r.Cookie(apitype.PasskeyCookie)
	if err != nil || ck.Value == "" {
		return nil, errNoCeremony
	}
	return s.takeCeremony(c, auth.HashSecret(ck.Value), kind)
}

// The API's JSON and the library's.

func descriptors(ds []protocol.CredentialDescriptor) []apitype.PasskeyDescriptor {
	out := []apitype.PasskeyDescriptor{}
	for _, d := range ds {
		pd := apitype.PasskeyDescriptor{ID: d.CredentialID.String()}
		for _, t := range d.Transport {
			pd.Transports = append(pd.Transports, string(t))
		}
		out = append(out, pd)
	}
	return out
}

func creationOptions(o *protocol.PublicKeyCredentialCreationOptions, u *passkeyUser) apitype.PasskeyCreationOptions {
	out := apitype.PasskeyCreationOptions{Challenge: o.Challenge.String(), RPID: o.RelyingParty.ID, RPName: o.RelyingParty.Name,
		UserID: base64.RawURLEncoding.EncodeToString(u.WebAuthnID()), UserName: u.WebAuthnName(), UserDisplayName: u.WebAuthnDisplayName(),
		Algorithms: []int{}, ExcludeCredentials: descriptors(o.CredentialExcludeList),
		ResidentKey: string(o.AuthenticatorSelection.ResidentKey), UserVerification: string(o.AuthenticatorSelection.UserVerification),
		Attestation: string(o.Attestation), TimeoutMS: o.Timeout}
	for _, p := range o.Parameters {
		out.Algorithms = append(out.Algorithms, int(p.Algorithm))
	}
	return out
}

func requestOptions(o *protocol.PublicKeyCredentialRequestOptions) apitype.PasskeyRequestOptions {
	return apitype.PasskeyRequestOptions{Challenge: o.Challenge.String(), RPID: o.RelyingPartyID,
		AllowCredentials: descriptors(o.AllowedCredentials), UserVerification: string(o.UserVerification), TimeoutMS: o.Timeout}
}

// b64Field decodes a base64url field of a passkey's answer (padding
// tolerated); a required one may not be empty.
func b64Field(name, v string, required bool) ([]byte, error) {
	if v == "" {
		if required {
			return nil, badRequest("passkey field %s is required", name)
		}
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(v, "="))
	if err != nil {
		return nil, badRequest("passkey field %s is not base64url: %v", name, err)
	}
	return b, nil
}

// protocolWords is what the library said of an answer it refused.
func protocolWords(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		if pe.DevInfo != "" && pe.DevInfo != pe.Details {
			return pe.Details + ": " + pe.DevInfo
		}
		return pe.Details
	}
	return err.Error()
}

// parseAttestation reads a new passkey's answer; one that cannot be read
// is a 400.
func parseAttestation(a *apitype.PasskeyAttestation) (*protocol.ParsedCredentialCreationData, error) {
	rawID, err := b64Field("credential.id", a.ID, true)
	if err != nil {
		return nil, err
	}
	cdj, err := b64Field("credential.client_data_json", a.ClientDataJSON, true)
	if err != nil {
		return nil, err
	}
	obj, err := b64Field("credential.attestation_object", a.AttestationObject, true)
	if err != nil {
		return nil, err
	}
	ccr := protocol.CredentialCreationResponse{
		PublicKeyCredential: protocol.PublicKeyCredential{
			Credential: protocol.Credential{ID: base64.RawURLEncoding.EncodeToString(rawID), Type: string(protocol.PublicKeyCredentialType)},
			RawID:      rawID, AuthenticatorAttachment: a.AuthenticatorAttachment},
		AttestationResponse: protocol.AuthenticatorAttestationResponse{AuthenticatorResponse: protocol.AuthenticatorResponse{ClientDataJSON: cdj},
			AttestationObject: obj, Transports: a.Transports},
	}
	parsed, err := ccr.Parse()
	if err != nil {
		return nil, badRequest("the new passkey's answer cannot be read: %s", protocolWords(err))
	}
	if string(parsed.Response.AttestationObject.AuthData.AttData.CredentialID) != string(rawID) {
		return nil, badRequest("the new passkey's answer names another credential than its authenticator data")
	}
	return parsed, nil
}

// parseAssertion reads a passkey's signature; one that cannot be read is
// a 400.
func parseAssertion(a *apitype.PasskeyAssertion) (*protocol.ParsedCredentialAssertionData, error) {
	rawID, err := b64Field("passkey.id", a.ID, true)
	if err != nil {
		return nil, err
	}
	cdj, err := b64Field("passkey.client_data_json", a.ClientDataJSON, true)
	if err != nil {
		return nil, err
	}
	ad, err := b64Field("passkey.authenticator_data", a.AuthenticatorData, true)
	if err != nil {
		return nil, err
	}
	sig, err := b64Field("passkey.signature", a.Signature, true)
	if err != nil {
		return nil, err
	}
	uh, err := b64Field("passkey.user_handle", a.UserHandle, false)
	if err != nil {
		return nil, err
	}
	car := protocol.CredentialAssertionResponse{
		PublicKeyCredential: protocol.PublicKeyCredential{
			Credential: protocol.Credential{ID: base64.RawURLEncoding.EncodeToString(rawID), Type: string(protocol.PublicKeyCredentialType)},
			RawID:      rawID, AuthenticatorAttachment: a.AuthenticatorAttachment},
		AssertionResponse: protocol.AuthenticatorAssertionResponse{AuthenticatorResponse: protocol.AuthenticatorResponse{ClientDataJSON: cdj},
			AuthenticatorData: ad, Signature: sig, UserHandle: uh},
	}
	parsed, err := car.Parse()
	if err != nil {
		return nil, badRequest("the passkey's answer cannot be read: %s", protocolWords(err))
	}
	return parsed, nil
}

// passkeyName checks the name a user gives a passkey.
func passkeyName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", badRequest("name is required: what you call this passkey, such as \"laptop\"")
	case !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxPasskeyName:
		return "", badRequest("name must be at most %d characters of text", maxPasskeyName)
	case strings.ContainsFunc(name, unicode.IsControl):
		return "", badRequest("name must not hold control characters")
	}
	return name, nil
}

// The routes.

// listPasskeys is GET /api/v1/passkeys.
func (s *Server) listPasskeys(c *call, _ *none) ([]apitype.Passkey, error) {
	keys, err := s.store.ListPasskeys(c.ctx, c.user.ID)
	if err != nil {
		return nil, fmt.Errorf("listing passkeys: %w", err)
	}
	out := []apitype.Passkey{}
	for _, k := range keys {
		out = append(out, apiPasskey(k))
	}
	return out, nil
}

// passkeyRefused audits a refused registration or removal.
func (s *Server) passkeyRefused(c *call, reason, why string, detail map[string]string) {
	ev := audit.Event{Kind: audit.PasskeyRefused, Actor: c.actor(),
		Detail: map[string]string{"reason": reason, "token_id": c.token.ID, "remote": clientAddr(c.r)}}
	for k, v := range detail {
		ev.Detail[k] = v
	}
	if why != "" {
		ev.Detail["why"] = why
	}
	s.logger.Info("passkey refused", "request_id", requestID(c.ctx), "user", c.user.Email, "reason", reason, "why", why)
	s.record(c, ev)
}

// checkFresh lets the caller change their passkeys (action, as in
// "adding a passkey") only if their login proved a second factor within
// freshForPasskeys: a stolen session cookie alone adds no passkey of the
// thief's, nor removes the owner's. The refusal is reauth_required, which
// the console answers by asking for a code or a passkey.
func (s *Server) checkFresh(c *call, action string) error {
	now := s.now()
	if !c.token.FactorAt.IsZero() && now.Sub(c.token.FactorAt) <= freshForPasskeys {
		return nil
	}
	last := "no second factor of this login is on record"
	if !c.token.FactorAt.IsZero() {
		last = "your last was " + fleetpolicy.Duration(max(now.Sub(c.token.FactorAt).Truncate(time.Minute), time.Minute)) + " ago"
	}
	s.passkeyRefused(c, reasonNoFreshFactor, "", map[string]string{"action": action})
	prove := "send a fresh authenticator code or use a passkey (POST /api/v1/reauth)"
	if c.user.SSOSubject != "" {
		prove = "use a passkey, or sign in again with single sign-on,"
	}
	return errorf(http.StatusForbidden, apitype.CodeReauthRequired, "%s needs a second factor proved within the last %s (%s); %s and try again",
		action, fleetpolicy.Duration(freshForPasskeys), last, prove)
}

// passkeyRegisterOptions is POST /api/v1/passkeys/register-options.
func (s *Server) passkeyRegisterOptions(c *call, _ *none) (apitype.PasskeyCreationOptions, error) {
	var out apitype.PasskeyCreationOptions
	rp, err := s.relyingParty()
	if err != nil {
		return out, err
	}
	if err := s.checkFresh(c, "adding a passkey"); err != nil {
		return out, err
	}
	pu, err := s.passkeyUserOf(c, c.user)
	if err != nil {
		return out, err
	}
	if len(pu.keys) >= maxPasskeys {
		return out, conflict("you have %d passkeys, the most one may have; remove one first", len(pu.keys))
	}
	creation, session, err := rp.BeginRegistration(pu,
		webauthn.WithExclusions(webauthn.Credentials(pu.WebAuthnCredentials()).CredentialDescriptors()),
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{RequireResidentKey: protocol.ResidentKeyRequired(),
			ResidentKey: protocol.ResidentKeyRequirementRequired, UserVerification: protocol.VerificationRequired}),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation))
	if err != nil {
		return out, fmt.Errorf("beginning a passkey registration: %w", err)
	}
	if err := s.putCeremony(c, loginCeremony(c.token, store.CeremonyRegister), store.CeremonyRegister, c.user.ID, c.token.ID, session); err != nil {
		return out, err
	}
	return creationOptions(&creation.Response, pu), nil
}

// registerPasskey is POST /api/v1/passkeys.
func (s *Server) registerPasskey(c *call, req *apitype.RegisterPasskeyRequest) (apitype.Passkey, error) {
	var out apitype.Passkey
	rp, err := s.relyingParty()
	if err != nil {
		return out, err
	}
	name, err := passkeyName(req.Name)
	if err != nil {
		return out, err
	}
	parsed, err := parseAttestation(&req.Credential)
	if err != nil {
		return out, err
	}
	detail := map[string]string{"name": name, "credential": credentialTag(parsed.RawID)}
	session, err := s.takeCeremony(c, loginCeremony(c.token, store.CeremonyRegister), store.CeremonyRegister)
	if errors.Is(err, errNoCeremony) {
		s.passkeyRefused(c, reasonNoCeremony, "", detail)
		return out, errorf(http.StatusForbidden, apitype.CodePasskeyRefused,
			"no passkey registration waits for this login (it lasts %s and is used once); start again", fleetpolicy.Duration(ceremonyTTL))
	} else if err != nil {
		return out, err
	}
	pu, err := s.passkeyUserOf(c, c.user)
	if err != nil {
		return out, err
	}
	cred, err := rp.CreateCredential(pu, *session, parsed)
	if err != nil {
		why := protocolWords(err)
		s.passkeyRefused(c, reasonPasskeyInvalid, why, detail)
		return out, errorf(http.StatusForbidden, apitype.CodePasskeyRefused, "the passkey was not registered: %s", why)
	}
	now := s.now().UTC()
	k := &store.Passkey{UserID: c.user.ID, CredentialID: cred.ID, PublicKey: cred.PublicKey, AttestationFormat: cred.AttestationFormat,
		AAGUID: cred.Authenticator.AAGUID, SignCount: cred.Authenticator.SignCount, UserVerified: cred.Flags.UserVerified,
		BackupEligible: cred.Flags.BackupEligible, BackupState: cred.Flags.BackupState, Name: name, CreatedAt: now}
	for _, t := range cred.Transport {
		if t != "" && !strings.Contains(string(t), ",") {
			k.Transports = append(k.Transports, string(t))
		}
	}
	ev := audit.Event{Kind: audit.PasskeyRegistered, Detail: map[string]string{"name": name, "credential": detail["credential"],
		"token_id": c.token.ID, "synced": fmt.Sprint(k.BackupState)}}
	err = s.store.CreatePasskey(c.withAudit(ev).ctx, k)
	if errors.Is(err, store.ErrConflict) {
		s.passkeyRefused(c, reasonCredentialTaken, "", detail)
		return out, conflict("this passkey is registered already, to your account or another's; an authenticator's passkey is one person's")
	} else if err != nil {
		return out, fmt.Errorf("storing the passkey: %w", err)
	}
	s.logger.Info("passkey registered", "request_id", requestID(c.ctx), "user", c.user.Email, "passkey", k.ID)
	return apiPasskey(k), nil
}

// deletePasskey is DELETE /api/v1/passkeys/{id}: the caller's own.
func (s *Server) deletePasskey(c *call, _ *none) (none, error) {
	id := c.r.PathValue("id")
	if err := s.checkFresh(c, "removing a passkey"); err != nil {
		return none{}, err
	}
	keys, err := s.store.ListPasskeys(c.ctx, c.user.ID)
	if err != nil {
		return none{}, fmt.Errorf("listing passkeys: %w", err)
	}
	gone := notFound("you have no passkey %s", id)
	var k *store.Passkey
	for _, p := range keys {
		if p.ID == id {
			k = p
		}
	}
	if k == nil {
		return none{}, gone
	}
	ev := audit.Event{Kind: audit.PasskeyRemoved, Detail: map[string]string{"name": k.Name, "credential": credentialTag(k.CredentialID),
		"passkey_id": k.ID, "token_id": c.token.ID}}
	// The logins signed in with it end with it (a passkey is removed
	// because it was lost, or worse), but for this one, which has just
	// proved a fresh factor.
	ended, err := s.store.DeletePasskey(c.withAudit(ev).ctx, c.user.ID, id, c.token.ID)
	if errors.Is(err, store.ErrNotFound) {
		return none{}, gone
	} else if err != nil {
		return none{}, fmt.Errorf("deleting the passkey: %w", err)
	}
	for _, tok := range ended {
		s.streams.cut(tok, apitype.PresenceEndEvent{Reason: endLoggedOut})
	}
	if len(ended) > 0 {
		s.logger.Info("logins ended with their passkey", "request_id", requestID(c.ctx), "user", c.user.ID, "passkey_id", k.ID, "logins", len(ended))
	}
	return none{}, nil
}

// passkeySignInOptions is POST /api/v1/console/passkey-options: a sign-in
// begun, bound to a secret in this browser's cookie. Starts are limited
// per source (passkeyStarts), which bounds the ceremonies stored.
func (s *Server) passkeySignInOptions(c *call, req *apitype.PasskeySignInRequest) (apitype.PasskeyRequestOptions, error) {
	var out apitype.PasskeyRequestOptions
	rp, err := s.relyingParty()
	if err != nil {
		return out, err
	}
	if err := checkLoginOrigin(c); err != nil {
		return out, err
	}
	if _, err := attempt(s.now(), limit{s.passkeyStarts, sourceKey(clientAddr(c.r)), "too many passkey sign-ins started from your address"}); err != nil {
		return out, err
	}
	kind, uv := store.CeremonyLogin, protocol.VerificationRequired
	if req.SecondFactor {
		// The password is the other factor: the authenticator's
		// presence is enough, and its verification welcome.
		kind, uv = store.CeremonySecondFactor, protocol.VerificationPreferred
	}
	assertion, session, err := rp.BeginDiscoverableLogin(webauthn.WithUserVerification(uv))
	if err != nil {
		return out, fmt.Errorf("beginning a passkey sign-in: %w", err)
	}
	secret, hash := auth.NewSecret("phk")
	if err := s.putCeremony(c, hash, kind, "", "", session); err != nil {
		return out, err
	}
	http.SetCookie(c.w, &http.Cookie{Name: apitype.PasskeyCookie, Value: secret, Path: "/", MaxAge: int(ceremonyTTL.Seconds()),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return requestOptions(&assertion.Response), nil
}

// passkeyLogin is POST /api/v1/console/passkey-login: a sign-in with a
// passkey alone. A failure counts against its source's limit of failed
// logins (LoginFailuresPerAddress), never against the account's: knowing
// whose passkey it is lets no one keep its owner out.
func (s *Server) passkeyLogin(c *call, req *apitype.PasskeyLoginRequest) (apitype.ConsoleLoginResponse, error) {
	var out apitype.ConsoleLoginResponse
	if _, err := s.relyingParty(); err != nil {
		return out, err
	}
	if err := checkLoginOrigin(c); err != nil {
		return out, err
	}
	parsed, err := parseAssertion(&req.Passkey)
	if err != nil {
		return out, err
	}
	now := s.now().UTC()
	forgive, err := attempt(now, limit{s.loginByAddress, sourceKey(clientAddr(c.r)), "too many failed logins from your address"})
	if err != nil {
		s.loginRefused(c, "", methodPasskey, reasonRateLimited)
		return out, err
	}
	refuse := func(email, reason, why string) error { return s.loginRefusedWhy(c, email, methodPasskey, reason, why) }
	user, err := s.checkPasskeySignIn(c, parsed, store.CeremonyLogin, nil, now, refuse)
	if err != nil {
		if _, ours := errors.AsType[*httpError](err); !ours {
			forgive() // our failure, not the caller's
		}
		return out, err
	}
	forgive()
	return s.startConsoleSession(c, user, methodPasskey, "console session (passkey) from ")
}

// checkPasskeySignIn checks a sign-in's passkey against the ceremony of
// kind this browser began, and records its use: it returns the passkey's
// user, who must be want when that is not nil (the second factor of
// want's password). refuse answers and records a refusal.
func (s *Server) checkPasskeySignIn(c *call, parsed *protocol.ParsedCredentialAssertionData, kind string, want *store.User,
	now time.Time, refuse func(email, reason, why string) error) (*store.User, error) {
	rp, err := s.relyingParty()
	if err != nil {
		return nil, err
	}
	email := ""
	if want != nil {
		email = want.Email
	}
	session, err := s.takeSignInCeremony(c, kind)
	if errors.Is(err, errNoCeremony) {
		if k, err := s.store.PasskeyByCredentialID(c.ctx, parsed.RawID); email == "" && err == nil {
			if u, err := s.store.GetUser(c.ctx, k.UserID); err == nil {
				email = u.Email // for the audit log: whose passkey was replayed
			}
		}
		return nil, refuse(email, reasonNoCeremony, "")
	} else if err != nil {
		return nil, err
	}
	k, err := s.store.PasskeyByCredentialID(c.ctx, parsed.RawID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, refuse(email, reasonUnknownPasskey, "")
	} else if err != nil {
		return nil, fmt.Errorf("looking up the passkey: %w", err)
	}
	user, err := s.store.GetUser(c.ctx, k.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, refuse(email, reasonUnknownPasskey, "") // deleted, with their passkeys, meanwhile
	} else if err != nil {
		return nil, fmt.Errorf("looking up the passkey's user: %w", err)
	}
	if want != nil && user.ID != want.ID {
		return nil, refuse(email, reasonOtherUserPasskey, "")
	}
	email = user.Email
	pu, err := s.passkeyUserOf(c, user)
	if err != nil {
		return nil, err
	}
	// The library checks the user handle the authenticator gave against
	// this user's ID, the credential against theirs, and the rest.
	_, cred, err := rp.ValidatePasskeyLogin(func(_, _ []byte) (webauthn.User, error) { return pu, nil }, *session, parsed)
	if err != nil {
		return nil, refuse(email, reasonPasskeyInvalid, protocolWords(err))
	}
	if user.SSOSubject != "" {
		refuse(email, reasonSSOUser, "")
		return nil, unauthenticated("%s signs in with single sign-on: use Sign in with SSO (a passkey of theirs serves to re-authenticate only)", user.Email)
	}
	if err := s.usePasskey(c, pu, cred, now); err != nil {
		if reason, ok := refusalReason(err); ok {
			return nil, refuse(email, reason, "")
		}
		return nil, err
	}
	c.passkeyID = k.ID // the login this call makes is this passkey's
	return user, nil
}

// errPasskeyRefused is a use of a passkey refused for reason.
type errPasskeyRefused struct{ reason string }

func (e *errPasskeyRefused) Error() string { return "passkey refused: " + e.reason }

func refusalReason(err error) (string, bool) {
	if e, ok := errors.AsType[*errPasskeyRefused](err); ok {
		return e.reason, true
	}
	return "", false
}

// usePasskey records a verified use of one of pu's passkeys (the
// library's updated record of it): a signature counter that did not move
// forward is a clone's, and of two uses at once one wins.
func (s *Server) usePasskey(c *call, pu *passkeyUser, cred *webauthn.Credential, now time.Time) error {
	if cred.Authenticator.CloneWarning {
		return &errPasskeyRefused{reasonPasskeyCloned}
	}
	k := pu.key(cred.ID)
	if k == nil {
		return &errPasskeyRefused{reasonUnknownPasskey}
	}
	used := *k
	used.SignCount, used.BackupState, used.LastUsedAt = cred.Authenticator.SignCount, cred.Flags.BackupState, now
	won, err := s.store.UsePasskey(c.ctx, &used, k.SignCount)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &errPasskeyRefused{reasonUnknownPasskey}
	case err != nil:
		return fmt.Errorf("recording the passkey's use: %w", err)
	case !won:
		return &errPasskeyRefused{reasonPasskeyRaced}
	}
	return nil
}

// reauthPasskeyOptions is POST /api/v1/reauth/passkey-options.
func (s *Server) reauthPasskeyOptions(c *call, _ *none) (apitype.PasskeyRequestOptions, error) {
	var out apitype.PasskeyRequestOptions
	rp, err := s.relyingParty()
	if err != nil {
		return out, err
	}
	pu, err := s.passkeyUserOf(c, c.user)
	if err != nil {
		return out, err
	}
	if len(pu.keys) == 0 {
		return out, notFound("you have no passkey to re-authenticate with: add one under Your passkeys in the console, or send your authenticator code")
	}
	assertion, session, err := rp.BeginLogin(pu, webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return out, fmt.Errorf("beginning a passkey re-authentication: %w", err)
	}
	if err := s.putCeremony(c, loginCeremony(c.token, store.CeremonyReauth), store.CeremonyReauth, c.user.ID, c.token.ID, session); err != nil {
		return out, err
	}
	return requestOptions(&assertion.Response), nil
}

// reauthPasskey is POST /api/v1/reauth with a passkey: its failures count
// against the account's limit from the caller's source, as a wrong code's
// do, but not against the account-wide limit of wrong codes (a signature
// is not guessed).
func (s *Server) reauthPasskey(c *call, a *apitype.PasskeyAssertion) (apitype.ReauthResponse, error) {
	rp, err := s.relyingParty()
	if err != nil {
		return apitype.ReauthResponse{}, err
	}
	parsed, err := parseAssertion(a)
	if err != nil {
		return apitype.ReauthResponse{}, err
	}
	now := s.now().UTC()
	forgive, err := attempt(now, limit{s.loginByAccount, c.user.Email + " " + sourceKey(clientAddr(c.r)), "too many failed logins for this account from your address"})
	if err != nil {
		s.logger.Info("reauth refused", "request_id", requestID(c.ctx), "email", c.user.Email, "reason", reasonRateLimited)
		return apitype.ReauthResponse{}, err
	}
	refuse := func(reason, why string) error {
		s.reauthRefused(c, methodPasskey, reason, why)
		words := map[string]string{
			reasonNoCeremony:     "no passkey re-authentication waits for this login (it lasts " + fleetpolicy.Duration(ceremonyTTL) + " and is used once); start again",
			reasonUnknownPasskey: "this passkey is not one of yours (or was removed)",
			reasonPasskeyCloned:  "this passkey's signature counter went back: a copy of it may be in use; it was refused",
			reasonPasskeyRaced:   "this passkey was used at the same moment elsewhere; try again",
		}[reason]
		if words == "" {
			words = "its signature did not verify: " + why
		}
		return errorf(http.StatusForbidden, apitype.CodePasskeyRefused, "the passkey did not re-authenticate this login: %s", words)
	}
	err = func() error {
		session, err := s.takeCeremony(c, loginCeremony(c.token, store.CeremonyReauth), store.CeremonyReauth)
		if errors.Is(err, errNoCeremony) {
			return refuse(reasonNoCeremony, "")
		} else if err != nil {
			return err
		}
		pu, err := s.passkeyUserOf(c, c.user)
		if err != nil {
			return err
		}
		if pu.key(parsed.RawID) == nil {
			return refuse(reasonUnknownPasskey, "")
		}
		cred, err := rp.ValidateLogin(pu, *session, parsed)
		if err != nil {
			return refuse(reasonPasskeyInvalid, protocolWords(err))
		}
		if err := s.usePasskey(c, pu, cred, now); err != nil {
			if reason, ok := refusalReason(err); ok {
				return refuse(reason, "")
			}
			return err
		}
		return nil
	}()
	if err != nil {
		if _, ours := errors.AsType[*httpError](err); !ours {
			forgive() // our failure, not the caller's
		}
		return apitype.ReauthResponse{}, err
	}
	forgive()
	return s.proveFactor(c, now, methodPasskey)
}
