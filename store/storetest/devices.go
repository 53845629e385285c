package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole/audit"

	"github.com/porthole/porthole/store"
)

func testDevices(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := mkFleet(t, s, "alpha"), mkFleet(t, s, "bravo")
	d := mustEnroll(t, s, mkEnrollmentToken(t, s, a.ID, 1).Hash, "dev1")
	mustEnroll(t, s, mkEnrollmentToken(t, s, b.ID, 1).Hash, "dev2")

	got, err := s.GetDeviceByName(ctx, a.ID, "dev1")
	ok(t, "GetDeviceByName", err)
	equal(t, "GetDeviceByName", got, d)
	equal(t, "never seen", got.LastSeen.IsZero() && !got.Online, true)
	// Fleets are separate: bravo's dev2 is not found through alpha.
	_, err = s.GetDeviceByName(ctx, a.ID, "dev2")
	wantErr(t, "GetDeviceByName of another fleet's device", err, store.ErrNotFound)

	checkDelete(t, "Device", func() error { return s.DeleteDevice(ctx, d.ID) },
		func() error { return errOf(s.GetDevice(ctx, d.ID)) })
}

func testDeviceLabels(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mkFleet(t, s, "alpha")
	d := mustEnroll(t, s, mkEnrollmentToken(t, s, a.ID, 1).Hash, "dev1")
	equal(t, "labels of a new device", d.Labels, map[string]string(nil))

	for _, labels := range []map[string]string{
		{"site": "lab", "rack": "3"},
		{"quote\"": "back\\slash", "unicode": "Zürich ☕", "empty": "", "sql": "'); DROP TABLE devices; --"},
		nil,
	} {
		ok(t, "SetDeviceLabels", s.SetDeviceLabels(ctx, d.ID, labels))
		got, err := s.GetDevice(ctx, d.ID)
		ok(t, "GetDevice", err)
		equal(t, "labels", got.Labels, labels)
	}
	ok(t, "SetDeviceLabels empty", s.SetDeviceLabels(ctx, d.ID, map[string]string{}))
	got, err := s.GetDevice(ctx, d.ID)
	ok(t, "GetDevice", err)
	equal(t, "labels after setting none", got.Labels, map[string]string(nil))
}

// testDeviceFilter: nil FleetIDs is every fleet, an empty list none; a
// fleet list never leaks another fleet's devices, even when FleetName names
// one.
func testDeviceFilter(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b, c := mkFleet(t, s, "alpha"), mkFleet(t, s, "bravo"), mkFleet(t, s, "charlie")
	for _, f := range []*store.Fleet{c, b, a} {
		et := mkEnrollmentToken(t, s, f.ID, 2)
		mustEnroll(t, s, et.Hash, "dev2")
		mustEnroll(t, s, et.Hash, "dev1")
	}
	for _, tt := range []struct {
		name   string
		filter store.DeviceFilter
		want   []string
	}{
		{"all", store.DeviceFilter{},
			[]string{"alpha/dev1", "alpha/dev2", "bravo/dev1", "bravo/dev2", "charlie/dev1", "charlie/dev2"}},
		{"no fleets", store.DeviceFilter{FleetIDs: []string{}}, []string{}},
		{"no fleets, by name", store.DeviceFilter{FleetIDs: []string{}, Name: "dev1"}, []string{}},
		{"one fleet", store.DeviceFilter{FleetIDs: []string{b.ID}}, []string{"bravo/dev1", "bravo/dev2"}},
		{"two fleets", store.DeviceFilter{FleetIDs: []string{c.ID, a.ID}},
			[]string{"alpha/dev1", "alpha/dev2", "charlie/dev1", "charlie/dev2"}},
		{"by name", store.DeviceFilter{Name: "dev2"}, []string{"alpha/dev2", "bravo/dev2", "charlie/dev2"}},
		{"by name in a fleet", store.DeviceFilter{FleetIDs: []string{a.ID}, Name: "dev2"}, []string{"alpha/dev2"}},
		{"by fleet name", store.DeviceFilter{FleetName: "bravo"}, []string{"bravo/dev1", "bravo/dev2"}},
		{"by fleet name and name", store.DeviceFilter{FleetName: "charlie", Name: "dev1"}, []string{"charlie/dev1"}},
		{"fleet name outside the fleets", store.DeviceFilter{FleetIDs: []string{a.ID}, FleetName: "bravo"}, []string{}},
		{"missing fleet name", store.DeviceFilter{FleetName: "delta"}, []string{}},
		{"missing name", store.DeviceFilter{Name: "dev3"}, []string{}},
		{"missing fleet", store.DeviceFilter{FleetIDs: []string{"flt_missing"}}, []string{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ds, err := s.ListDevices(ctx, tt.filter)
			ok(t, "ListDevices", err)
			equal(t, "ListDevices", names(ds), tt.want)
		})
	}
}

