package api

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/auth"
	"github.com/porthole/porthole/store"
)

// passkeyServer is a server of its own whose relying party is the
// fixture's public URL, a new user logged in with password and TOTP in a
// browser (so their login's second factor is fresh), and an
// authenticator.
func passkeyServer(t *testing.T) (*testServer, *store.User, *webClient, *authenticator) {
	t.Helper()
	ts := newServer(t, Config{PublicURL: testPublicURL})
	u := newUser(t, false)
	b := newWebClient(t, ts)
	b.login(t, u)
	return ts, u, b, newAuthenticator()
}

// registerOptions begins adding a passkey in b.
func (b *webClient) registerOptions(t *testing.T) apitype.PasskeyCreationOptions {
	t.Helper()
	return decodeAs[apitype.PasskeyCreationOptions](t, b.do(t, "POST", "/api/v1/passkeys/register-options", nil), http.StatusOK)
}

// register adds a new passkey of a, named name, for b's user.
func (b *webClient) register(t *testing.T, a *authenticator, name string) (*softKey, apitype.Passkey) {
	t.Helper()
	cred, k := a.create(t, b.registerOptions(t))
	pk := decodeAs[apitype.Passkey](t, b.do(t, "POST", "/api/v1/passkeys", apitype.RegisterPasskeyRequest{Name: name, Credential: cred}), http.StatusCreated)
	return k, pk
}

// signInOptions begins a passkey sign-in in b (second: after the
// password).
func (b *webClient) signInOptions(t *testing.T, second bool) apitype.PasskeyRequestOptions {
	t.Helper()
	return decodeAs[apitype.PasskeyRequestOptions](t, b.do(t, "POST", "/api/v1/console/passkey-options",
		apitype.PasskeySignInRequest{SecondFactor: second}), http.StatusOK)
}

func (b *webClient) passkeyLogin(t *testing.T, p apitype.PasskeyAssertion) response {
	t.Helper()
	return b.do(t, "POST", "/api/v1/console/passkey-login", apitype.PasskeyLoginRequest{Passkey: p})
}

// signIn signs in with k alone in a new browser, which it returns.
func signIn(t *testing.T, ts *testServer, a *authenticator, k *softKey) *webClient {
	t.Helper()
	b := newWebClient(t, ts)
	decodeAs[apitype.ConsoleLoginResponse](t, b.passkeyLogin(t, a.get(t, b.signInOptions(t, false), k)), http.StatusOK)
	return b
}

// refusedSignIn tries a sign-in with p in b: it must be refused (401),
// audited as login_failed with reason for email (who is "passkey" when
// unknown), and set no session.
func refusedSignIn(t *testing.T, b *webClient, p apitype.PasskeyAssertion, email, reason string) {
	t.Helper()
	r := b.passkeyLogin(t, p)
	r.wantError(t, http.StatusUnauthorized, apitype.CodeUnauthenticated)
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == apitype.ConsoleSessionCookie {
			t.Errorf("a refused sign-in set a session")
		}
	}
	wantLastFailure(t, email, reason)
}

// wantLastFailure checks that the last login_failed event of email has
// reason.
func wantLastFailure(t *testing.T, email, reason string) {
	t.Helper()
	evs := nameEvents(t, email, audit.LoginFailed)
	if len(evs) == 0 || evs[len(evs)-1].Detail["reason"] != reason {
		t.Fatalf("login_failed events of %s: %+v; want the last with reason %s", email, evs, reason)
	}
}

// nameEvents is the audit log of the actor named name, of the given kind.
func nameEvents(t *testing.T, name string, kind audit.Kind) []audit.Event {
	t.Helper()
	return userEvents(t, &store.User{Email: name}, kind)
}

// storedKey is the stored passkey of k.
func storedKey(t *testing.T, k *softKey) *store.Passkey {
	t.Helper()
	p, err := fx.store.PasskeyByCredentialID(context.Background(), k.id)
	must(t, err)
	return p
}

