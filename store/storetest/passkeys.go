package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/porthole/porthole/store"
)

// mkPasskey stores a passkey of u with credential ID cred, made a second
// after t0.
func mkPasskey(t *testing.T, s store.Store, u *store.User, cred string) *store.Passkey {
	t.Helper()
	p := &store.Passkey{UserID: u.ID, CredentialID: []byte(cred), PublicKey: []byte{0xa5, 0x01, 0x02}, AttestationFormat: "none",
		AAGUID: make([]byte, 16), Name: cred, CreatedAt: t0.Add(time.Second)}
	ok(t, "CreatePasskey "+cred, s.CreatePasskey(t.Context(), p))
	return p
}

// testPasskeys: a passkey is kept whole (bytes, flags, transports), is
// found by its credential ID, and is listed and deleted for its user
// only; its creation and deletion record the events given.
func testPasskeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	ann, eve := mkUser(t, s, "ann@example.com"), mkUser(t, s, "eve@example.com")
	p := &store.Passkey{UserID: ann.ID, CredentialID: []byte{0, 1, 2, 0xff, 0xfe}, PublicKey: []byte{0xa5, 1, 2, 3, 0x26},
		AttestationFormat: "packed", AAGUID: bytes.Repeat([]byte{0xad}, 16), SignCount: 4294967295,
		Transports: []string{"internal", "hybrid"}, UserVerified: true, BackupEligible: true, BackupState: true,
		Name: "laptop", CreatedAt: t0}
	ok(t, "CreatePasskey", s.CreatePasskey(with(ctx, ev("passkey_registered", "1")), p))
	wantPrefix(t, "passkey", p.ID, "psk")
	equal(t, "CreatedAt", p.CreatedAt, stored(t0))
	second := mkPasskey(t, s, ann, "second")

	got, err := s.PasskeyByCredentialID(ctx, []byte{0, 1, 2, 0xff, 0xfe})
	ok(t, "PasskeyByCredentialID", err)
	equal(t, "PasskeyByCredentialID", got, p)
	_, err = s.PasskeyByCredentialID(ctx, []byte{0, 1, 2})
	wantErr(t, "PasskeyByCredentialID of a prefix of one", err, store.ErrNotFound)
	list, err := s.ListPasskeys(ctx, ann.ID)
	ok(t, "ListPasskeys", err)
	equal(t, "ListPasskeys", list, []*store.Passkey{p, second})
	list, err = s.ListPasskeys(ctx, eve.ID)
	ok(t, "ListPasskeys", err)
	equal(t, "another user's ListPasskeys", list, []*store.Passkey{})

	wantErr(t, "DeletePasskey of another user's", errOf(s.DeletePasskey(ctx, eve.ID, p.ID, "")), store.ErrNotFound)
	checkDelete(t, "Passkey", func() error { return errOf(s.DeletePasskey(with(ctx, ev("passkey_removed", "1")), ann.ID, p.ID, "")) },
		func() error { return errOf(s.PasskeyByCredentialID(ctx, p.CredentialID)) })
	equal(t, "events", kinds(auditLog(t, s)), []string{"passkey_registered", "passkey_removed"})
	wantErr(t, "CreatePasskey of no user", s.CreatePasskey(ctx, &store.Passkey{UserID: "usr_nobody", CredentialID: []byte("x"),
		Name: "x"}), store.ErrNotFound)
}

// testPasskeyConflict: one credential ID is one passkey: registering it
// again, for its user or for another, is ErrConflict and changes
// nothing.
func testPasskeyConflict(t *testing.T, s store.Store) {
	ctx := t.Context()
	ann, eve := mkUser(t, s, "ann@example.com"), mkUser(t, s, "eve@example.com")
	p := mkPasskey(t, s, ann, "cred")
	for _, u := range []*store.User{eve, ann} {
		again := &store.Passkey{UserID: u.ID, CredentialID: []byte("cred"), PublicKey: []byte("other key"), AAGUID: make([]byte, 16), Name: "mine"}
		wantErr(t, "CreatePasskey of a taken credential ID by "+u.Email, s.CreatePasskey(ctx, again), store.ErrConflict)
	}
	got, err := s.PasskeyByCredentialID(ctx, []byte("cred"))
	ok(t, "PasskeyByCredentialID", err)
	equal(t, "the first registration", got, p)
	list, err := s.ListPasskeys(ctx, eve.ID)
	ok(t, "ListPasskeys", err)
	equal(t, "eve's passkeys", len(list), 0)
}

