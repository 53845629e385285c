package storetest

import (
	"testing"
	"time"

	"github.com/porthole/porthole/store"
)

func testFleets(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := mkFleet(t, s, "bravo")
	wantPrefix(t, "fleet", b.ID, "flt")
	if b.CreatedAt.IsZero() || b.CreatedAt.Location().String() != "UTC" {
		t.Errorf("CreatedAt = %v; want now, UTC", b.CreatedAt)
	}
	a := &store.Fleet{ID: "flt_chosen", Name: "alpha", CreatedAt: t0}
	ok(t, "CreateFleet with ID", s.CreateFleet(ctx, a))
	equal(t, "created fleet", *a, store.Fleet{ID: "flt_chosen", Name: "alpha", CreatedAt: stored(t0)})

	got, err := s.GetFleet(ctx, a.ID)
	ok(t, "GetFleet", err)
	equal(t, "GetFleet", got, a)
	got, err = s.GetFleetByName(ctx, "bravo")
	ok(t, "GetFleetByName", err)
	equal(t, "GetFleetByName", got, b)
	all, err := s.ListFleets(ctx)
	ok(t, "ListFleets", err)
	equal(t, "ListFleets", all, []*store.Fleet{a, b})

	checkDelete(t, "Fleet", func() error { return s.DeleteFleet(ctx, a.ID) },
		func() error { return errOf(s.GetFleet(ctx, a.ID)) })
}