// TestPasskeys: a user adds a passkey in a fresh login (listed, audited),
// logs out, signs in with it alone (the console's session cookie, as a
// password login sets it; its use recorded), and uses it in place of the
// TOTP code after the password; each login records its method.
func TestPasskeys(t *testing.T) {
	t.Parallel()
	ts, u, b, a := passkeyServer(t)
	o := b.registerOptions(t)
	if o.RPID != "porthole.example.com" || o.ResidentKey != "required" || o.UserVerification != "required" || o.Attestation != "none" ||
		string(unb64u(t, o.UserID)) != u.ID || o.UserName != u.Email || len(o.ExcludeCredentials) != 0 || o.Algorithms[0] != -7 {
		t.Errorf("registration options %+v", o)
	}
	a.format = "packed" // self attestation, checked by the new key itself
	cred, k := a.create(t, o)
	pk := decodeAs[apitype.Passkey](t, b.do(t, "POST", "/api/v1/passkeys", apitype.RegisterPasskeyRequest{Name: " laptop ", Credential: cred}), http.StatusCreated)
	if pk.Name != "laptop" || !pk.LastUsedAt.IsZero() || pk.Transports[0] != "internal" {
		t.Errorf("registered %+v", pk)
	}
	list := decodeAs[[]apitype.Passkey](t, b.do(t, "GET", "/api/v1/passkeys", nil), http.StatusOK)
	if len(list) != 1 || list[0].ID != pk.ID {
		t.Errorf("passkeys %+v; want %s", list, pk.ID)
	}
	if evs := userEvents(t, u, audit.PasskeyRegistered); len(evs) != 1 || evs[0].Detail["name"] != "laptop" || evs[0].Detail["credential"] != credentialTag(k.id) {
		t.Errorf("passkey_registered: %+v", evs)
	}
	// Registered passkeys are excluded from the next registration.
	if o := b.registerOptions(t); len(o.ExcludeCredentials) != 1 || o.ExcludeCredentials[0].ID != b64u(k.id) {
		t.Errorf("exclude_credentials %+v", o.ExcludeCredentials)
	}
	b.do(t, "POST", "/api/v1/logout", nil)

	// Alone: user verification asked, no credential named.
	o2 := b.signInOptions(t, false)
	if o2.UserVerification != "required" || len(o2.AllowCredentials) != 0 || o2.RPID != "porthole.example.com" {
		t.Errorf("sign-in options %+v", o2)
	}
	if b.cookie(t, apitype.PasskeyCookie) == "" {
		t.Fatal("no sign-in cookie")
	}
	r := decodeAs[apitype.ConsoleLoginResponse](t, b.passkeyLogin(t, a.get(t, o2, k)), http.StatusOK)
	if r.User.ID != u.ID || b.cookie(t, apitype.PasskeyCookie) != "" {
		t.Errorf("sign-in answer %+v; the sign-in cookie %q is left", r, b.cookie(t, apitype.PasskeyCookie))
	}
	if me := decodeAs[apitype.User](t, b.do(t, "GET", "/api/v1/me", nil), http.StatusOK); me.ID != u.ID {
		t.Errorf("me %+v", me)
	}
	if got := storedKey(t, k); got.SignCount != 1 || !got.LastUsedAt.Equal(ts.clock.Now()) {
		t.Errorf("after the sign-in: sign count %d, last used %v", got.SignCount, got.LastUsedAt)
	}
	logins := userEvents(t, u, audit.LoginSucceeded)
	if m := logins[len(logins)-1].Detail["method"]; m != methodPasskey {
		t.Errorf("login method %q; want passkey", m)
	}

	// After the password, in place of the code.
	b2 := newWebClient(t, ts)
	o3 := b2.signInOptions(t, true)
	if o3.UserVerification != "preferred" {
		t.Errorf("second factor options %+v", o3)
	}
	decodeAs[apitype.ConsoleLoginResponse](t, b2.do(t, "POST", "/api/v1/console/login",
		apitype.ConsoleLoginRequest{Email: u.Email, Password: testPassword, Passkey: ptr(a.get(t, o3, k))}), http.StatusOK)
	logins = userEvents(t, u, audit.LoginSucceeded)
	if m := logins[len(logins)-1].Detail["method"]; m != methodPasswordPasskey {
		t.Errorf("login method %q; want password+passkey", m)
	}
	// Both factors at once, or none, is a 400.
	b2.do(t, "POST", "/api/v1/console/login", apitype.ConsoleLoginRequest{Email: u.Email, Password: testPassword, TOTP: "123456",
		Passkey: ptr(a.get(t, o3, k))}).wantError(t, http.StatusBadRequest, apitype.CodeBadRequest)
	b2.do(t, "POST", "/api/v1/console/login", apitype.ConsoleLoginRequest{Email: u.Email, Password: testPassword}).
		wantError(t, http.StatusBadRequest, apitype.CodeBadRequest)
}

func ptr[T any](v T) *T { return &v }

// TestPasskeyReauth: under a fleet's reauth rule, a passkey is the
// login's fresh second factor: the session refused after the window opens
// once the passkey answered POST /api/v1/reauth, audited with its method.
// The options name only the caller's passkeys; another user's, or a
// signature over an old challenge, re-authenticates nothing.
func TestPasskeyReauth(t *testing.T) {
	t.Parallel()
	ts, fl, d, u, _ := reauthServer(t)
	setPolicy(t, fl, apitype.SetFleetPolicyRequest{ReauthS: 15 * 60})
	b, a := newWebClient(t, ts), newAuthenticator()
	b.login(t, u)
	k, _ := b.register(t, a, "laptop")
	open := func() response {
		return b.do(t, "POST", "/api/v1/devices/"+d.ID+"/sessions", apitype.CreateSessionRequest{PublicKey: engineerPublicKey})
	}
	ts.clock.Advance(16 * time.Minute)
	open().wantError(t, http.StatusForbidden, apitype.CodeReauthRequired)

	// Another user's passkey does not re-authenticate this login.
	bob := newUser(t, false)
	bb := newWebClient(t, ts)
	bb.login(t, bob)
	kb, _ := bb.register(t, a, "bob's")
	o := decodeAs[apitype.PasskeyRequestOptions](t, b.do(t, "POST", "/api/v1/reauth/passkey-options", nil), http.StatusOK)
	if len(o.AllowCredentials) != 1 || o.AllowCredentials[0].ID != b64u(k.id) || o.UserVerification != "preferred" {
		t.Errorf("reauth options %+v; want only %s", o, b64u(k.id))
	}
	b.do(t, "POST", "/api/v1/reauth", apitype.ReauthRequest{Passkey: ptr(a.get(t, o, kb))}).wantError(t, http.StatusForbidden, apitype.CodePasskeyRefused)
	open().wantError(t, http.StatusForbidden, apitype.CodeReauthRequired)
	// That ceremony is spent: the right passkey over its challenge is refused too.
	b.do(t, "POST", "/api/v1/reauth", apitype.ReauthRequest{Passkey: ptr(a.get(t, o, k))}).wantError(t, http.StatusForbidden, apitype.CodePasskeyRefused)

	o = decodeAs[apitype.PasskeyRequestOptions](t, b.do(t, "POST", "/api/v1/reauth/passkey-options", nil), http.StatusOK)
	r := decodeAs[apitype.ReauthResponse](t, b.do(t, "POST", "/api/v1/reauth", apitype.ReauthRequest{Passkey: ptr(a.get(t, o, k))}), http.StatusOK)
	if !r.FactorAt.Equal(ts.clock.Now()) {
		t.Errorf("factor_at %v; want %v", r.FactorAt, ts.clock.Now())
	}
	decodeAs[apitype.CreateSessionResponse](t, open(), http.StatusCreated)
	ok := userEvents(t, u, audit.ReauthSucceeded)
	failed := userEvents(t, u, audit.ReauthFailed)
	if len(ok) != 1 || ok[0].Detail["method"] != methodPasskey || len(failed) != 2 ||
		failed[0].Detail["reason"] != reasonUnknownPasskey || failed[1].Detail["reason"] != reasonNoCeremony {
		t.Errorf("reauth_succeeded %+v, reauth_failed %+v", ok, failed)
	}
	// A token's re-authentication binds to that login: bob's login
	// cannot take u's ceremony.
	o = decodeAs[apitype.PasskeyRequestOptions](t, b.do(t, "POST", "/api/v1/reauth/passkey-options", nil), http.StatusOK)
	bb.do(t, "POST", "/api/v1/reauth", apitype.ReauthRequest{Passkey: ptr(a.get(t, o, k))}).wantError(t, http.StatusForbidden, apitype.CodePasskeyRefused)
	ts.clock.Advance(16 * time.Minute)
	open().wantError(t, http.StatusForbidden, apitype.CodeReauthRequired)
}

