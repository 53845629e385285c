package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/porthole/porthole/store"
)

func testEnrollmentTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := mkFleet(t, s, "alpha"), mkFleet(t, s, "bravo")
	ann := mkUser(t, s, "ann@example.com")
	et := &store.EnrollmentToken{FleetID: a.ID, Hash: randomHex(32), UsesLeft: 3, MaxUses: 5,
		CreatedBy: ann.ID, CreatedAt: t0.Add(-time.Minute), ExpiresAt: t0.Add(time.Hour)}
	ok(t, "CreateEnrollmentToken", s.CreateEnrollmentToken(ctx, et))
	wantPrefix(t, "enrollment token", et.ID, "enr")
	other := mkEnrollmentToken(t, s, a.ID, 1)
	list, err := s.ListEnrollmentTokens(ctx, a.ID)
	ok(t, "ListEnrollmentTokens", err)
	equal(t, "ListEnrollmentTokens", list, []*store.EnrollmentToken{et, other})

	for _, uses := range [][2]int{{0, 0}, {3, 2}, {-1, 1}} {
		err := s.CreateEnrollmentToken(ctx, &store.EnrollmentToken{FleetID: a.ID, Hash: randomHex(32), UsesLeft: uses[0], MaxUses: uses[1]})
		if err == nil {
			t.Errorf("CreateEnrollmentToken with %d of %d uses left: no error; want one", uses[0], uses[1])
		}
	}
	// Fleets are separate: bravo cannot delete alpha's token.
	wantErr(t, "DeleteEnrollmentToken through another fleet", s.DeleteEnrollmentToken(ctx, b.ID, et.ID), store.ErrNotFound)
	checkDelete(t, "EnrollmentToken", func() error { return s.DeleteEnrollmentToken(ctx, a.ID, et.ID) },
		func() error { return errOf(enroll(ctx, s, et.Hash, "dev1")) })
	list, err = s.ListEnrollmentTokens(ctx, a.ID)
	ok(t, "ListEnrollmentTokens", err)
	equal(t, "ListEnrollmentTokens after delete", list, []*store.EnrollmentToken{other})
}

func testEnroll(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := mkFleet(t, s, "alpha"), mkFleet(t, s, "bravo")
	et := mkEnrollmentToken(t, s, a.ID, 2)

	// The device asks for bravo, but the token is alpha's: alpha it is.
	d := &store.Device{FleetID: b.ID, FleetName: "bravo", Name: "dev1", PublicKey: "ssh-ed25519 AAAA",
		Labels: map[string]string{"site": "lab"}, LastSeen: t0.Add(time.Minute), Online: true}
	var certFleet *store.Fleet
	ok(t, "EnrollDevice", s.EnrollDevice(ctx, et.Hash, t0, d, func(f *store.Fleet) (string, error) {
		certFleet = f
		return certFor(f, "dev1"), nil
	}))
	equal(t, "fleet passed to mkCert", certFleet, a)
	wantPrefix(t, "device", d.ID, "dev")
	equal(t, "enrolled device", *d, store.Device{ID: d.ID, FleetID: a.ID, FleetName: "alpha", Name: "dev1",
		PublicKey: "ssh-ed25519 AAAA", HostCert: certFor(a, "dev1"), Labels: map[string]string{"site": "lab"},
		EnrolledAt: stored(t0), LastSeen: stored(t0.Add(time.Minute)), Online: true})
	got, err := s.GetDevice(ctx, d.ID)
	ok(t, "GetDevice", err)
	equal(t, "GetDevice", got, d)
	equal(t, "uses left", usesLeft(t, s, a.ID, et.ID), 1)

	mustEnroll(t, s, et.Hash, "dev2")
	equal(t, "uses left", usesLeft(t, s, a.ID, et.ID), 0)
	_, err = enroll(ctx, s, et.Hash, "dev3")
	wantErr(t, "EnrollDevice with a used-up token", err, store.ErrTokenUsedUp)
}