func testUsers(t *testing.T, s store.Store) {
	ctx := t.Context()
	n, err := s.CountUsers(ctx)
	ok(t, "CountUsers", err)
	equal(t, "CountUsers of a new store", n, 0)

	admin := &store.User{Email: "root@example.com", PasswordHash: "$argon2id$v=19$x", TOTPSecret: "JBSWY3DPEHPK3PXP",
		TOTPLastStep: 7, Admin: true, CreatedAt: t0}
	ok(t, "CreateUser", s.CreateUser(ctx, admin))
	wantPrefix(t, "user", admin.ID, "usr")
	equal(t, "CreatedAt", admin.CreatedAt, stored(t0))
	bob := mkUser(t, s, "bob@example.com")

	got, err := s.GetUser(ctx, admin.ID)
	ok(t, "GetUser", err)
	equal(t, "GetUser", got, admin)
	got, err = s.GetUserByEmail(ctx, "bob@example.com")
	ok(t, "GetUserByEmail", err)
	equal(t, "GetUserByEmail", got, bob)
	all, err := s.ListUsers(ctx)
	ok(t, "ListUsers", err)
	equal(t, "ListUsers", all, []*store.User{bob, admin})
	n, err = s.CountUsers(ctx)
	ok(t, "CountUsers", err)
	equal(t, "CountUsers", n, 2)

	// A reset replaces both secrets, starts the TOTP steps again and ends
	// every login of the user, no one else's.
	bobTok := &store.Token{UserID: bob.ID, Hash: "h-bob", Name: "cli", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	adminTok := &store.Token{UserID: admin.ID, Hash: "h-admin", Name: "cli", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	ok(t, "CreateToken", s.CreateToken(ctx, bobTok))
	ok(t, "CreateToken", s.CreateToken(ctx, adminTok))
	_, err = s.AdvanceTOTPStep(ctx, bob.ID, 99)
	ok(t, "AdvanceTOTPStep", err)
	ok(t, "ResetUserSecrets", s.ResetUserSecrets(ctx, bob.ID, "$argon2id$new", "NEWSECRETNEWSECR"))
	got, err = s.GetUser(ctx, bob.ID)
	ok(t, "GetUser after a reset", err)
	if got.PasswordHash != "$argon2id$new" || got.TOTPSecret != "NEWSECRETNEWSECR" || got.TOTPLastStep != 0 {
		t.Errorf("after a reset: %+v", got)
	}
	toks, err := s.ListTokens(ctx, bob.ID)
	ok(t, "ListTokens", err)
	equal(t, "bob's tokens after a reset", len(toks), 0)
	toks, err = s.ListTokens(ctx, admin.ID)
	ok(t, "ListTokens", err)
	equal(t, "another user's tokens after bob's reset", len(toks), 1)
	wantErr(t, "ResetUserSecrets of no one", s.ResetUserSecrets(ctx, "usr_nobody", "x", "y"), store.ErrNotFound)

	checkDelete(t, "User", func() error { return s.DeleteUser(ctx, bob.ID, "") },
		func() error { return errOf(s.GetUser(ctx, bob.ID)) })
}

func testRoles(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := mkFleet(t, s, "alpha"), mkFleet(t, s, "bravo")
	ann, bob := mkUser(t, s, "ann@example.com"), mkUser(t, s, "bob@example.com")

	ok(t, "SetRole", s.SetRole(ctx, b.ID, bob.ID, store.RoleOwner))
	ok(t, "SetRole", s.SetRole(ctx, a.ID, bob.ID, store.RoleAuditor))
	ok(t, "SetRole", s.SetRole(ctx, a.ID, ann.ID, store.RoleOwner))
	ok(t, "SetRole replacing", s.SetRole(ctx, a.ID, bob.ID, store.RoleOperator))

	ms, err := s.Memberships(ctx, bob.ID)
	ok(t, "Memberships", err)
	equal(t, "Memberships", ms, []*store.Membership{
		{FleetID: a.ID, FleetName: "alpha", UserID: bob.ID, Email: bob.Email, Role: store.RoleOperator},
		{FleetID: b.ID, FleetName: "bravo", UserID: bob.ID, Email: bob.Email, Role: store.RoleOwner},
	})
	ms, err = s.FleetMembers(ctx, a.ID)
	ok(t, "FleetMembers", err)
	equal(t, "FleetMembers", ms, []*store.Membership{
		{FleetID: a.ID, FleetName: "alpha", UserID: ann.ID, Email: ann.Email, Role: store.RoleOwner},
		{FleetID: a.ID, FleetName: "alpha", UserID: bob.ID, Email: bob.Email, Role: store.RoleOperator},
	})

	if err := s.SetRole(ctx, a.ID, ann.ID, "root"); err == nil {
		t.Errorf("SetRole root: no error; want one")
	}
	ok(t, "RemoveRole", s.RemoveRole(ctx, a.ID, ann.ID))
	wantErr(t, "RemoveRole again", s.RemoveRole(ctx, a.ID, ann.ID), store.ErrNotFound)
	ms, err = s.Memberships(ctx, ann.ID)
	ok(t, "Memberships", err)
	equal(t, "Memberships after RemoveRole (and after SetRole root)", ms, []*store.Membership{})
}

// testTOTPReplay: a TOTP step is accepted once, and never an earlier one.
func testTOTPReplay(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := mkUser(t, s, "ann@example.com")
	for _, tt := range []struct {
		step int64
		want bool
	}{{100, true}, {100, false}, {99, false}, {0, false}, {101, true}, {101, false}} {
		got, err := s.AdvanceTOTPStep(ctx, u.ID, tt.step)
		ok(t, "AdvanceTOTPStep", err)
		if got != tt.want {
			t.Errorf("AdvanceTOTPStep(%d) = %v; want %v", tt.step, got, tt.want)
		}
	}
	got, err := s.GetUser(ctx, u.ID)
	ok(t, "GetUser", err)
	equal(t, "TOTPLastStep", got.TOTPLastStep, 101)
}

// testTOTPConcurrent: of eight logins racing with the same code, exactly
// one gets in.
func testTOTPConcurrent(t *testing.T, s store.Store) {
	u := mkUser(t, s, "ann@example.com")
	type result struct {
		won bool
		err error
	}
	results := race(8, func(int) result {
		won, err := s.AdvanceTOTPStep(t.Context(), u.ID, 5000)
		return result{won, err}
	})
	wins := 0
	for _, r := range results {
		ok(t, "AdvanceTOTPStep", r.err)
		if r.won {
			wins++
		}
	}
	if wins != 1 {
		t.Errorf("%d of 8 concurrent uses of one TOTP step were accepted; want exactly 1", wins)
	}
}