// TestPasskeySignInRefusals tries what an attacker would against a sign-in
// with a passkey alone; each is refused, audited with its reason, and
// moves no signature counter; the owner's next sign-in works.
func TestPasskeySignInRefusals(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		reason string
		// attack makes the answer to send from browser b, with k being
		// the victim's passkey of authenticator a.
		attack func(t *testing.T, ts *testServer, b *webClient, a *authenticator, k *softKey) apitype.PasskeyAssertion
		// anonymous: the refusal names no account (the passkey is no one's).
		anonymous bool
	}{
		{"a replayed assertion", reasonNoCeremony, func(t *testing.T, ts *testServer, b *webClient, a *authenticator, k *softKey) apitype.PasskeyAssertion {
			p := a.get(t, b.signInOptions(t, false), k)
			decodeAs[apitype.ConsoleLoginResponse](t, b.passkeyLogin(t, p), http.StatusOK)
			return p // its ceremony is spent with it
		}, false},
		{"a replayed assertion with a new sign-in", reasonPasskeyInvalid, func(t *testing.T, ts *testServer, b *webClient, a *authenticator, k *softKey) apitype.PasskeyAssertion {
			p := a.get(t, b.signInOptions(t, false), k)
			decodeAs[apitype.ConsoleLoginResponse](t, b.passkeyLogin(t, p), http.StatusOK)
			b.signInOptions(t, false)
			return p // over the old challenge
		}, false},
		{"a challenge of another browser", reasonPasskeyInvalid, func(t *testing.T, ts *testServer, b *webClient, a *authenticator, k *softKey) apitype.PasskeyAssertion {
			theirs := newWebClient(t, ts).signInOptions(t, false)
			b.signInOptions(t, false)
			return a.get(t, theirs, k)
		}, false},
		{"a challenge replaced by a later sign-in", reasonPasskeyInvalid, func(t *testing.T, ts *testServer, b *webClient, a *authenticator, k *softKey) apitype.PasskeyAssertion {
			first := b.signInOptions(t, false)
			b.signInOptions(t, false)
			return a.get(t, first, k)
		}, false},
		{"an expired sign-in", reasonNoCeremony, func(t *testing.T, ts *testServer, b *webClient, a *authenticator, k *softKey) apitype.PasskeyAssertion {
			o := b.signInOptions(t, false)
			ts.clock.Advance(ceremonyTTL)
			return a.get(t, o, k)
		}, false},
		{"no sign-in cookie", reasonNoCeremony, func(t *testing.T, ts *testServer, b *webClient, a *authenticator, k *softKey) apitype.PasskeyAssertion {
			return a.get(t, newWebClient(t, ts).signInOptions(t, false), k)
		}, false},
		{"a second factor's sign-in (no user verification asked)", reasonNoCeremony, func(t *testing.T, ts *testServer, b *webClient, a *authenticator, k *softKey) apitype.PasskeyAssertion {
			return a.get(t, b.signInOptions(t, true), k)
		}, false},
		{"another origin", reasonPasskeyInvalid, func(t *testing.T, ts *testServer, b *webClient, a *authenticator, k *softKey) apitype.PasskeyAssertion {
			a.origin = "https://porthole.example.com.evil.example"
			return a.get(t, b.signInOptions(t, false), k)
		}, false},
		{"the origin on another port", reasonPasskeyInvalid, func(t *testing.T, ts *testServer, b *webClient, a *authenticator, k *softKey) apitype.PasskeyAssertion {
			a.origin = testPublicURL + ":8443"
			return a.get(t, b.signInOptions(t, false), k)
		}, false},
		{"the origin over http", reasonPasskeyInvalid, func(t *testing.T, ts *testServer, b *webClient, a *authenticator, k *softKey) apitype.PasskeyAssertion {
			a.origin = "http://porthole.example.com"
			return a.get(t, b.signInOptions(t, false), k)
		}, false},
		{"another RP ID's hash", reasonPasskeyInvalid, func(t *testing.T, ts *testServer, b *webClient, a *authenticator, k *softKey) apitype.PasskeyAssertion {
			a.rpID = "evil.example.com"
			return a.get(t, b.signInOptions(t, false), k)
		}, false},
		{"the parent domain's RP ID hash", reasonPasskeyInvalid, func(t *testing.T, ts *testServer, b *webClient, a *authenticator, k *softKey) apitype.PasskeyAssertion {
			a.rpID = "example.com"
			return a.get(t, b.signInOptions(t, false), k)
		}, false},
		{"no user verification", reasonPasskeyInvalid, func(t *testing.T, ts *testServer, b *webClient, a *authenticator, k *softKey) apitype.PasskeyAssertion {
			a.uv = false
			return a.get(t, b.signInOptions(t, false), k)
		}, false},
		{"a signature by another key", reasonPasskeyInvalid, func(t *testing.T, ts *testServer, b *webClient, a *authenticator, k *softKey) apitype.PasskeyAssertion {
			forged := *k
			forged.key = newKey(t)
			return a.get(t, b.signInOptions(t, false), &forged)
		}, false},
		{"a cloned authenticator (its counter behind)", reasonPasskeyCloned, func(t *testing.T, ts *testServer, b *webClient, a *authenticator, k *softKey) apitype.PasskeyAssertion {
			clone := *k
			signIn(t, ts, a, k)
			signIn(t, ts, a, k)
			return a.get(t, b.signInOptions(t, false), &clone)
		}, false},
		{"another user's user handle", reasonPasskeyInvalid, func(t *testing.T, ts *testServer, b *webClient, a *authenticator, k *softKey) apitype.PasskeyAssertion {
			claimed := *k
			claimed.userHandle = []byte(fx.users["admin"].ID)
			return a.get(t, b.signInOptions(t, false), &claimed)
		}, false},
		{"a passkey no one registered", reasonUnknownPasskey, func(t *testing.T, ts *testServer, b *webClient, a *authenticator, k *softKey) apitype.PasskeyAssertion {
			stranger := *k
			stranger.id = []byte("not a registered credential")
			return a.get(t, b.signInOptions(t, false), &stranger)
		}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts, u, owner, a := passkeyServer(t)
			k, _ := owner.register(t, a, "laptop")
			victim := *k
			b := newWebClient(t, ts)
			p := tt.attack(t, ts, b, a, k)
			before := storedKey(t, k)
			who := u.Email
			if tt.anonymous {
				who = "passkey"
			}
			refusedSignIn(t, b, p, who, tt.reason)
			if after := storedKey(t, k); after.SignCount != before.SignCount {
				t.Errorf("the refused sign-in moved the counter from %d to %d", before.SignCount, after.SignCount)
			}
			// The owner's authenticator, as it was, still signs in.
			victim.count = max(victim.count, storedKey(t, k).SignCount)
			*a = *newAuthenticator()
			signIn(t, ts, a, &victim)
		})
	}
}