// testPasskeyUse: a use moves the sign count and records its time only
// over the count it read: of eight uses racing with the same count one
// wins, a use over a stale count changes nothing, and a passkey of
// another user, or gone, is not touched.
func testPasskeyUse(t *testing.T, s store.Store) {
	ctx := t.Context()
	ann, eve := mkUser(t, s, "ann@example.com"), mkUser(t, s, "eve@example.com")
	p := mkPasskey(t, s, ann, "cred")
	wins := race(8, func(i int) bool {
		use := *p
		use.SignCount, use.LastUsedAt, use.BackupState = uint32(10+i), t0.Add(time.Minute), true
		won, err := s.UsePasskey(ctx, &use, 0)
		ok(t, "UsePasskey", err)
		return won
	})
	equal(t, "uses won", trues(wins), 1)
	got, err := s.PasskeyByCredentialID(ctx, p.CredentialID)
	ok(t, "PasskeyByCredentialID", err)
	if got.SignCount < 10 || got.SignCount > 17 || !got.BackupState || !got.LastUsedAt.Equal(stored(t0.Add(time.Minute))) {
		t.Errorf("after a use: %s", show(got))
	}
	stale := *got
	stale.SignCount = got.SignCount + 5
	won, err := s.UsePasskey(ctx, &stale, got.SignCount-1)
	ok(t, "UsePasskey over a stale count", err)
	equal(t, "a use over a stale count", won, false)
	theirs := *got
	theirs.UserID, theirs.SignCount = eve.ID, got.SignCount+1
	_, err = s.UsePasskey(ctx, &theirs, got.SignCount)
	wantErr(t, "UsePasskey as another user", err, store.ErrNotFound)
	again, err := s.PasskeyByCredentialID(ctx, p.CredentialID)
	ok(t, "PasskeyByCredentialID", err)
	equal(t, "after refused uses", again, got)
	ok(t, "DeletePasskey", errOf(s.DeletePasskey(ctx, ann.ID, p.ID, "")))
	_, err = s.UsePasskey(ctx, got, got.SignCount)
	wantErr(t, "UsePasskey of a deleted passkey", err, store.ErrNotFound)
}

// testPasskeyEndsLogins: removing a passkey ends the logins signed in
// with it, but for the one kept (the login removing it), and no other:
// not the user's other logins, not another user's.
func testPasskeyEndsLogins(t *testing.T, s store.Store) {
	ctx := t.Context()
	ann, eve := mkUser(t, s, "ann@example.com"), mkUser(t, s, "eve@example.com")
	p, q := mkPasskey(t, s, ann, "laptop"), mkPasskey(t, s, ann, "phone")
	login := func(u *store.User, passkey string) *store.Token {
		t.Helper()
		tok := &store.Token{UserID: u.ID, Hash: randomHex(32), Name: "console", PasskeyID: passkey, ExpiresAt: t0.Add(time.Hour)}
		ok(t, "CreateToken", s.CreateToken(ctx, tok))
		return tok
	}
	stolen, removing, password, other := login(ann, p.ID), login(ann, p.ID), login(ann, ""), login(ann, q.ID)
	theirs := login(eve, p.ID) // a passkey ID on another user's login is no link to it
	got, err := s.TokenByHash(ctx, stolen.Hash, t0)
	ok(t, "TokenByHash", err)
	equal(t, "the token's passkey", got.PasskeyID, p.ID)

	ended, err := s.DeletePasskey(ctx, ann.ID, p.ID, removing.ID)
	ok(t, "DeletePasskey", err)
	equal(t, "logins ended", ended, []string{stolen.ID})
	_, err = s.TokenByHash(ctx, stolen.Hash, t0)
	wantErr(t, "TokenByHash of a login the removed passkey made", err, store.ErrNotFound)
	for what, tok := range map[string]*store.Token{"the login removing it": removing, "a password login": password,
		"another passkey's login": other, "another user's login": theirs} {
		ok(t, "TokenByHash of "+what, errOf(s.TokenByHash(ctx, tok.Hash, t0)))
	}
}

// testPasskeysGoWithUser: deleting a user deletes their passkeys, and a
// reset of their secrets does too; another user's stay.
func testPasskeysGoWithUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	ann, bob, eve := mkUser(t, s, "ann@example.com"), mkUser(t, s, "bob@example.com"), mkUser(t, s, "eve@example.com")
	mkPasskey(t, s, ann, "ann's")
	mkPasskey(t, s, bob, "bob's")
	kept := mkPasskey(t, s, eve, "eve's")
	ok(t, "ResetUserSecrets", s.ResetUserSecrets(ctx, ann.ID, "$argon2id$new", "NEWSECRETNEWSECR"))
	ok(t, "DeleteUser", s.DeleteUser(ctx, bob.ID, ""))
	for _, cred := range []string{"ann's", "bob's"} {
		_, err := s.PasskeyByCredentialID(ctx, []byte(cred))
		wantErr(t, "PasskeyByCredentialID of "+cred+" after a reset or deletion", err, store.ErrNotFound)
	}
	list, err := s.ListPasskeys(ctx, eve.ID)
	ok(t, "ListPasskeys", err)
	equal(t, "eve's passkeys", list, []*store.Passkey{kept})
	// The credential is free again: the reset user may register it anew.
	mkPasskey(t, s, ann, "ann's")
}