// testDeleteFleetCascades: a fleet's devices, enrollment tokens and roles
// go with it; its members and other fleets stay.
func testDeleteFleetCascades(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := mkFleet(t, s, "alpha"), mkFleet(t, s, "bravo")
	ann := mkUser(t, s, "ann@example.com")
	ok(t, "SetRole", s.SetRole(ctx, a.ID, ann.ID, store.RoleOwner))
	ok(t, "SetRole", s.SetRole(ctx, b.ID, ann.ID, store.RoleAuditor))
	et := mkEnrollmentToken(t, s, a.ID, 2)
	d := mustEnroll(t, s, et.Hash, "dev1")
	kept := mustEnroll(t, s, mkEnrollmentToken(t, s, b.ID, 1).Hash, "dev1")

	ok(t, "DeleteFleet", s.DeleteFleet(ctx, a.ID))
	_, err := s.GetDevice(ctx, d.ID)
	wantErr(t, "GetDevice of the deleted fleet", err, store.ErrNotFound)
	_, err = enroll(ctx, s, et.Hash, "dev2")
	wantErr(t, "EnrollDevice with the deleted fleet's token", err, store.ErrNotFound)
	ets, err := s.ListEnrollmentTokens(ctx, a.ID)
	ok(t, "ListEnrollmentTokens", err)
	equal(t, "enrollment tokens of the deleted fleet", len(ets), 0)
	ms, err := s.Memberships(ctx, ann.ID)
	ok(t, "Memberships", err)
	equal(t, "Memberships", ms, []*store.Membership{{FleetID: b.ID, FleetName: "bravo", UserID: ann.ID, Email: ann.Email, Role: store.RoleAuditor}})

	_, err = s.GetUser(ctx, ann.ID)
	ok(t, "GetUser of the deleted fleet's member", err)
	got, err := s.GetDevice(ctx, kept.ID)
	ok(t, "GetDevice of another fleet", err)
	equal(t, "other fleet's device", got, kept)
}

// testDeleteUserByAdmin: a deletion on behalf of an administrator needs
// them to still be one as it happens. Two administrators deleting each
// other at the same moment (the attack: leave the server with none) never
// both succeed: one deletion goes through, the other is refused.
func testDeleteUserByAdmin(t *testing.T, s store.Store) {
	ctx := t.Context()
	eng := mkUser(t, s, "eng@example.com")
	for i := range 10 {
		a := &store.User{Email: fmt.Sprintf("a%d@example.com", i), PasswordHash: "x", TOTPSecret: "y", Admin: true}
		b := &store.User{Email: fmt.Sprintf("b%d@example.com", i), PasswordHash: "x", TOTPSecret: "y", Admin: true}
		ok(t, "CreateUser", s.CreateUser(ctx, a))
		ok(t, "CreateUser", s.CreateUser(ctx, b))
		errs := make([]error, 2)
		var wg sync.WaitGroup
		wg.Go(func() { errs[0] = s.DeleteUser(ctx, b.ID, a.ID) })
		wg.Go(func() { errs[1] = s.DeleteUser(ctx, a.ID, b.ID) })
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("round %d: two administrators deleting each other: %v and %v; want one deleted, one refused", i, errs[0], errs[1])
		}
		for _, err := range errs {
			if err != nil && !errors.Is(err, store.ErrNotAdmin) {
				t.Fatalf("round %d: the refused deletion failed with %v; want ErrNotAdmin", i, err)
			}
		}
	}
	// Nor may an engineer, or someone deleted, delete anyone.
	wantErr(t, "DeleteUser by an engineer", s.DeleteUser(ctx, eng.ID, eng.ID), store.ErrNotAdmin)
	wantErr(t, "DeleteUser by no one", s.DeleteUser(ctx, eng.ID, "usr_nobody"), store.ErrNotAdmin)
	ok(t, "GetUser of the engineer no one could delete", errOf(s.GetUser(ctx, eng.ID)))
}