// TestPasskeySecondFactorRefusals: after the right password, a passkey
// stands in for the code only if it is the account's own and proves
// right; every refusal answers as a wrong password does.
func TestPasskeySecondFactorRefusals(t *testing.T) {
	t.Parallel()
	ts, u, owner, a := passkeyServer(t)
	k, _ := owner.register(t, a, "laptop")
	bob := newUser(t, false)
	bb := newWebClient(t, ts)
	bb.login(t, bob)
	kb, _ := bb.register(t, a, "bob's")
	login := func(b *webClient, password string, p apitype.PasskeyAssertion) response {
		return b.do(t, "POST", "/api/v1/console/login", apitype.ConsoleLoginRequest{Email: u.Email, Password: password, Passkey: &p})
	}
	b := newWebClient(t, ts)
	for _, tt := range []struct {
		name, password, reason string
		passkey                func() apitype.PasskeyAssertion
	}{
		{"another user's passkey", testPassword, reasonOtherUserPasskey, func() apitype.PasskeyAssertion { return a.get(t, b.signInOptions(t, true), kb) }},
		{"a wrong password", "guess", reasonBadPassword, func() apitype.PasskeyAssertion { return a.get(t, b.signInOptions(t, true), k) }},
		{"a sign-in's ceremony", testPassword, reasonNoCeremony, func() apitype.PasskeyAssertion { return a.get(t, b.signInOptions(t, false), k) }},
		{"another RP ID", testPassword, reasonPasskeyInvalid, func() apitype.PasskeyAssertion {
			evil := newAuthenticator()
			evil.rpID = "evil.example.com"
			return evil.get(t, b.signInOptions(t, true), k)
		}},
	} {
		e := login(b, tt.password, tt.passkey()).wantError(t, http.StatusUnauthorized, apitype.CodeUnauthenticated)
		if e.Message != "wrong email, password or passkey" {
			t.Errorf("%s: %q", tt.name, e.Message)
		}
		wantLastFailure(t, u.Email, tt.reason)
		if evs := nameEvents(t, u.Email, audit.LoginFailed); evs[len(evs)-1].Detail["method"] != methodPasswordPasskey {
			t.Errorf("%s: login_failed %+v", tt.name, evs[len(evs)-1])
		}
	}
	// Without user verification it is the second factor still: the
	// password is the other.
	a.uv = false
	r := login(b, testPassword, a.get(t, b.signInOptions(t, true), k))
	if r.status != http.StatusOK {
		evs := nameEvents(t, u.Email, audit.LoginFailed)
		t.Fatalf("without user verification: %d %s (%+v)", r.status, r.body, evs[len(evs)-1])
	}
}

