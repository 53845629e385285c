// Package sso signs engineers in with their organization's OpenID Connect
// provider: portholed is a relying party (authorization code with PKCE,
// state and nonce), maps the provider's group claim to fleet roles, keeps
// the provider's refresh tokens sealed, and refreshes them to learn
// whether the provider still knows a user.
//
// Flow of a browser login (the API serves the routes; this package makes
// and checks each step):
//
//	browser → GET /api/v1/sso/login          Begin: state, nonce, PKCE verifier,
//	                                          sealed in a cookie; redirect to AuthURL
//	browser → provider                        the engineer signs in
//	provider → GET /api/v1/sso/callback?code&state
//	                                          Exchange: state = cookie's, code + verifier
//	                                          → tokens; ID token's signature, issuer,
//	                                          audience, expiry and nonce checked
//	                                          Map: groups → fleet roles, or refused
//
// `porthole login --sso` runs the same flow in a browser started from
// portholed's verification page (RFC 8628, served by the API).
package sso

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/porthole/porthole/store"
)

// Config is portholed.yaml's sso section. Its zero value turns single
// sign-on off.
type Config struct {
	// Issuer is the provider's issuer URL, where
	// /.well-known/openid-configuration is found. https://, or http://
	// on a loopback address only (tests, a provider on the same host).
	Issuer string `yaml:"issuer"`
	// ClientID and ClientSecret are this server's registration at the
	// provider (a confidential client whose redirect URI is
	// <public_url>/api/v1/sso/callback). ClientSecretFile is a file
	// holding the secret instead (one line). The secret also keys the
	// sealing of the provider's refresh tokens in the database: changing
	// it ends every SSO login at its next refresh.
	ClientID         string `yaml:"client_id"`
	ClientSecret     string `yaml:"client_secret"`
	ClientSecretFile string `yaml:"client_secret_file"`
	// GroupsClaim is the ID token's claim listing the user's groups.
	// Empty: "groups".
	GroupsClaim string `yaml:"groups_claim"`
	// Roles gives the members of a group a role in a fleet. A user's
	// roles are exactly those their groups map to, at each login and
	// each refresh; a user whose groups map to nothing is refused.
	Roles []RoleMapping `yaml:"roles,omitempty"`
	// AdminsGroup makes its members server administrators. Empty: no
	// administrator signs in with SSO (local accounts remain).
	AdminsGroup string `yaml:"admins_group"`
	// Scopes are asked for besides openid, email, profile and
	// offline_access (which asks for the refresh token). Empty: none.
	Scopes []string `yaml:"scopes,omitempty"`
	// RefreshEvery is how often at most a login's refresh token is used
	// to ask the provider whether the user is still known, and their
	// groups: at the provider's access token expiry, and at least this
	// often. Zero: 5 minutes.
	RefreshEvery time.Duration `yaml:"refresh_every"`
}

// RoleMapping gives the members of Group the role Role in fleet Fleet.
type RoleMapping struct {
	Group string     `yaml:"group"`
	Fleet string     `yaml:"fleet"`
	Role  store.Role `yaml:"role"`
}

// DefaultRefreshEvery is Config.RefreshEvery's default.
const DefaultRefreshEvery = 5 * time.Minute

// Enabled reports whether c turns single sign-on on.
func (c *Config) Enabled() bool {
	return c.Issuer != "" || c.ClientID != "" || c.ClientSecret != "" || c.ClientSecretFile != "" || len(c.Roles) > 0 || c.AdminsGroup != ""
}

