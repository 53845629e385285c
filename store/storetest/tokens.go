package storetest

import (
	"testing"
	"time"

	"github.com/porthole/porthole/store"
)

func testTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	ann, bob := mkUser(t, s, "ann@example.com"), mkUser(t, s, "bob@example.com")
	tok := &store.Token{UserID: ann.ID, Hash: randomHex(32), Name: "login from 127.0.0.1",
		CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	ok(t, "CreateToken", s.CreateToken(ctx, tok))
	wantPrefix(t, "token", tok.ID, "tok")
	equal(t, "ExpiresAt", tok.ExpiresAt, stored(t0.Add(time.Hour)))
	forever := &store.Token{UserID: ann.ID, Hash: randomHex(32), Name: "dev", CreatedAt: t0.Add(time.Second)}
	ok(t, "CreateToken", s.CreateToken(ctx, forever))
	bobs := &store.Token{UserID: bob.ID, Hash: randomHex(32), Name: "bob's"}
	ok(t, "CreateToken", s.CreateToken(ctx, bobs))

	got, err := s.TokenByHash(ctx, tok.Hash, t0)
	ok(t, "TokenByHash", err)
	equal(t, "TokenByHash", got, tok)
	list, err := s.ListTokens(ctx, ann.ID)
	ok(t, "ListTokens", err)
	equal(t, "ListTokens", list, []*store.Token{tok, forever})

	ok(t, "TouchToken", s.TouchToken(ctx, tok.ID, t0.Add(time.Minute)))
	got, err = s.TokenByHash(ctx, tok.Hash, t0)
	ok(t, "TokenByHash", err)
	equal(t, "LastUsedAt", got.LastUsedAt, stored(t0.Add(time.Minute)))

	checkDelete(t, "Token", func() error { return s.DeleteToken(ctx, ann.ID, tok.ID) },
		func() error { return errOf(s.TokenByHash(ctx, tok.Hash, t0)) })
}

// testTokenExpiry: a token is refused from the millisecond it expires; a
// zero expiry never expires.
func testTokenExpiry(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := mkUser(t, s, "ann@example.com")
	expires := t0.Add(time.Hour)
	tok := &store.Token{UserID: u.ID, Hash: randomHex(32), ExpiresAt: expires}
	ok(t, "CreateToken", s.CreateToken(ctx, tok))
	forever := &store.Token{UserID: u.ID, Hash: randomHex(32)}
	ok(t, "CreateToken", s.CreateToken(ctx, forever))

	for _, tt := range []struct {
		name string
		now  time.Time
		want error
	}{
		{"a millisecond before expiry", expires.Add(-time.Millisecond), nil},
		{"at expiry", expires, store.ErrNotFound},
		{"after expiry", expires.Add(24 * time.Hour), store.ErrNotFound},
	} {
		_, err := s.TokenByHash(ctx, tok.Hash, tt.now)
		wantErr(t, "TokenByHash "+tt.name, err, tt.want)
	}
	_, err := s.TokenByHash(ctx, forever.Hash, t0.AddDate(100, 0, 0))
	ok(t, "TokenByHash of a token without expiry, in a century", err)
}

// testTokenOwnership: a user cannot delete another user's token.
func testTokenOwnership(t *testing.T, s store.Store) {
	ctx := t.Context()
	ann, eve := mkUser(t, s, "ann@example.com"), mkUser(t, s, "eve@example.com")
	tok := &store.Token{UserID: ann.ID, Hash: randomHex(32)}
	ok(t, "CreateToken", s.CreateToken(ctx, tok))

	wantErr(t, "DeleteToken of another user's token", s.DeleteToken(ctx, eve.ID, tok.ID), store.ErrNotFound)
	_, err := s.TokenByHash(ctx, tok.Hash, t0)
	ok(t, "TokenByHash after another user's DeleteToken", err)
	list, err := s.ListTokens(ctx, eve.ID)
	ok(t, "ListTokens", err)
	equal(t, "ListTokens of another user", list, []*store.Token{})
}

// testTokenFactor: a token records when it last proved a second factor,
// from its creation and at each re-authentication, with its audit event;
// a user cannot set another user's.
func testTokenFactor(t *testing.T, s store.Store) {
	ctx := t.Context()
	ann, eve := mkUser(t, s, "ann@example.com"), mkUser(t, s, "eve@example.com")
	tok := &store.Token{UserID: ann.ID, Hash: randomHex(32), CreatedAt: t0, FactorAt: t0}
	ok(t, "CreateToken", s.CreateToken(ctx, tok))
	got, err := s.TokenByHash(ctx, tok.Hash, t0)
	ok(t, "TokenByHash", err)
	equal(t, "FactorAt at login", got.FactorAt, stored(t0))
	none := &store.Token{UserID: ann.ID, Hash: randomHex(32)}
	ok(t, "CreateToken", s.CreateToken(ctx, none))
	got, err = s.TokenByHash(ctx, none.Hash, t0)
	ok(t, "TokenByHash", err)
	equal(t, "FactorAt of a token that proved none", got.FactorAt.IsZero(), true)

	ok(t, "SetTokenFactor", s.SetTokenFactor(with(ctx, ev("reauth_succeeded", "1")), ann.ID, tok.ID, t0.Add(20*time.Minute)))
	got, err = s.TokenByHash(ctx, tok.Hash, t0)
	ok(t, "TokenByHash", err)
	equal(t, "FactorAt after re-authenticating", got.FactorAt, stored(t0.Add(20*time.Minute)))
	evs, err := s.ListAudit(ctx, store.AuditFilter{})
	ok(t, "ListAudit", err)
	found := false
	for _, e := range evs {
		found = found || e.Kind == "reauth_succeeded"
	}
	equal(t, "reauth_succeeded recorded", found, true)

	wantErr(t, "SetTokenFactor of another user's token",
		s.SetTokenFactor(ctx, eve.ID, tok.ID, t0.Add(time.Hour)), store.ErrNotFound)
	wantErr(t, "SetTokenFactor of a missing token",
		s.SetTokenFactor(ctx, ann.ID, "tok_missing", t0.Add(time.Hour)), store.ErrNotFound)
	got, _ = s.TokenByHash(ctx, tok.Hash, t0)
	equal(t, "FactorAt after another user's try", got.FactorAt, stored(t0.Add(20*time.Minute)))
}