// TestPasskeyRegistrationRefusals: a passkey is added only by a login
// that proved a second factor within 5 minutes (a stolen session cookie
// is not enough), over that login's own ceremony, once, with user
// verification, from this origin and RP ID, and never with a credential
// ID another passkey has; each refusal is audited and stores nothing.
func TestPasskeyRegistrationRefusals(t *testing.T) {
	t.Parallel()
	ts, u, b, a := passkeyServer(t)
	stale := func(b *webClient) {
		e := b.do(t, "POST", "/api/v1/passkeys/register-options", nil).wantError(t, http.StatusForbidden, apitype.CodeReauthRequired)
		if !strings.Contains(e.Message, "adding a passkey needs a second factor proved within the last 5m") {
			t.Errorf("refusal %q", e.Message)
		}
	}
	// A session that proved no factor (as a stolen cookie's login
	// might be): refused, audited.
	stolen := newWebClient(t, ts)
	secret := newConsoleSession(t, u)
	tsURL, _ := stolen.jarURL(t)
	stolen.jar.SetCookies(tsURL, []*http.Cookie{{Name: apitype.ConsoleSessionCookie, Value: secret}, {Name: apitype.ConsoleCSRFCookie, Value: csrfToken(secret)}})
	stale(stolen)
	if evs := userEvents(t, u, audit.PasskeyRefused); len(evs) != 1 || evs[0].Detail["reason"] != reasonNoFreshFactor {
		t.Errorf("passkey_refused %+v", evs)
	}
	// Over 5 minutes after the login's code: refused, until a fresh one.
	o := b.registerOptions(t)
	ts.clock.Advance(freshForPasskeys + time.Second)
	stale(b)
	decodeAs[apitype.ReauthResponse](t, b.do(t, "POST", "/api/v1/reauth", apitype.ReauthRequest{TOTP: totpCode(t, u, ts.clock.Now())}), http.StatusOK)
	ts.clock.Advance(30 * time.Second)

	register := func(b *webClient, name string, cred apitype.PasskeyAttestation) response {
		return b.do(t, "POST", "/api/v1/passkeys", apitype.RegisterPasskeyRequest{Name: name, Credential: cred})
	}
	refused := func(r response, reason string) {
		t.Helper()
		r.wantError(t, http.StatusForbidden, apitype.CodePasskeyRefused)
		evs := userEvents(t, u, audit.PasskeyRefused)
		if evs[len(evs)-1].Detail["reason"] != reason {
			t.Errorf("passkey_refused %+v; want %s", evs[len(evs)-1], reason)
		}
	}
	// The options of before the window expired (an expired ceremony).
	cred, _ := a.create(t, o)
	refused(register(b, "late", cred), reasonNoCeremony)
	// Another login's ceremony: the stolen session cannot finish the
	// owner's registration.
	o = b.registerOptions(t)
	cred, _ = a.create(t, o)
	refused(register(stolen, "mine", cred), reasonNoCeremony)
	// The owner's ceremony was not spent by that: it is bound to their login.
	for _, tt := range []struct {
		name string
		edit func(a *authenticator)
	}{
		{"another origin", func(a *authenticator) { a.origin = "https://evil.example.com" }},
		{"another RP ID", func(a *authenticator) { a.rpID = "evil.example.com" }},
		{"no user verification", func(a *authenticator) { a.uv = false }},
	} {
		evil := newAuthenticator()
		tt.edit(evil)
		cred, _ := evil.create(t, b.registerOptions(t))
		refused(register(b, tt.name, cred), reasonPasskeyInvalid)
	}
	// A challenge used once: registered, then the same answer again.
	cred, k := a.create(t, b.registerOptions(t))
	decodeAs[apitype.Passkey](t, register(b, "laptop", cred), http.StatusCreated)
	refused(register(b, "laptop again", cred), reasonNoCeremony)

	// bob registers the credential ID of u's passkey, with his own key:
	// refused, and u's passkey stays u's.
	bob := newUser(t, false)
	bb := newWebClient(t, ts)
	bb.login(t, bob)
	cred, _ = newAuthenticator().createWith(t, bb.registerOptions(t), &softKey{id: k.id, key: newKey(t), userHandle: []byte(bob.ID)})
	bb.do(t, "POST", "/api/v1/passkeys", apitype.RegisterPasskeyRequest{Name: "u's", Credential: cred}).wantError(t, http.StatusConflict, apitype.CodeConflict)
	if evs := userEvents(t, bob, audit.PasskeyRefused); len(evs) != 1 || evs[0].Detail["reason"] != reasonCredentialTaken {
		t.Errorf("bob's passkey_refused %+v", evs)
	}
	if storedKey(t, k).UserID != u.ID {
		t.Error("the credential changed hands")
	}
	signIn(t, ts, a, k)
	if list := decodeAs[[]apitype.Passkey](t, b.do(t, "GET", "/api/v1/passkeys", nil), http.StatusOK); len(list) != 1 {
		t.Errorf("u's passkeys %+v; want the one", list)
	}
	if list := decodeAs[[]apitype.Passkey](t, bb.do(t, "GET", "/api/v1/passkeys", nil), http.StatusOK); len(list) != 0 {
		t.Errorf("bob's passkeys %+v; want none", list)
	}
}

// jarURL is the URL the browser's cookies are kept for.
func (b *webClient) jarURL(t *testing.T) (*url.URL, error) {
	t.Helper()
	return url.Parse(b.ts.ts.URL)
}