// testCeremonies: a ceremony is taken once, by one of several racing
// callers, only as its kind and before it expires; putting one again
// replaces it; it goes with its login; one long expired is forgotten by
// the next put.
func testCeremonies(t *testing.T, s store.Store) {
	ctx := t.Context()
	ann := mkUser(t, s, "ann@example.com")
	tok := &store.Token{UserID: ann.ID, Hash: randomHex(32)}
	ok(t, "CreateToken", s.CreateToken(ctx, tok))
	c := &store.Ceremony{ID: tok.ID + " register", Kind: store.CeremonyRegister, UserID: ann.ID, TokenID: tok.ID,
		Session: `{"challenge":"one"}`, CreatedAt: t0, ExpiresAt: t0.Add(5 * time.Minute)}
	ok(t, "PutCeremony", s.PutCeremony(ctx, c))
	_, err := s.TakeCeremony(ctx, c.ID, store.CeremonyReauth, t0)
	wantErr(t, "TakeCeremony as another kind", err, store.ErrNotFound)
	_, err = s.TakeCeremony(ctx, c.ID, store.CeremonyRegister, t0.Add(5*time.Minute))
	wantErr(t, "TakeCeremony at its expiry", err, store.ErrNotFound)

	type result struct {
		c   *store.Ceremony
		err error
	}
	results := race(8, func(int) result {
		got, err := s.TakeCeremony(ctx, c.ID, store.CeremonyRegister, t0.Add(time.Minute))
		return result{got, err}
	})
	taken := 0
	for _, r := range results {
		if r.err == nil {
			taken++
			equal(t, "the ceremony taken", r.c, c)
		} else {
			wantErr(t, "TakeCeremony by a loser", r.err, store.ErrNotFound)
		}
	}
	equal(t, "takers", taken, 1)

	// Put again: the second replaces the first.
	ok(t, "PutCeremony", s.PutCeremony(ctx, c))
	second := *c
	second.Session = `{"challenge":"two"}`
	ok(t, "PutCeremony again", s.PutCeremony(ctx, &second))
	got, err := s.TakeCeremony(ctx, c.ID, store.CeremonyRegister, t0)
	ok(t, "TakeCeremony", err)
	equal(t, "the later ceremony", got.Session, `{"challenge":"two"}`)

	// A login's ceremony goes with the login; a sign-in's has none.
	ok(t, "PutCeremony", s.PutCeremony(ctx, c))
	ok(t, "DeleteToken", s.DeleteToken(ctx, ann.ID, tok.ID))
	_, err = s.TakeCeremony(ctx, c.ID, store.CeremonyRegister, t0)
	wantErr(t, "TakeCeremony after its login ended", err, store.ErrNotFound)
	wantErr(t, "PutCeremony for a login that does not exist", s.PutCeremony(ctx, c), store.ErrNotFound)
	signIn := &store.Ceremony{ID: randomHex(32), Kind: store.CeremonyLogin, Session: "{}", CreatedAt: t0, ExpiresAt: t0.Add(5 * time.Minute)}
	ok(t, "PutCeremony of a sign-in", s.PutCeremony(ctx, signIn))
	// A later put forgets the sign-in once it expired long enough ago,
	// not before: another node's clock may be behind.
	soon := &store.Ceremony{ID: randomHex(32), Kind: store.CeremonyLogin, Session: "{}", CreatedAt: t0.Add(30 * time.Minute), ExpiresAt: t0.Add(35 * time.Minute)}
	ok(t, "PutCeremony", s.PutCeremony(ctx, soon))
	_, err = s.TakeCeremony(ctx, signIn.ID, store.CeremonyLogin, t0)
	ok(t, "TakeCeremony, by a clock behind, of a sign-in another put found expired", err)
	ok(t, "PutCeremony of a sign-in", s.PutCeremony(ctx, signIn))
	late := t0.Add(5*time.Minute + store.CeremonyPurgeAfter)
	later := &store.Ceremony{ID: randomHex(32), Kind: store.CeremonyLogin, Session: "{}", CreatedAt: late, ExpiresAt: late.Add(5 * time.Minute)}
	ok(t, "PutCeremony", s.PutCeremony(ctx, later))
	_, err = s.TakeCeremony(ctx, signIn.ID, store.CeremonyLogin, t0)
	wantErr(t, "TakeCeremony of a sign-in long expired at a later put", err, store.ErrNotFound)
	got, err = s.TakeCeremony(ctx, later.ID, store.CeremonyLogin, late)
	ok(t, "TakeCeremony of the later sign-in", err)
	equal(t, "the sign-in's user and token", []string{got.UserID, got.TokenID}, []string{"", ""})
}
