package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/auth"
	"github.com/porthole/porthole/store"
)

func loginBody(u *store.User, password, code string) apitype.LoginRequest {
	return apitype.LoginRequest{Email: u.Email, Password: password, TOTP: code}
}

// login logs u in on ts at the server's current time and returns the
// answer; the clock then moves to the next TOTP step, so the next login
// has a fresh code.
func (ts *testServer) login(t *testing.T, u *store.User) apitype.LoginResponse {
	t.Helper()
	r := do(t, ts.ts, "POST", "/api/v1/login", "", loginBody(u, testPassword, totpCode(t, u, ts.clock.Now())))
	ts.clock.Advance(30 * time.Second)
	return decodeAs[apitype.LoginResponse](t, r, http.StatusOK)
}

func TestLogin(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{})
	u := newUser(t, false)
	// The email is matched whatever its case.
	code := totpCode(t, u, ts.clock.Now())
	r := do(t, ts.ts, "POST", "/api/v1/login", "", apitype.LoginRequest{Email: strings.ToUpper(u.Email), Password: testPassword, TOTP: code})
	lr := decodeAs[apitype.LoginResponse](t, r, http.StatusOK)
	if lr.User.Email != u.Email || lr.TokenID == "" || !strings.HasPrefix(lr.Token, "pht_") {
		t.Fatalf("login answer = %+v", lr)
	}
	if want := ts.clock.Now().Add(DefaultTokenTTL); !lr.ExpiresAt.Equal(want) {
		t.Errorf("expires_at = %v; want %v", lr.ExpiresAt, want)
	}
	me := decodeAs[apitype.User](t, do(t, ts.ts, "GET", "/api/v1/me", lr.Token, nil), http.StatusOK)
	if me.ID != u.ID {
		t.Errorf("me = %+v; want user %s", me, u.ID)
	}
	// Nothing secret reaches the log.
	for _, secret := range []string{testPassword, code, lr.Token} {
		if strings.Contains(ts.log.String(), secret) {
			t.Errorf("the log holds the secret %q:\n%s", secret, ts.log)
		}
	}
	// Only the token's hash is stored.
	toks, err := fx.store.ListTokens(context.Background(), u.ID)
	must(t, err)
	if len(toks) != 1 || toks[0].Hash == lr.Token || toks[0].Hash == "" {
		t.Errorf("stored tokens = %+v", toks)
	}
}