// TestPasskeyMalformed: answers that cannot be read, or are too big, are
// refused in words (400, or 413 over the body cap) before the ceremony is
// taken: the right answer still signs in or registers after them.
func TestPasskeyMalformed(t *testing.T) {
	t.Parallel()
	ts, _, b, a := passkeyServer(t)
	cred, k := a.create(t, b.registerOptions(t))
	for _, tt := range []struct {
		name, words string
		cred        apitype.PasskeyAttestation
	}{
		{"no attestation object", "credential.attestation_object is required", with(cred, func(c *apitype.PasskeyAttestation) { c.AttestationObject = "" })},
		{"an attestation object not CBOR", "cannot be read", with(cred, func(c *apitype.PasskeyAttestation) { c.AttestationObject = b64u([]byte("{}")) })},
		{"an ID other than the authenticator's", "names another credential", with(cred, func(c *apitype.PasskeyAttestation) { c.ID = b64u([]byte("other")) })},
	} {
		e := b.do(t, "POST", "/api/v1/passkeys", apitype.RegisterPasskeyRequest{Name: "x", Credential: tt.cred}).wantError(t, http.StatusBadRequest, apitype.CodeBadRequest)
		if !strings.Contains(e.Message, tt.words) {
			t.Errorf("registration with %s: %q; want one with %q", tt.name, e.Message, tt.words)
		}
	}
	for _, name := range []string{"", "   ", "tab\there", strings.Repeat("é", maxPasskeyName+1)} {
		e := b.do(t, "POST", "/api/v1/passkeys", apitype.RegisterPasskeyRequest{Name: name, Credential: cred}).wantError(t, http.StatusBadRequest, apitype.CodeBadRequest)
		if !strings.Contains(e.Message, "name") {
			t.Errorf("name %q: %q", name, e.Message)
		}
	}
	decodeAs[apitype.Passkey](t, b.do(t, "POST", "/api/v1/passkeys", apitype.RegisterPasskeyRequest{Name: strings.Repeat("é", maxPasskeyName), Credential: cred}), http.StatusCreated)

	good := a.get(t, apitype.PasskeyRequestOptions{Challenge: "x"}, k) // a well-formed answer to edit
	big := strings.Repeat("A", DefaultMaxBodyBytes)
	for _, tt := range []struct {
		name  string
		body  any
		words string
	}{
		{"not JSON", "{passkey", "not valid JSON"},
		{"an unknown field", `{"passkey":{},"user":"admin"}`, "unknown field"},
		{"no passkey", `{}`, "passkey.id is required"},
		{"an ID not base64url", apitype.PasskeyLoginRequest{Passkey: with(good, func(p *apitype.PasskeyAssertion) { p.ID = "a+b/" })}, "not base64url"},
		{"no signature", apitype.PasskeyLoginRequest{Passkey: with(good, func(p *apitype.PasskeyAssertion) { p.Signature = "" })}, "passkey.signature is required"},
		{"client data not JSON", apitype.PasskeyLoginRequest{Passkey: with(good, func(p *apitype.PasskeyAssertion) { p.ClientDataJSON = b64u([]byte("<xml/>")) })}, "cannot be read"},
		{"authenticator data too short", apitype.PasskeyLoginRequest{Passkey: with(good, func(p *apitype.PasskeyAssertion) { p.AuthenticatorData = b64u([]byte{1, 2, 3}) })}, "cannot be read"},
		{"a body over the cap", `{"passkey":{"id":"` + big + `"}}`, "over 64 KiB"},
	} {
		t.Run("sign-in: "+tt.name, func(t *testing.T) {
			b := newWebClient(t, ts)
			o := b.signInOptions(t, false)
			e := b.do(t, "POST", "/api/v1/console/passkey-login", tt.body).errorBody(t)
			if !strings.Contains(e.Message, tt.words) {
				t.Errorf("answer %q; want one with %q", e.Message, tt.words)
			}
			decodeAs[apitype.ConsoleLoginResponse](t, b.passkeyLogin(t, a.get(t, o, k)), http.StatusOK)
		})
	}
}

// with is v changed by edit.
func with[T any](v T, edit func(*T)) T {
	edit(&v)
	return v
}

// TestPasskeyRemoved: a passkey removed by its user (which needs a fresh
// second factor; another user's cannot be), or taken by a reset or the
// user's deletion, signs in no more.
func TestPasskeyRemoved(t *testing.T) {
	t.Parallel()
	ts, u, b, a := passkeyServer(t)
	k, pk := b.register(t, a, "laptop")
	k2, pk2 := b.register(t, a, "phone")

	// Another user cannot remove it, nor learn it exists.
	bob := newUser(t, false)
	bb := newWebClient(t, ts)
	bb.login(t, bob)
	bb.do(t, "DELETE", "/api/v1/passkeys/"+pk.ID, nil).wantError(t, http.StatusNotFound, apitype.CodeNotFound)
	// Nor a login whose second factor is stale.
	ts.clock.Advance(freshForPasskeys + time.Second)
	b.do(t, "DELETE", "/api/v1/passkeys/"+pk.ID, nil).wantError(t, http.StatusForbidden, apitype.CodeReauthRequired)
	signIn(t, ts, a, k)

	// With a fresh factor (the passkey itself) it goes.
	o := decodeAs[apitype.PasskeyRequestOptions](t, b.do(t, "POST", "/api/v1/reauth/passkey-options", nil), http.StatusOK)
	decodeAs[apitype.ReauthResponse](t, b.do(t, "POST", "/api/v1/reauth", apitype.ReauthRequest{Passkey: ptr(a.get(t, o, k2))}), http.StatusOK)
	if r := b.do(t, "DELETE", "/api/v1/passkeys/"+pk.ID, nil); r.status != http.StatusNoContent {
		t.Fatalf("removing: %d %s", r.status, r.body)
	}
	if evs := userEvents(t, u, audit.PasskeyRemoved); len(evs) != 1 || evs[0].Detail["name"] != "laptop" || evs[0].Detail["passkey_id"] != pk.ID {
		t.Errorf("passkey_removed %+v", evs)
	}
	refusedSignIn(t, newWebClient(t, ts), a.get(t, newWebClient(t, ts).signInOptions(t, false), k), "passkey", reasonNoCeremony)
	nb := newWebClient(t, ts)
	refusedSignIn(t, nb, a.get(t, nb.signInOptions(t, false), k), "passkey", reasonUnknownPasskey)

	// A reset by an administrator takes the rest.
	if r := do(t, ts.ts, "POST", "/api/v1/users/"+u.ID+"/reset", fx.tokens["admin"], map[string]any{}); r.status != http.StatusOK {
		t.Fatalf("reset: %d %s", r.status, r.body)
	}
	if _, err := fx.store.PasskeyByCredentialID(context.Background(), k2.id); err == nil {
		t.Errorf("passkey %s outlived its user's reset", pk2.ID)
	}
	nb = newWebClient(t, ts)
	refusedSignIn(t, nb, a.get(t, nb.signInOptions(t, false), k2), "passkey", reasonUnknownPasskey)
}