// testDeleteUserCascades: a user's tokens and roles go with them; the
// enrollment tokens they made stay, with no creator.
func testDeleteUserCascades(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mkFleet(t, s, "alpha")
	ann, bob := mkUser(t, s, "ann@example.com"), mkUser(t, s, "bob@example.com")
	ok(t, "SetRole", s.SetRole(ctx, a.ID, ann.ID, store.RoleOwner))
	ok(t, "SetRole", s.SetRole(ctx, a.ID, bob.ID, store.RoleOperator))
	tok := &store.Token{UserID: ann.ID, Hash: randomHex(32)}
	ok(t, "CreateToken", s.CreateToken(ctx, tok))
	et := &store.EnrollmentToken{FleetID: a.ID, Hash: randomHex(32), UsesLeft: 1, MaxUses: 1, CreatedBy: ann.ID}
	ok(t, "CreateEnrollmentToken", s.CreateEnrollmentToken(ctx, et))

	ok(t, "DeleteUser", s.DeleteUser(ctx, ann.ID, ""))
	_, err := s.TokenByHash(ctx, tok.Hash, t0)
	wantErr(t, "TokenByHash of the deleted user's token", err, store.ErrNotFound)
	ms, err := s.FleetMembers(ctx, a.ID)
	ok(t, "FleetMembers", err)
	equal(t, "FleetMembers", ms, []*store.Membership{{FleetID: a.ID, FleetName: "alpha", UserID: bob.ID, Email: bob.Email, Role: store.RoleOperator}})
	ets, err := s.ListEnrollmentTokens(ctx, a.ID)
	ok(t, "ListEnrollmentTokens", err)
	et.CreatedBy = ""
	equal(t, "enrollment tokens", ets, []*store.EnrollmentToken{et})
	mustEnroll(t, s, et.Hash, "dev1")
}

// testDeviceAgent: what a device's agent reports is kept whole, replaced
// by its next report, with the audit events given, and on that device
// only; a device that never reported reads as such.
func testDeviceAgent(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mkFleet(t, s, "alpha")
	et := mkEnrollmentToken(t, s, a.ID, 2)
	d, other := mustEnroll(t, s, et.Hash, "dev1"), mustEnroll(t, s, et.Hash, "dev2")
	equal(t, "a new device's agent", d.Agent.Reported(), false)

	for _, info := range []store.AgentInfo{
		{Version: "1.2.0", Capabilities: []string{"relay2", "policy"}, Consent: "manual", AllowPorts: []int{22, 8080}, ReportedAt: t0},
		{Version: "'); DROP TABLE devices; --", Capabilities: []string{}, Consent: "auto", AllowPorts: []int{}, ReportedAt: t0.Add(time.Minute)},
		{Version: "1.3.0", Capabilities: []string{"relay2"}, Consent: "approve", AllowPorts: []int{22}, ReportedAt: t0.Add(2 * time.Minute)},
	} {
		ok(t, "SetDeviceAgent", s.SetDeviceAgent(with(ctx, ev(audit.ConsentReported, info.Consent)), d.ID, info))
		info.ReportedAt = info.ReportedAt.UTC().Truncate(time.Millisecond) // as the store keeps times
		got, err := s.GetDevice(ctx, d.ID)
		ok(t, "GetDevice", err)
		equal(t, "agent", got.Agent, info)
		ds, err := s.ListDevices(ctx, store.DeviceFilter{Name: "dev1"})
		ok(t, "ListDevices", err)
		equal(t, "agent listed", ds[0].Agent, info)
	}
	got, err := s.GetDevice(ctx, other.ID)
	ok(t, "GetDevice", err)
	equal(t, "the other device's agent", got.Agent, store.AgentInfo{})
	var kinds []string
	for _, e := range auditLog(t, s) {
		if e.Kind == audit.ConsentReported {
			kinds = append(kinds, e.Detail["n"])
		}
	}
	equal(t, "consent events", kinds, []string{"manual", "auto", "approve"})
	wantErr(t, "SetDeviceAgent of a missing device", s.SetDeviceAgent(ctx, "dev_missing", store.AgentInfo{}), store.ErrNotFound)
}