// Validate fills c's defaults and checks it, naming the key at fault. A
// zero Config is valid (SSO off). ClientSecretFile is read later, by
// the caller.
func (c *Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	u, err := url.Parse(c.Issuer)
	switch {
	case c.Issuer == "":
		return errors.New("sso.issuer is required: the provider's issuer URL, like https://login.example.com/realms/support")
	case err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("sso.issuer %q must be the provider's issuer URL, like https://login.example.com/realms/support", c.Issuer)
	case u.Scheme == "http" && !loopback(u.Hostname()):
		return fmt.Errorf("sso.issuer %q must be https:// (http:// only for a provider on a loopback address)", c.Issuer)
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("sso.issuer %q must be an https:// URL", c.Issuer)
	}
	if c.ClientID == "" {
		return errors.New("sso.client_id is required: this server's client ID at the provider")
	}
	switch {
	case c.ClientSecret != "" && c.ClientSecretFile != "":
		return errors.New("sso.client_secret and sso.client_secret_file cannot both be set: keep one")
	case c.ClientSecret == "" && c.ClientSecretFile == "":
		return errors.New("sso.client_secret (or sso.client_secret_file) is required: portholed is a confidential client")
	}
	if c.GroupsClaim == "" {
		c.GroupsClaim = "groups"
	}
	if len(c.Roles) == 0 && c.AdminsGroup == "" {
		return errors.New("sso.roles is empty and sso.admins_group unset: nobody could sign in; map a group to a fleet role, like {group: support-eu, fleet: acme, role: operator}")
	}
	seen := map[[2]string]bool{}
	for i, m := range c.Roles {
		switch {
		case m.Group == "":
			return fmt.Errorf("sso.roles[%d]: group is required", i)
		case m.Fleet == "":
			return fmt.Errorf("sso.roles[%d] (group %q): fleet is required", i, m.Group)
		case !m.Role.Valid():
			return fmt.Errorf("sso.roles[%d] (group %q): role %q must be owner, operator or auditor", i, m.Group, m.Role)
		case seen[[2]string{m.Group, m.Fleet}]:
			return fmt.Errorf("sso.roles[%d]: group %q is mapped to fleet %q twice: keep one role", i, m.Group, m.Fleet)
		}
		seen[[2]string{m.Group, m.Fleet}] = true
	}
	if c.RefreshEvery == 0 {
		c.RefreshEvery = DefaultRefreshEvery
	}
	if c.RefreshEvery < 10*time.Second {
		return fmt.Errorf("sso.refresh_every %v is too short (at least 10s)", c.RefreshEvery)
	}
	return nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Errors callers branch on.
var (
	// ErrRefused: the provider refused a refresh token (invalid_grant):
	// the user was removed, their sessions revoked, or the token expired.
	ErrRefused = errors.New("sso: the provider refused the refresh token")
	// ErrNoRoles: the user's groups map to no fleet role.
	ErrNoRoles = errors.New("sso: none of the user's groups maps to a fleet role")
)

// Identity is what a login or refresh learned of the user.
type Identity struct {
	Subject string   // "<issuer> <sub>": stable, unlike the email
	Email   string   // lower case
	Groups  []string // the group claim's values
	// Expiry is the ID token's; Refresh is the refresh token, if any;
	// AccessExpiry is when the provider's access token expires.
	Expiry       time.Time
	Refresh      string
	AccessExpiry time.Time
}

// Provider is one configured OpenID provider. Create it with New; it
// discovers the provider on first use, so portholed starts while the
// provider is down.
type Provider struct {
	cfg         Config
	secret      string
	redirectURL string
	client      *http.Client
	aead        cipher.AEAD

	mu       sync.Mutex     // guards provider
	provider *oidc.Provider // nil until discovered
}

// New makes a provider of a validated cfg, with the client secret (read
// from ClientSecretFile by the caller when set), the redirect URL this
// server registered, and the HTTP client to reach the provider with (nil:
// http.DefaultClient).
func New(cfg Config, secret, redirectURL string, client *http.Client) (*Provider, error) {
	if secret == "" {
		return nil, errors.New("sso: the client secret is empty")
	}
	if client == nil {
		client = http.DefaultClient
	}
	key, err := hkdf.Key(sha256.New, []byte(secret), []byte(cfg.ClientID), "porthole sso seal v1", 32)
	if err != nil {
		return nil, fmt.Errorf("sso: deriving the sealing key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("sso: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("sso: %w", err)
	}
	return &Provider{cfg: cfg, secret: secret, redirectURL: redirectURL, client: client, aead: aead}, nil
}

// RefreshEvery is the longest time between two refreshes of a login.
func (p *Provider) RefreshEvery() time.Duration { return p.cfg.RefreshEvery }

// Issuer is the provider's issuer URL.
func (p *Provider) Issuer() string { return p.cfg.Issuer }

func (p *Provider) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(context.WithValue(ctx, oauth2.HTTPClient, p.client), p.client)
}

// discover returns the provider's metadata, fetched once.
func (p *Provider) discover(ctx context.Context) (*oidc.Provider, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.provider != nil {
		return p.provider, nil
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	prov, err := oidc.NewProvider(p.ctx(dctx), p.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("sso: reaching the provider %s: %w", p.cfg.Issuer, err)
	}
	p.provider = prov
	return prov, nil
}

func (p *Provider) oauth(prov *oidc.Provider) *oauth2.Config {
	scopes := append([]string{oidc.ScopeOpenID, "email", "profile", oidc.ScopeOfflineAccess}, p.cfg.Scopes...)
	ep := prov.Endpoint()
	// client_secret_basic, which every provider must take (OpenID Connect
	// Core 9): guessing would hide the first refusal behind the second's.
	ep.AuthStyle = oauth2.AuthStyleInHeader
	return &oauth2.Config{ClientID: p.cfg.ClientID, ClientSecret: p.secret, Endpoint: ep,
		RedirectURL: p.redirectURL, Scopes: scopes}
}

// Flow is one browser sign-in in progress: what Begin made and the
// callback must check. The API keeps it sealed in a cookie.
type Flow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`           // PKCE
	Grant    string `json:"g,omitempty"` // the device grant it approves, for `porthole login --sso`
	Expires  int64  `json:"e"`           // Unix seconds
}

// Begin starts a sign-in: a new flow, and the provider's URL to send the
// browser to.
func (p *Provider) Begin(ctx context.Context, grant string, now time.Time) (*Flow, string, error) {
	prov, err := p.discover(ctx)
	if err != nil {
		return nil, "", err
	}
	f := &Flow{State: rand.Text(), Nonce: rand.Text(), Verifier: oauth2.GenerateVerifier(), Grant: grant,
		Expires: now.Add(FlowTTL).Unix()}
	u := p.oauth(prov).AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier))
	return f, u, nil
}

// FlowTTL is how long a browser may take at the provider.
const FlowTTL = 10 * time.Minute

// Exchange finishes f with the code and state the provider sent back:
// it checks the state, redeems the code with f's PKCE verifier, and
// checks the ID token (signature, issuer, audience, expiry, nonce).
func (p *Provider) Exchange(ctx context.Context, f *Flow, state, code string, now time.Time) (*Identity, error) {
	if f == nil || state == "" || !equalStrings(state, f.State) {
		return nil, errors.New("sso: the sign-in's state does not match this browser's: start again from the sign-in page")
	}
	if now.Unix() > f.Expires {
		return nil, errors.New("sso: the sign-in took too long: start again")
	}
	prov, err := p.discover(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := p.oauth(prov).Exchange(p.ctx(ctx), code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return nil, fmt.Errorf("sso: redeeming the provider's code: %w", err)
	}
	id, err := p.identity(ctx, prov, tok, f.Nonce, "")
	if err != nil {
		return nil, err
	}
	return id, nil
}

// Refresh uses a refresh token: the provider's refusal is ErrRefused. The
// identity must still be subject's.
func (p *Provider) Refresh(ctx context.Context, refresh, subject string) (*Identity, error) {
	prov, err := p.discover(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := p.oauth(prov).TokenSource(p.ctx(ctx), &oauth2.Token{RefreshToken: refresh, Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && (re.ErrorCode == "invalid_grant" || re.ErrorCode == "unauthorized_client") {
			return nil, fmt.Errorf("%w (%s)", ErrRefused, re.ErrorCode)
		}
		return nil, fmt.Errorf("sso: refreshing at the provider: %w", err)
	}
	return p.identity(ctx, prov, tok, "", subject)
}

// identity checks tok's ID token and reads the user from it.
func (p *Provider) identity(ctx context.Context, prov *oidc.Provider, tok *oauth2.Token, nonce, subject string) (*Identity, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, errors.New("sso: the provider answered without an ID token")
	}
	idt, err := prov.Verifier(&oidc.Config{ClientID: p.cfg.ClientID}).Verify(p.ctx(ctx), raw)
	if err != nil {
		return nil, fmt.Errorf("sso: the provider's ID token is not valid: %w", err)
	}
	if subject == "" && !equalStrings(idt.Nonce, nonce) {
		return nil, errors.New("sso: the ID token's nonce is not this sign-in's")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, fmt.Errorf("sso: reading the ID token's claims: %w", err)
	}
	id := &Identity{Subject: p.cfg.Issuer + " " + idt.Subject, Expiry: idt.Expiry, Refresh: tok.RefreshToken, AccessExpiry: tok.Expiry}
	if subject != "" && id.Subject != subject {
		return nil, fmt.Errorf("%w: the refreshed ID token names another subject", ErrRefused)
	}
	email, _ := claims["email"].(string)
	if email == "" {
		return nil, errors.New("sso: the provider's ID token has no email claim; ask its administrator to release the email scope to this client")
	}
	if v, ok := claims["email_verified"].(bool); ok && !v {
		return nil, fmt.Errorf("sso: the provider has not verified the email %s", email)
	}
	id.Email = strings.ToLower(email)
	id.Groups = stringList(claims[p.cfg.GroupsClaim])
	return id, nil
}

// stringList reads a claim that is a list of strings or one string.
func stringList(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// Map gives the roles and administrator right that groups earn; where
// several groups map to one fleet, the most powerful role wins. A user
// earning neither is ErrNoRoles.
func (p *Provider) Map(groups []string) (map[string]store.Role, bool, error) {
	roles := map[string]store.Role{}
	for _, m := range p.cfg.Roles {
		if slices.Contains(groups, m.Group) && stronger(m.Role, roles[m.Fleet]) {
			roles[m.Fleet] = m.Role
		}
	}
	admin := p.cfg.AdminsGroup != "" && slices.Contains(groups, p.cfg.AdminsGroup)
	if len(roles) == 0 && !admin {
		return nil, false, ErrNoRoles
	}
	return roles, admin, nil
}

// GroupsClaim is the claim Map reads.
func (p *Provider) GroupsClaim() string { return p.cfg.GroupsClaim }

func stronger(a, b store.Role) bool {
	rank := map[store.Role]int{store.RoleAuditor: 1, store.RoleOperator: 2, store.RoleOwner: 3}
	return rank[a] > rank[b]
}

// Seal encrypts and authenticates plaintext for purpose (a refresh token
// for the database, a flow for a cookie) under a key derived from the
// client secret, which the database does not hold.
func (p *Provider) Seal(purpose string, plaintext []byte) string {
	nonce := make([]byte, p.aead.NonceSize())
	rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(p.aead.Seal(nonce, nonce, plaintext, []byte(purpose)))
}

// Open undoes Seal for the same purpose.
func (p *Provider) Open(purpose, sealed string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil || len(b) < p.aead.NonceSize() {
		return nil, errors.New("sso: not a sealed value")
	}
	n := p.aead.NonceSize()
	out, err := p.aead.Open(nil, b[:n], b[n:], []byte(purpose))
	if err != nil {
		return nil, errors.New("sso: the sealed value was altered, or sealed with another client secret")
	}
	return out, nil
}

func equalStrings(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