func TestLoginRefusals(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{})
	u := newUser(t, false)
	now := ts.clock.Now()
	good := totpCode(t, u, now)
	bad := "000000"
	if good == bad {
		bad = "111111"
	}
	const wrong = "wrong email, password or code"
	for _, tt := range []struct {
		name       string
		req        any
		status     int
		code, text string
	}{
		{"wrong password", loginBody(u, "not the password", good), 401, apitype.CodeUnauthenticated, wrong},
		{"wrong code", loginBody(u, testPassword, bad), 401, apitype.CodeUnauthenticated, wrong},
		{"unknown email", apitype.LoginRequest{Email: "nobody@example.com", Password: testPassword, TOTP: good}, 401, apitype.CodeUnauthenticated, wrong},
		{"no email", apitype.LoginRequest{Password: testPassword, TOTP: good}, 400, apitype.CodeBadRequest, "email is required"},
		{"bad email", apitype.LoginRequest{Email: "Bob <bob@example.com>", Password: testPassword, TOTP: good}, 400, apitype.CodeBadRequest, "is not an email address"},
		{"no password", apitype.LoginRequest{Email: u.Email, TOTP: good}, 400, apitype.CodeBadRequest, "password is required"},
		{"no code", apitype.LoginRequest{Email: u.Email, Password: testPassword}, 400, apitype.CodeBadRequest, "totp is required"},
		{"unknown field", `{"email":"a@b.c","password":"x","totp":"1","remember":true}`, 400, apitype.CodeBadRequest, `unknown field "remember"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := do(t, ts.ts, "POST", "/api/v1/login", "", tt.req).wantError(t, tt.status, tt.code)
			if !strings.Contains(e.Message, tt.text) {
				t.Errorf("message = %q; want it to contain %q", e.Message, tt.text)
			}
		})
	}
	// None of those used up the good code.
	ts.login(t, u)
	// A code works once.
	r := do(t, ts.ts, "POST", "/api/v1/login", "", loginBody(u, testPassword, good))
	if e := r.wantError(t, 401, apitype.CodeUnauthenticated); e.Message != "this code was already used; wait for the next one" {
		t.Errorf("replayed code: message = %q", e.Message)
	}
	toks, err := fx.store.ListTokens(context.Background(), u.ID)
	must(t, err)
	if len(toks) != 1 {
		t.Errorf("%d tokens after one good login; want 1", len(toks))
	}
}

func TestLoginRateLimitPerAccount(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{})
	u := newUser(t, false)
	for i := range DefaultLoginFailuresPerAccount {
		r := do(t, ts.ts, "POST", "/api/v1/login", "", loginBody(u, "guess", totpCode(t, u, ts.clock.Now())))
		if r.status != 401 {
			t.Fatalf("failure %d: status %d; want 401", i+1, r.status)
		}
	}
	// Now even the right password is refused, without being checked.
	ts.clock.Advance(time.Minute)
	r := do(t, ts.ts, "POST", "/api/v1/login", "", loginBody(u, testPassword, totpCode(t, u, ts.clock.Now())))
	e := r.wantError(t, http.StatusTooManyRequests, apitype.CodeRateLimited)
	if want := "too many failed logins for this account from your address; try again in 14 minutes"; e.Message != want {
		t.Errorf("message = %q; want %q", e.Message, want)
	}
	if got := r.header.Get("Retry-After"); got != "840" {
		t.Errorf("Retry-After = %q; want 840", got)
	}
	// Another account from the same address is not affected.
	ts.login(t, newUser(t, false))
	// Once the window has passed, the account may log in again.
	ts.clock.Advance(DefaultLimitWindow)
	ts.login(t, u)
}

func TestLoginRateLimitPerAddress(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{LoginFailuresPerAddress: 3})
	for range 3 {
		u := newUser(t, false)
		do(t, ts.ts, "POST", "/api/v1/login", "", loginBody(u, "guess", "123456")).wantError(t, 401, apitype.CodeUnauthenticated)
	}
	u := newUser(t, false)
	r := do(t, ts.ts, "POST", "/api/v1/login", "", loginBody(u, testPassword, totpCode(t, u, ts.clock.Now())))
	if e := r.wantError(t, http.StatusTooManyRequests, apitype.CodeRateLimited); !strings.HasPrefix(e.Message, "too many failed logins from your address") {
		t.Errorf("message = %q", e.Message)
	}
	// The refused attempt did not count against u's account.
	ts.clock.Advance(DefaultLimitWindow)
	ts.login(t, u)
}

// wrongCode is a TOTP code for u that is not valid around now.
func wrongCode(t *testing.T, u *store.User, now time.Time) string {
	t.Helper()
	valid := map[string]bool{}
	for _, d := range []time.Duration{-time.Minute, -30 * time.Second, 0, 30 * time.Second, time.Minute} {
		valid[totpCode(t, u, now.Add(d))] = true
	}
	for i := 0; ; i++ {
		if c := fmt.Sprintf("%06d", i); !valid[c] {
			return c
		}
	}
}

// TestLoginNoLockoutByName: an attacker who knows only an account's name
// fails as often as it is let, from one address and then from many (50
// wrong passwords in all, with right codes too); the owner, from an
// address of their own, logs in at once, and the attacker's address is
// still refused.
func TestLoginNoLockoutByName(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{})
	admin := newUser(t, true)
	const attacker, owner = "127.0.0.1", "127.0.0.2"
	for i := range 3 * DefaultLoginFailuresPerAccount {
		r := doFrom(t, ts.ts, attacker, "POST", "/api/v1/login", "", loginBody(admin, fmt.Sprintf("guess %d", i), totpCode(t, admin, ts.clock.Now())))
		if want := map[bool]int{true: 401, false: 429}[i < DefaultLoginFailuresPerAccount]; r.status != want {
			t.Fatalf("attacker's guess %d: %d; want %d", i+1, r.status, want)
		}
	}
	for i := range 9 { // a botnet: more addresses, each to its limit
		for j := range DefaultLoginFailuresPerAccount {
			from := fmt.Sprintf("127.0.1.%d", i+1)
			doFrom(t, ts.ts, from, "POST", "/api/v1/login", "", loginBody(admin, fmt.Sprintf("guess %d.%d", i, j), wrongCode(t, admin, ts.clock.Now()))).
				wantError(t, 401, apitype.CodeUnauthenticated)
		}
	}
	r := doFrom(t, ts.ts, owner, "POST", "/api/v1/login", "", loginBody(admin, testPassword, totpCode(t, admin, ts.clock.Now())))
	if lr := decodeAs[apitype.LoginResponse](t, r, http.StatusOK); lr.User.Email != admin.Email {
		t.Fatalf("the owner's login: %+v", lr)
	}
	ts.clock.Advance(30 * time.Second)
	// The attacker's address stays refused, even with the right answers.
	r = doFrom(t, ts.ts, attacker, "POST", "/api/v1/login", "", loginBody(admin, testPassword, totpCode(t, admin, ts.clock.Now())))
	if e := r.wantError(t, http.StatusTooManyRequests, apitype.CodeRateLimited); !strings.HasPrefix(e.Message, "too many failed logins for this account from your address") {
		t.Errorf("the attacker's address after the owner's login: %q", e.Message)
	}
}

// TestLoginCodeGuessing: an attacker who has the password guesses codes
// from a new address each time: after LoginCodeFailuresPerAccount wrong
// codes every login to the account is refused, the right code included,
// and so is a wrong password (the refusal says nothing of the password
// tried); once they leave the window the owner logs in.
func TestLoginCodeGuessing(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{})
	u := newUser(t, false)
	for i := range DefaultLoginCodeFailuresPerAccount {
		doFrom(t, ts.ts, fmt.Sprintf("127.0.2.%d", i+1), "POST", "/api/v1/login", "", loginBody(u, testPassword, wrongCode(t, u, ts.clock.Now()))).
			wantError(t, 401, apitype.CodeUnauthenticated)
	}
	for _, tt := range []struct{ name, password string }{{"the right code", testPassword}, {"a wrong password", "guess"}} {
		r := doFrom(t, ts.ts, "127.0.2.100", "POST", "/api/v1/login", "", loginBody(u, tt.password, totpCode(t, u, ts.clock.Now())))
		if e := r.wantError(t, http.StatusTooManyRequests, apitype.CodeRateLimited); !strings.HasPrefix(e.Message, codesLocked) {
			t.Errorf("%s after %d wrong codes: %q", tt.name, DefaultLoginCodeFailuresPerAccount, e.Message)
		}
	}
	// Wrong passwords do not count here: another account's owner who
	// mistypes theirs is not locked.
	v := newUser(t, false)
	for i := range 2 * DefaultLoginCodeFailuresPerAccount {
		doFrom(t, ts.ts, fmt.Sprintf("127.0.3.%d", i+1), "POST", "/api/v1/login", "", loginBody(v, "guess", totpCode(t, v, ts.clock.Now()))).
			wantError(t, 401, apitype.CodeUnauthenticated)
	}
	ts.login(t, v)
	ts.clock.Advance(DefaultLimitWindow)
	ts.login(t, u)
}

// TestLoginCodeGuessingConcurrent: codes sent all at once, from as many
// addresses, get no more tries than codes sent one by one.
func TestLoginCodeGuessingConcurrent(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{})
	u := newUser(t, false)
	const n = 3 * DefaultLoginCodeFailuresPerAccount
	code := wrongCode(t, u, ts.clock.Now())
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			statuses <- doFrom(t, ts.ts, fmt.Sprintf("127.0.4.%d", i+1), "POST", "/api/v1/login", "", loginBody(u, testPassword, code)).status
		})
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[401] != DefaultLoginCodeFailuresPerAccount || count[429] != n-DefaultLoginCodeFailuresPerAccount {
		t.Errorf("statuses = %v; want %d × 401 and the rest 429", count, DefaultLoginCodeFailuresPerAccount)
	}
}

// TestLoginRateLimitConcurrent: guesses sent all at once get no more tries
// than guesses sent one by one.
func TestLoginRateLimitConcurrent(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{})
	u := newUser(t, false)
	const n = 3 * DefaultLoginFailuresPerAccount
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			statuses <- do(t, ts.ts, "POST", "/api/v1/login", "", loginBody(u, "guess", "123456")).status
		})
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[401] != DefaultLoginFailuresPerAccount || count[429] != n-DefaultLoginFailuresPerAccount {
		t.Errorf("statuses = %v; want %d × 401 and the rest 429", count, DefaultLoginFailuresPerAccount)
	}
}

// TestLoginSuccessesDoNotCount: good logins leave the failure budget alone.
func TestLoginSuccessesDoNotCount(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{LoginFailuresPerAccount: 2, LoginFailuresPerAddress: 2})
	u := newUser(t, false)
	for range 5 {
		ts.login(t, u)
	}
	do(t, ts.ts, "POST", "/api/v1/login", "", loginBody(u, "guess", "123456")).wantError(t, 401, apitype.CodeUnauthenticated)
	ts.login(t, u)
}

func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{TokenTTL: time.Hour})
	lr := ts.login(t, newUser(t, false))
	decodeAs[apitype.User](t, do(t, ts.ts, "GET", "/api/v1/me", lr.Token, nil), http.StatusOK)
	ts.clock.Advance(time.Hour)
	e := do(t, ts.ts, "GET", "/api/v1/me", lr.Token, nil).wantError(t, 401, apitype.CodeUnauthenticated)
	if want := "your login expired or was revoked; run `porthole login`"; e.Message != want {
		t.Errorf("message = %q; want %q", e.Message, want)
	}
}

func TestBadAuthorization(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ header, text string }{
		{"", "this request needs a login"},
		{"Basic dXNlcjpwdw==", "must be \"Bearer <token>\""},
		{"Bearer", "must be \"Bearer <token>\""},
		{"Bearer pht_nosuchtoken", "your login expired or was revoked"},
		// The token's hash, as the store keeps it, is not a token.
		{"Bearer " + tokenHash(t, fx.tokens["admin"]), "your login expired or was revoked"},
	} {
		req, err := http.NewRequest("GET", fx.ts.URL+"/api/v1/me", nil)
		must(t, err)
		if tt.header != "" {
			req.Header.Set("Authorization", tt.header)
		}
		resp, err := fx.ts.Client().Do(req)
		must(t, err)
		r := response{status: resp.StatusCode}
		r.body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if e := r.wantError(t, 401, apitype.CodeUnauthenticated); !strings.Contains(e.Message, tt.text) {
			t.Errorf("Authorization %q: message = %q; want it to contain %q", tt.header, e.Message, tt.text)
		}
	}
}

func tokenHash(t *testing.T, secret string) string {
	t.Helper()
	tok, err := fx.store.TokenByHash(context.Background(), auth.HashSecret(secret), time.Now())
	must(t, err)
	return tok.Hash
}

func TestLogoutAndTokens(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{})
	u := newUser(t, false)
	a, b := ts.login(t, u), ts.login(t, u)
	list := decodeAs[[]apitype.TokenInfo](t, do(t, ts.ts, "GET", "/api/v1/tokens", a.Token, nil), http.StatusOK)
	if len(list) != 2 {
		t.Fatalf("tokens = %+v; want 2", list)
	}
	for _, ti := range list {
		if ti.Current != (ti.ID == a.TokenID) {
			t.Errorf("token %s: current = %v; want it only on the calling token %s", ti.ID, ti.Current, a.TokenID)
		}
	}
	// Another user's token cannot be revoked, nor seen to exist.
	victim := newUser(t, false)
	vsecret, vtok, err := newToken(fx.store, victim, time.Now().Add(time.Hour))
	must(t, err)
	do(t, ts.ts, "DELETE", "/api/v1/tokens/"+vtok.ID, a.Token, nil).wantError(t, 404, apitype.CodeNotFound)
	decodeAs[apitype.User](t, do(t, ts.ts, "GET", "/api/v1/me", vsecret, nil), http.StatusOK)
	// One's own can.
	if r := do(t, ts.ts, "DELETE", "/api/v1/tokens/"+b.TokenID, a.Token, nil); r.status != http.StatusNoContent {
		t.Fatalf("revoking own token: status %d (%s)", r.status, r.body)
	}
	do(t, ts.ts, "GET", "/api/v1/me", b.Token, nil).wantError(t, 401, apitype.CodeUnauthenticated)
	// Logout revokes the calling token.
	if r := do(t, ts.ts, "POST", "/api/v1/logout", a.Token, nil); r.status != http.StatusNoContent {
		t.Fatalf("logout: status %d (%s)", r.status, r.body)
	}
	do(t, ts.ts, "GET", "/api/v1/me", a.Token, nil).wantError(t, 401, apitype.CodeUnauthenticated)
}

// TestTokenTouch: a token's last use is written at most once a minute.
func TestTokenTouch(t *testing.T) {
	t.Parallel()
	ts := newServer(t, Config{})
	u := newUser(t, false)
	secret, tok, err := newToken(fx.store, u, time.Now().Add(time.Hour))
	must(t, err)
	lastUsed := func() time.Time {
		got, err := fx.store.TokenByHash(context.Background(), tok.Hash, ts.clock.Now())
		must(t, err)
		return got.LastUsedAt
	}
	use := func() { decodeAs[apitype.User](t, do(t, ts.ts, "GET", "/api/v1/me", secret, nil), http.StatusOK) }
	first := ts.clock.Now()
	use()
	if got := lastUsed(); !got.Equal(first) {
		t.Fatalf("last used = %v; want %v", got, first)
	}
	ts.clock.Advance(59 * time.Second)
	use()
	if got := lastUsed(); !got.Equal(first) {
		t.Errorf("last used = %v after a use within a minute; want it still %v", got, first)
	}
	ts.clock.Advance(time.Second)
	use()
	if got, want := lastUsed(), ts.clock.Now(); !got.Equal(want) {
		t.Errorf("last used = %v a minute later; want %v", got, want)
	}
}