// TestPasskeyRemovalEndsItsLogins: removing a passkey (lost, or stolen)
// ends the logins signed in with it, alone or after the password, but not
// the login that removes it (which just proved a fresh factor), nor the
// user's logins made otherwise or with another passkey.
func TestPasskeyRemovalEndsItsLogins(t *testing.T) {
	t.Parallel()
	ts, u, b, a := passkeyServer(t)
	k, pk := b.register(t, a, "laptop")
	k2, pk2 := b.register(t, a, "phone")
	alone := signIn(t, ts, a, k)
	afterPassword := newWebClient(t, ts)
	decodeAs[apitype.ConsoleLoginResponse](t, afterPassword.do(t, "POST", "/api/v1/console/login",
		apitype.ConsoleLoginRequest{Email: u.Email, Password: testPassword, Passkey: ptr(a.get(t, afterPassword.signInOptions(t, true), k))}), http.StatusOK)
	withPhone, phoneAgain := signIn(t, ts, a, k2), signIn(t, ts, a, k2)

	if r := b.do(t, "DELETE", "/api/v1/passkeys/"+pk.ID, nil); r.status != http.StatusNoContent {
		t.Fatalf("removing the laptop's passkey: %d %s", r.status, r.body)
	}
	for _, c := range []*webClient{alone, afterPassword} { // signed in with it, alone and after the password
		c.do(t, "GET", "/api/v1/me", nil).wantError(t, http.StatusUnauthorized, apitype.CodeUnauthenticated)
	}
	for what, c := range map[string]*webClient{"the password login that removed it": b, "the phone's login": withPhone} {
		if r := c.do(t, "GET", "/api/v1/me", nil); r.status != http.StatusOK {
			t.Errorf("%s ended with the laptop's passkey: %d %s", what, r.status, r.body)
		}
	}

	// Removed from a login it made itself: that one stays, its twin goes.
	if r := withPhone.do(t, "DELETE", "/api/v1/passkeys/"+pk2.ID, nil); r.status != http.StatusNoContent {
		t.Fatalf("removing the phone's passkey from its own login: %d %s", r.status, r.body)
	}
	if r := withPhone.do(t, "GET", "/api/v1/me", nil); r.status != http.StatusOK {
		t.Errorf("the login that removed its own passkey ended: %d %s", r.status, r.body)
	}
	phoneAgain.do(t, "GET", "/api/v1/me", nil).wantError(t, http.StatusUnauthorized, apitype.CodeUnauthenticated)
}

// TestPasskeyNoLockoutByName: failed passkey sign-ins count against their
// source only: an attacker who sends a victim's credential ID with bad
// signatures until their address is refused keeps no one else out, and
// neither does an attacker who knows the password and spent the account's
// wrong codes: the owner's passkey still signs in.
func TestPasskeyNoLockoutByName(t *testing.T) {
	t.Parallel()
	ts, u, owner, a := passkeyServer(t)
	k, _ := owner.register(t, a, "laptop")
	attacker := newWebClientFrom(t, ts, "127.0.0.3")
	forged := *k
	forged.key = newKey(t)
	for i := 0; ; i++ {
		r := attacker.passkeyLogin(t, a.get(t, attacker.signInOptions(t, false), &forged))
		if r.status == http.StatusTooManyRequests {
			break
		}
		r.wantError(t, http.StatusUnauthorized, apitype.CodeUnauthenticated)
		if i > DefaultLoginFailuresPerAddress {
			t.Fatal("failed passkey sign-ins are never limited")
		}
	}
	for i := range DefaultLoginCodeFailuresPerAccount {
		doFrom(t, ts.ts, fmt.Sprintf("127.0.4.%d", i+1), "POST", "/api/v1/login", "", loginBody(u, testPassword, wrongCode(t, u, ts.clock.Now()))).
			wantError(t, http.StatusUnauthorized, apitype.CodeUnauthenticated)
	}
	b := newWebClientFrom(t, ts, "127.0.0.4")
	decodeAs[apitype.ConsoleLoginResponse](t, b.passkeyLogin(t, a.get(t, b.signInOptions(t, false), k)), http.StatusOK)
	// The attacker's address stays refused, even with the right passkey.
	attacker.passkeyLogin(t, a.get(t, attacker.signInOptions(t, false), k)).wantError(t, http.StatusTooManyRequests, apitype.CodeRateLimited)
}

