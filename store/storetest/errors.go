package storetest

import (
	"testing"

	"github.com/porthole/porthole/store"
)

// errOf drops a result to keep its error, so that table rows can call
// methods that return two values.
func errOf[T any](_ T, err error) error { return err }

// checkDelete deletes with del, then checks that get no longer finds the
// row and that deleting again is ErrNotFound.
func checkDelete(t *testing.T, what string, del, get func() error) {
	t.Helper()
	ok(t, "Delete"+what, del())
	wantErr(t, "lookup of the deleted "+what, get(), store.ErrNotFound)
	wantErr(t, "Delete"+what+" again", del(), store.ErrNotFound)
}

// testNotFound: every method that names a row or refers to one says
// ErrNotFound when it does not exist.
func testNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	f, u := mkFleet(t, s, "alpha"), mkUser(t, s, "ann@example.com")
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"GetFleet", errOf(s.GetFleet(ctx, "flt_missing"))},
		{"GetFleetByName", errOf(s.GetFleetByName(ctx, "missing"))},
		{"DeleteFleet", s.DeleteFleet(ctx, "flt_missing")},
		{"GetUser", errOf(s.GetUser(ctx, "usr_missing"))},
		{"GetUserByEmail", errOf(s.GetUserByEmail(ctx, "nobody@example.com"))},
		{"DeleteUser", s.DeleteUser(ctx, "usr_missing", "")},
		{"AdvanceTOTPStep", errOf(s.AdvanceTOTPStep(ctx, "usr_missing", 5))},
		{"SetRole in a missing fleet", s.SetRole(ctx, "flt_missing", u.ID, store.RoleOwner)},
		{"SetRole for a missing user", s.SetRole(ctx, f.ID, "usr_missing", store.RoleOwner)},
		{"RemoveRole", s.RemoveRole(ctx, f.ID, u.ID)},
		{"CreateToken for a missing user", s.CreateToken(ctx, &store.Token{UserID: "usr_missing", Hash: randomHex(32)})},
		{"TokenByHash", errOf(s.TokenByHash(ctx, randomHex(32), t0))},
		{"TouchToken", s.TouchToken(ctx, "tok_missing", t0)},
		{"DeleteToken", s.DeleteToken(ctx, u.ID, "tok_missing")},
		{"CreateEnrollmentToken in a missing fleet", s.CreateEnrollmentToken(ctx,
			&store.EnrollmentToken{FleetID: "flt_missing", Hash: randomHex(32), UsesLeft: 1, MaxUses: 1})},
		{"CreateEnrollmentToken by a missing user", s.CreateEnrollmentToken(ctx,
			&store.EnrollmentToken{FleetID: f.ID, Hash: randomHex(32), UsesLeft: 1, MaxUses: 1, CreatedBy: "usr_missing"})},
		{"DeleteEnrollmentToken", s.DeleteEnrollmentToken(ctx, f.ID, "enr_missing")},
		{"EnrollDevice with an unknown token", errOf(enroll(ctx, s, randomHex(32), "dev1"))},
		{"GetDevice", errOf(s.GetDevice(ctx, "dev_missing"))},
		{"GetDeviceByName", errOf(s.GetDeviceByName(ctx, f.ID, "dev1"))},
		{"SetDeviceLabels", s.SetDeviceLabels(ctx, "dev_missing", nil)},
		{"DeleteDevice", s.DeleteDevice(ctx, "dev_missing")},
	} {
		wantErr(t, tt.name, tt.err, store.ErrNotFound)
	}
}

// testConflict: every unique name, key and ID that is taken says
// ErrConflict.
func testConflict(t *testing.T, s store.Store) {
	ctx := t.Context()
	f, u := mkFleet(t, s, "alpha"), mkUser(t, s, "ann@example.com")
	tok := &store.Token{UserID: u.ID, Hash: randomHex(32)}
	ok(t, "CreateToken", s.CreateToken(ctx, tok))
	et := mkEnrollmentToken(t, s, f.ID, 1)
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"CreateFleet with a taken name", s.CreateFleet(ctx, &store.Fleet{Name: f.Name})},
		{"CreateFleet with a taken ID", s.CreateFleet(ctx, &store.Fleet{ID: f.ID, Name: "bravo"})},
		{"CreateUser with a taken email", s.CreateUser(ctx, &store.User{Email: u.Email})},
		{"CreateUser with a taken ID", s.CreateUser(ctx, &store.User{ID: u.ID, Email: "bob@example.com"})},
		{"CreateToken with a taken hash", s.CreateToken(ctx, &store.Token{UserID: u.ID, Hash: tok.Hash})},
		{"CreateToken with a taken ID", s.CreateToken(ctx, &store.Token{ID: tok.ID, UserID: u.ID, Hash: randomHex(32)})},
		{"CreateEnrollmentToken with a taken hash", s.CreateEnrollmentToken(ctx,
			&store.EnrollmentToken{FleetID: f.ID, Hash: et.Hash, UsesLeft: 1, MaxUses: 1})},
		{"CreateEnrollmentToken with a taken ID", s.CreateEnrollmentToken(ctx,
			&store.EnrollmentToken{ID: et.ID, FleetID: f.ID, Hash: randomHex(32), UsesLeft: 1, MaxUses: 1})},
	} {
		wantErr(t, tt.name, tt.err, store.ErrConflict)
	}
}