// testEnrollRefused: unknown, expired and used-up tokens enroll nothing
// and spend nothing.
func testEnrollRefused(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mkFleet(t, s, "alpha")
	live := mkEnrollmentToken(t, s, a.ID, 1)
	expired := &store.EnrollmentToken{FleetID: a.ID, Hash: randomHex(32), UsesLeft: 3, MaxUses: 3, ExpiresAt: t0}
	ok(t, "CreateEnrollmentToken", s.CreateEnrollmentToken(ctx, expired))
	usedUp := &store.EnrollmentToken{FleetID: a.ID, Hash: randomHex(32), UsesLeft: 0, MaxUses: 3}
	ok(t, "CreateEnrollmentToken", s.CreateEnrollmentToken(ctx, usedUp))

	for _, tt := range []struct {
		name string
		hash string
		want error
	}{
		{"unknown token", randomHex(32), store.ErrNotFound},
		{"token expiring at that instant", expired.Hash, store.ErrTokenExpired},
		{"used-up token", usedUp.Hash, store.ErrTokenUsedUp},
	} {
		_, err := enroll(ctx, s, tt.hash, "dev1")
		wantErr(t, "EnrollDevice with "+tt.name, err, tt.want)
	}
	equal(t, "uses left of the expired token", usesLeft(t, s, a.ID, expired.ID), 3)
	ds, err := s.ListDevices(ctx, store.DeviceFilter{})
	ok(t, "ListDevices", err)
	equal(t, "devices", names(ds), []string{})
	// A token that never expires still works a century on.
	forever := &store.EnrollmentToken{FleetID: a.ID, Hash: randomHex(32), UsesLeft: 1, MaxUses: 1}
	ok(t, "CreateEnrollmentToken", s.CreateEnrollmentToken(ctx, forever))
	err = s.EnrollDevice(ctx, forever.Hash, t0.AddDate(100, 0, 0), &store.Device{Name: "dev1"},
		func(*store.Fleet) (string, error) { return "cert", nil })
	ok(t, "EnrollDevice with a token without expiry", err)
	equal(t, "uses left of the live token", usesLeft(t, s, a.ID, live.ID), 1)
}

// testEnrollDuplicateName: a name taken in the fleet is ErrConflict and
// the token keeps its use; the same name in another fleet is fine.
func testEnrollDuplicateName(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := mkFleet(t, s, "alpha"), mkFleet(t, s, "bravo")
	et := mkEnrollmentToken(t, s, a.ID, 5)
	first := mustEnroll(t, s, et.Hash, "dev1")

	_, err := enroll(ctx, s, et.Hash, "dev1")
	wantErr(t, "EnrollDevice with a taken name", err, store.ErrConflict)
	equal(t, "uses left after the refused enrollment", usesLeft(t, s, a.ID, et.ID), 4)
	got, err := s.GetDeviceByName(ctx, a.ID, "dev1")
	ok(t, "GetDeviceByName", err)
	equal(t, "the first dev1", got, first)

	d := &store.Device{ID: first.ID, Name: "dev9"}
	err = s.EnrollDevice(ctx, et.Hash, t0, d, func(*store.Fleet) (string, error) { return "cert", nil })
	wantErr(t, "EnrollDevice with a taken ID", err, store.ErrConflict)

	mustEnroll(t, s, mkEnrollmentToken(t, s, b.ID, 1).Hash, "dev1")
	equal(t, "uses left", usesLeft(t, s, a.ID, et.ID), 4)
}

// testEnrollCertFails: if the host certificate cannot be made, nothing
// changes: no device, the use unspent, the caller's Device untouched.
func testEnrollCertFails(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mkFleet(t, s, "alpha")
	et := mkEnrollmentToken(t, s, a.ID, 1)
	errCA := errors.New("host CA unavailable")
	d := &store.Device{Name: "dev1", PublicKey: "ssh-ed25519 AAAA"}
	before := *d
	err := s.EnrollDevice(ctx, et.Hash, t0, d, func(*store.Fleet) (string, error) { return "", errCA })
	wantErr(t, "EnrollDevice with failing mkCert", err, errCA)
	equal(t, "Device after the failed enrollment", *d, before)
	equal(t, "uses left", usesLeft(t, s, a.ID, et.ID), 1)
	_, err = s.GetDeviceByName(ctx, a.ID, "dev1")
	wantErr(t, "GetDeviceByName", err, store.ErrNotFound)
	mustEnroll(t, s, et.Hash, "dev1")
}

// testEnrollConcurrent: eight devices racing for a token's last uses:
// exactly as many enroll as there were uses, the rest are ErrTokenUsedUp.
func testEnrollConcurrent(t *testing.T, s store.Store) {
	a := mkFleet(t, s, "alpha")
	for _, uses := range []int{1, 3} {
		et := mkEnrollmentToken(t, s, a.ID, uses)
		errs := race(8, func(i int) error {
			_, err := enroll(t.Context(), s, et.Hash, fmt.Sprintf("dev-%d-%d", uses, i))
			return err
		})
		enrolled := 0
		for _, err := range errs {
			switch {
			case err == nil:
				enrolled++
			case !errors.Is(err, store.ErrTokenUsedUp):
				t.Errorf("concurrent EnrollDevice: %v; want nil or ErrTokenUsedUp", err)
			}
		}
		if enrolled != uses {
			t.Errorf("%d of 8 concurrent enrollments with a %d-use token succeeded; want %d", enrolled, uses, uses)
		}
		equal(t, "uses left", usesLeft(t, s, a.ID, et.ID), 0)
	}
	ds, err := s.ListDevices(t.Context(), store.DeviceFilter{})
	ok(t, "ListDevices", err)
	equal(t, "devices enrolled", len(ds), 4)
}
