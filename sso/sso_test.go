package sso

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/porthole/porthole/internal/testhydra"
	"github.com/porthole/porthole/store"
)

// rp is a relying party of a real hydra, whose redirect URI records what
// the provider sends back.
type rp struct {
	idp      *testhydra.Provider
	p        *Provider
	got      chan [2]string // code, state
	clientID string
}

func newRP(t *testing.T, idp *testhydra.Provider) *rp {
	t.Helper()
	r := &rp{idp: idp, got: make(chan [2]string, 1)}
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.got <- [2]string{req.URL.Query().Get("code"), req.URL.Query().Get("state")}
	}))
	t.Cleanup(cb.Close)
	id, secret := idp.Client(t, cb.URL+"/cb")
	r.clientID = id
	cfg := Config{Issuer: idp.Issuer, ClientID: id, ClientSecret: secret,
		Roles: []RoleMapping{{Group: "support", Fleet: "acme", Role: store.RoleOperator}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	p, err := New(cfg, secret, cb.URL+"/cb", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.p = p
	return r
}

// signIn runs a browser through the provider as name and returns the
// flow and the code and state that came back.
func (r *rp) signIn(t *testing.T, name string) (*Flow, string, string) {
	t.Helper()
	f, authURL, err := r.p.Begin(t.Context(), "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar}
	form, err := b.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, form.Body)
	form.Body.Close()
	r.idp.SignIn(t, b, form, name)
	got := <-r.got
	return f, got[0], got[1]
}

// rawToken redeems a code without checks, for the attacks below.
func (r *rp) rawToken(t *testing.T, f *Flow, code string) *oauth2.Token {
	t.Helper()
	prov, err := r.p.discover(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := r.p.oauth(prov).Exchange(r.p.ctx(t.Context()), code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestExchange: a good sign-in gives the identity; each forged or
// misdirected one is refused.
func TestExchange(t *testing.T) {
	idp := testhydra.Start(t)
	idp.SetUser("ann", testhydra.User{Email: "Ann@Example.com", Groups: []string{"support", "other"}})
	r := newRP(t, idp)

	f, code, state := r.signIn(t, "ann")
	id, err := r.p.Exchange(t.Context(), f, state, code, time.Now())
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if id.Subject != idp.Issuer+" ann" || id.Email != "ann@example.com" || strings.Join(id.Groups, ",") != "support,other" || id.Refresh == "" {
		t.Errorf("identity = %+v", id)
	}
	got, err := r.p.Refresh(t.Context(), id.Refresh, id.Subject)
	if err != nil || got.Email != id.Email || got.Refresh == "" {
		t.Fatalf("Refresh = %+v, %v", got, err)
	}
	if _, err := r.p.Refresh(t.Context(), id.Refresh, id.Subject); err == nil {
		t.Errorf("a rotated refresh token was accepted again")
	}
	// A code redeemed twice is refused, and the provider revokes what it
	// gave for it.
	if _, err := r.p.Exchange(t.Context(), f, state, code, time.Now()); err == nil {
		t.Errorf("a code redeemed twice was accepted")
	}
	if _, err := r.p.Refresh(t.Context(), got.Refresh, id.Subject); !errors.Is(err, ErrRefused) {
		t.Errorf("Refresh after the code's replay = %v; want ErrRefused", err)
	}

	t.Run("state", func(t *testing.T) {
		f, code, _ := r.signIn(t, "ann")
		if _, err := r.p.Exchange(t.Context(), f, "forged", code, time.Now()); err == nil || !strings.Contains(err.Error(), "state") {
			t.Errorf("Exchange with another state = %v; want refused", err)
		}
		if _, err := r.p.Exchange(t.Context(), nil, f.State, code, time.Now()); err == nil {
			t.Errorf("Exchange without a flow (no cookie) was accepted")
		}
	})
	t.Run("expired flow", func(t *testing.T) {
		f, code, state := r.signIn(t, "ann")
		if _, err := r.p.Exchange(t.Context(), f, state, code, time.Now().Add(FlowTTL+time.Minute)); err == nil {
			t.Errorf("Exchange of a stale flow was accepted")
		}
	})
	t.Run("code for another verifier", func(t *testing.T) {
		f, code, state := r.signIn(t, "ann")
		other := *f
		other.Verifier = oauth2.GenerateVerifier()
		if _, err := r.p.Exchange(t.Context(), &other, state, code, time.Now()); err == nil {
			t.Errorf("a code redeemed with another PKCE verifier was accepted")
		}
	})
	t.Run("nonce", func(t *testing.T) {
		f, code, _ := r.signIn(t, "ann")
		tok := r.rawToken(t, f, code)
		prov, _ := r.p.discover(t.Context())
		if _, err := r.p.identity(t.Context(), prov, tok, "another-sign-ins-nonce", ""); err == nil || !strings.Contains(err.Error(), "nonce") {
			t.Errorf("an ID token of another sign-in's nonce = %v; want refused", err)
		}
	})
	t.Run("audience", func(t *testing.T) {
		// A real ID token, for another client of the same provider.
		other := newRP(t, idp)
		f, code, _ := other.signIn(t, "ann")
		tok := other.rawToken(t, f, code)
		prov, _ := r.p.discover(t.Context())
		if _, err := r.p.identity(t.Context(), prov, tok, f.Nonce, ""); err == nil || !strings.Contains(err.Error(), "audience") {
			t.Errorf("an ID token for client %s = %v; want refused for its audience", other.clientID, err)
		}
	})
	t.Run("forged", func(t *testing.T) {
		f, code, _ := r.signIn(t, "ann")
		tok := r.rawToken(t, f, code)
		raw := tok.Extra("id_token").(string)
		parts := strings.Split(raw, ".")
		var claims map[string]any
		b, _ := base64.RawURLEncoding.DecodeString(parts[1])
		json.Unmarshal(b, &claims)
		claims["groups"] = []string{"support", "admins"}
		claims["sub"] = "mallory"
		payload, _ := json.Marshal(claims)
		var header map[string]any
		hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
		json.Unmarshal(hb, &header)

		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
			(&jose.SignerOptions{}).WithHeader("kid", header["kid"]))
		ours, _ := signer.Sign(payload)
		ourRaw, _ := ours.CompactSerialize()
		unsigned := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
		for name, forged := range map[string]string{
			"claims altered under the provider's signature": parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2],
			"signed by another key with the provider's kid": ourRaw,
			"unsigned (alg none)":                           unsigned,
		} {
			prov, _ := r.p.discover(t.Context())
			if _, err := r.p.identity(t.Context(), prov, tok.WithExtra(map[string]any{"id_token": forged}), f.Nonce, ""); err == nil {
				t.Errorf("%s: accepted", name)
			}
		}
	})
	t.Run("removed", func(t *testing.T) {
		idp.SetUser("bob", testhydra.User{Email: "bob@example.com", Groups: []string{"support"}})
		f, code, state := r.signIn(t, "bob")
		id, err := r.p.Exchange(t.Context(), f, state, code, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		idp.Remove(t, "bob")
		if _, err := r.p.Refresh(t.Context(), id.Refresh, id.Subject); !errors.Is(err, ErrRefused) {
			t.Errorf("Refresh of a removed user = %v; want ErrRefused", err)
		}
	})
}

// TestMap: groups give the strongest role mapped per fleet, or nothing.
func TestMap(t *testing.T) {
	p := &Provider{cfg: Config{AdminsGroup: "admins", Roles: []RoleMapping{
		{Group: "eu", Fleet: "acme", Role: store.RoleOperator},
		{Group: "leads", Fleet: "acme", Role: store.RoleOwner},
		{Group: "audit", Fleet: "beta", Role: store.RoleAuditor},
	}}}
	for _, tt := range []struct {
		groups []string
		roles  map[string]store.Role
		admin  bool
		err    error
	}{
		{[]string{"eu"}, map[string]store.Role{"acme": store.RoleOperator}, false, nil},
		{[]string{"eu", "leads", "audit"}, map[string]store.Role{"acme": store.RoleOwner, "beta": store.RoleAuditor}, false, nil},
		{[]string{"admins"}, map[string]store.Role{}, true, nil},
		{[]string{"EU", "sales"}, nil, false, ErrNoRoles},
		{nil, nil, false, ErrNoRoles},
	} {
		roles, admin, err := p.Map(tt.groups)
		if !errors.Is(err, tt.err) || admin != tt.admin || len(roles) != len(tt.roles) {
			t.Errorf("Map(%v) = %v, %v, %v; want %v, %v, %v", tt.groups, roles, admin, err, tt.roles, tt.admin, tt.err)
			continue
		}
		for f, r := range tt.roles {
			if roles[f] != r {
				t.Errorf("Map(%v)[%s] = %s; want %s", tt.groups, f, roles[f], r)
			}
		}
	}
}

// TestValidate: each mistake is named.
func TestValidate(t *testing.T) {
	good := func() Config {
		return Config{Issuer: "https://login.example.com", ClientID: "porthole", ClientSecret: "s",
			Roles: []RoleMapping{{Group: "g", Fleet: "acme", Role: store.RoleOperator}}}
	}
	var zero Config
	if err := zero.Validate(); err != nil || zero.Enabled() {
		t.Errorf("the zero config: %v, enabled %v; want off", err, zero.Enabled())
	}
	for _, tt := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no issuer", func(c *Config) { c.Issuer = "" }, "sso.issuer is required"},
		{"http issuer", func(c *Config) { c.Issuer = "http://login.example.com" }, "must be https://"},
		{"loopback http issuer", func(c *Config) { c.Issuer = "http://127.0.0.1:4444" }, ""},
		{"no client", func(c *Config) { c.ClientID = "" }, "sso.client_id is required"},
		{"no secret", func(c *Config) { c.ClientSecret = "" }, "sso.client_secret (or sso.client_secret_file) is required"},
		{"two secrets", func(c *Config) { c.ClientSecretFile = "/x" }, "cannot both be set"},
		{"no mapping", func(c *Config) { c.Roles = nil }, "nobody could sign in"},
		{"admins only", func(c *Config) { c.Roles, c.AdminsGroup = nil, "admins" }, ""},
		{"bad role", func(c *Config) { c.Roles[0].Role = "root" }, `role "root" must be owner, operator or auditor`},
		{"no fleet", func(c *Config) { c.Roles[0].Fleet = "" }, "fleet is required"},
		{"twice", func(c *Config) { c.Roles = append(c.Roles, c.Roles[0]) }, "twice"},
		{"short refresh", func(c *Config) { c.RefreshEvery = time.Second }, "too short"},
	} {
		c := good()
		tt.edit(&c)
		err := c.Validate()
		if (tt.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate = %v; want %q", tt.name, err, tt.want)
		}
	}
}

// TestSeal: a sealed value opens only for its purpose and key.
func TestSeal(t *testing.T) {
	cfg := Config{ClientID: "c"}
	a, _ := New(cfg, "secret-a", "", nil)
	b, _ := New(cfg, "secret-b", "", nil)
	sealed := a.Seal("refresh", []byte("ory_rt_x"))
	if strings.Contains(sealed, "ory_rt_x") {
		t.Fatal("sealed value shows its plaintext")
	}
	if got, err := a.Open("refresh", sealed); err != nil || string(got) != "ory_rt_x" {
		t.Errorf("Open = %q, %v", got, err)
	}
	if _, err := a.Open("flow", sealed); err == nil {
		t.Errorf("opened for another purpose")
	}
	if _, err := b.Open("refresh", sealed); err == nil {
		t.Errorf("opened with another client secret")
	}
	if _, err := a.Open("refresh", sealed[:len(sealed)-2]+"AA"); err == nil {
		t.Errorf("opened an altered value")
	}
}