// TestPasskeySSOUser: a user who signs in with single sign-on may add a
// passkey (from a fresh sign-in) and re-authenticate with it, but not
// sign in with it: their logins stay the provider's.
func TestPasskeySSOUser(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{PublicURL: testPublicURL})
	u := &store.User{Email: fx.name("sso") + "@example.com", SSOSubject: "https://idp.example.com " + fx.name("sub")}
	_, err := fx.store.SyncSSOUser(context.Background(), u, nil)
	must(t, err)
	// A console session as the SSO callback makes it: its sign-in is now.
	secret, hash := auth.NewSecret(consolePrefix)
	now := ts.clock.Now()
	must(t, fx.store.CreateToken(context.Background(), &store.Token{UserID: u.ID, Hash: hash, Name: "console session (SSO)", CreatedAt: now, ExpiresAt: now.Add(time.Hour), FactorAt: now}))
	b := newWebClient(t, ts)
	tsURL, _ := b.jarURL(t)
	b.jar.SetCookies(tsURL, []*http.Cookie{{Name: apitype.ConsoleSessionCookie, Value: secret}, {Name: apitype.ConsoleCSRFCookie, Value: csrfToken(secret)}})
	a := newAuthenticator()
	k, _ := b.register(t, a, "laptop")

	nb := newWebClient(t, ts)
	e := nb.passkeyLogin(t, a.get(t, nb.signInOptions(t, false), k)).wantError(t, http.StatusUnauthorized, apitype.CodeUnauthenticated)
	if !strings.Contains(e.Message, "signs in with single sign-on") {
		t.Errorf("refusal %q", e.Message)
	}
	wantLastFailure(t, u.Email, reasonSSOUser)

	ts.clock.Advance(time.Hour / 2)
	e = b.do(t, "POST", "/api/v1/passkeys/register-options", nil).wantError(t, http.StatusForbidden, apitype.CodeReauthRequired)
	if !strings.Contains(e.Message, "sign in again with single sign-on") {
		t.Errorf("refusal %q", e.Message)
	}
	o := decodeAs[apitype.PasskeyRequestOptions](t, b.do(t, "POST", "/api/v1/reauth/passkey-options", nil), http.StatusOK)
	decodeAs[apitype.ReauthResponse](t, b.do(t, "POST", "/api/v1/reauth", apitype.ReauthRequest{Passkey: ptr(a.get(t, o, k))}), http.StatusOK)
	b.registerOptions(t)
}

// TestPasskeyCSRF: a passkey sign-in is neither begun nor finished from
// another site (login CSRF), and a registration needs the session's CSRF
// header like every change made with the cookie.
func TestPasskeyCSRF(t *testing.T) {
	t.Parallel()
	ts, _, b, a := passkeyServer(t)
	k, _ := b.register(t, a, "laptop")
	o := b.signInOptions(t, false)
	for path, body := range map[string]any{"/api/v1/console/passkey-options": apitype.PasskeySignInRequest{},
		"/api/v1/console/passkey-login": apitype.PasskeyLoginRequest{Passkey: a.get(t, o, k)}} {
		req := newRequest(t, t.Context(), "POST", ts.ts.URL+path, body)
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := b.c.Do(req)
		must(t, err)
		r := response{status: resp.StatusCode, body: readAll(t, resp)}
		resp.Body.Close()
		r.wantError(t, http.StatusForbidden, apitype.CodeCSRF)
	}
	req := newRequest(t, t.Context(), "POST", ts.ts.URL+"/api/v1/passkeys/register-options", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := b.c.Do(req)
	must(t, err)
	defer resp.Body.Close()
	(response{status: resp.StatusCode, body: readAll(t, resp)}).wantError(t, http.StatusForbidden, apitype.CodeCSRF)
}

// TestRelyingParty: the relying party is the public URL's host and
// origin; a URL that cannot be one turns passkeys off, in words.
func TestRelyingParty(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		url, rpID, origin, off string
	}{
		{"https://porthole.example.com", "porthole.example.com", "https://porthole.example.com", ""},
		{"https://Porthole.Example.com:443/", "porthole.example.com", "https://porthole.example.com", ""},
		{"https://localhost:8443", "localhost", "https://localhost:8443", ""},
		{"", "", "", "it has no public URL"},
		{"http://porthole.example.com", "", "", "is not an https:// URL"},
		{"https://10.0.0.1:8443", "", "", "names an IP address"},
		{"https://[::1]:8443", "", "", "names an IP address"},
	} {
		wa, off := newRelyingParty(tt.url)
		switch {
		case tt.off != "" && (wa != nil || !strings.Contains(off, tt.off)):
			t.Errorf("%q: relying party %v, off %q; want off with %q", tt.url, wa, off, tt.off)
		case tt.off == "" && (wa == nil || wa.Config.RPID != tt.rpID || strings.Join(wa.Config.RPOrigins, " ") != tt.origin):
			t.Errorf("%q: relying party %+v (off %q); want %s at %s", tt.url, wa, off, tt.rpID, tt.origin)
		}
	}
	ts := newServer(t, Config{PublicURL: "https://10.0.0.1:8443"})
	e := do(t, ts.ts, "POST", "/api/v1/console/passkey-options", "", map[string]any{}).wantError(t, http.StatusNotFound, apitype.CodeNotFound)
	if !strings.Contains(e.Message, "names an IP address") {
		t.Errorf("answer %q", e.Message)
	}
}

// newWebClientFrom is a browser at another source address (of 127.0.0.0/8).
func newWebClientFrom(t *testing.T, ts *testServer, from string) *webClient {
	t.Helper()
	b := newWebClient(t, ts)
	tr := b.c.Transport.(*http.Transport).Clone()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	tr.DialContext = d.DialContext
	t.Cleanup(tr.CloseIdleConnections)
	b.c.Transport = tr
	return b
}
