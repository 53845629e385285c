// Package storetest is the test suite every store.Store implementation
// must pass, and quick ways for other packages' tests to get a real store
// (OpenSQLite, OpenPostgres). Only tests import it.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole/store"
)

// Run runs the suite. open must return a new, empty store for each call;
// the subtests run in parallel, each on its own store.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Fleets", testFleets},
		{"Users", testUsers},
		{"Roles", testRoles},
		{"TOTPReplay", testTOTPReplay},
		{"TOTPConcurrent", testTOTPConcurrent},
		{"Tokens", testTokens},
		{"TokenExpiry", testTokenExpiry},
		{"TokenOwnership", testTokenOwnership},
		{"TokenFactor", testTokenFactor},
		{"EnrollmentTokens", testEnrollmentTokens},
		{"Enroll", testEnroll},
		{"EnrollRefused", testEnrollRefused},
		{"EnrollDuplicateName", testEnrollDuplicateName},
		{"EnrollCertFails", testEnrollCertFails},
		{"EnrollConcurrent", testEnrollConcurrent},
		{"Devices", testDevices},
		{"DeviceLabels", testDeviceLabels},
		{"DeviceFilter", testDeviceFilter},
		{"DeviceAgent", testDeviceAgent},
		{"Presence", testPresence},
		{"TouchDevicesSeen", testTouchDevicesSeen},
		{"PresenceBatches", testPresenceBatches},
		{"MarkAllOffline", testMarkAllOffline},
		{"Sessions", testSessions},
		{"SessionFilter", testSessionFilter},
		{"CloseDue", testCloseDue},
		{"SupportRequests", testSupportRequests},
		{"ApprovalRequests", testApprovalRequests},
		{"SupportRequestFilter", testSupportRequestFilter},
		{"Recordings", testRecordings},
		{"RecordingFilter", testRecordingFilter},
		{"OwnerTokens", testOwnerTokens},
		{"AuditAppend", testAuditAppend},
		{"AuditWithChanges", testAuditWithChanges},
		{"AuditRollback", testAuditRollback},
		{"AuditConcurrent", testAuditConcurrent},
		{"AuditFilter", testAuditFilter},
		{"AuditFillByName", testAuditFillByName},
		{"AuditTamper", testAuditTamper},
		{"DeleteFleetCascades", testDeleteFleetCascades},
		{"DeleteUserCascades", testDeleteUserCascades},
		{"DeleteUserByAdmin", testDeleteUserByAdmin},
		{"NotFound", testNotFound},
		{"Conflict", testConflict},
		{"Ping", testPing},
		{"Changes", testChanges},
		{"Relays", testRelays},
		{"DeviceNonces", testDeviceNonces},
		{"FleetPolicy", testFleetPolicy},
		{"FourEyesSessions", testFourEyesSessions},
		{"ApprovalRacesRemoval", testApprovalRacesRemoval},
		{"FourEyesRequests", testFourEyesRequests},
		{"SSOUsers", testSSOUsers},
		{"SSORefreshes", testSSORefreshes},
		{"DeviceGrants", testDeviceGrants},
		{"Passkeys", testPasskeys},
		{"PasskeyConflict", testPasskeyConflict},
		{"PasskeyUse", testPasskeyUse},
		{"PasskeysGoWithUser", testPasskeysGoWithUser},
		{"PasskeyEndsLogins", testPasskeyEndsLogins},
		{"Ceremonies", testCeremonies},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

// t0 is a time with nanoseconds and a zone, which the store must return
// as UTC milliseconds.
var t0 = time.Date(2026, 11, 22, 10, 30, 0, 123_456_789, time.FixedZone("CET", 3600))

// stored is t as a store returns it.
func stored(t time.Time) time.Time {
	return t.Truncate(time.Millisecond).UTC()
}

func equal[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %s; want %s", what, show(got), show(want))
	}
}

// show prints v with what its pointers point to.
func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return string(b)
}

// wantErr checks err is target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v; want %v", what, err, target)
	}
}

func ok(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantPrefix(t *testing.T, what, id, prefix string) {
	t.Helper()
	if !strings.HasPrefix(id, prefix+"_") || len(id) != len(prefix)+1+16 {
		t.Errorf("%s ID %q; want %s_ and 16 characters", what, id, prefix)
	}
}

func mkFleet(t *testing.T, s store.Store, name string) *store.Fleet {
	t.Helper()
	f := &store.Fleet{Name: name}
	ok(t, "CreateFleet "+name, s.CreateFleet(t.Context(), f))
	return f
}

func mkUser(t *testing.T, s store.Store, email string) *store.User {
	t.Helper()
	u := &store.User{Email: email, PasswordHash: "$argon2id$" + email, TOTPSecret: "JBSWY3DPEHPK3PXP"}
	ok(t, "CreateUser "+email, s.CreateUser(t.Context(), u))
	return u
}

// mkEnrollmentToken makes a token for fleet with uses uses that expires an
// hour after t0, and returns it with its hash.
func mkEnrollmentToken(t *testing.T, s store.Store, fleetID string, uses int) *store.EnrollmentToken {
	t.Helper()
	et := &store.EnrollmentToken{FleetID: fleetID, Hash: randomHex(32), UsesLeft: uses, MaxUses: uses,
		CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	ok(t, "CreateEnrollmentToken", s.CreateEnrollmentToken(t.Context(), et))
	return et
}

// certFor is the host certificate the suite's mkCert makes.
func certFor(f *store.Fleet, name string) string {
	return "cert " + name + "." + f.Name
}

// enroll enrolls a device named name with the token whose hash is given,
// at t0.
func enroll(ctx context.Context, s store.Store, hash, name string) (*store.Device, error) {
	d := &store.Device{Name: name, PublicKey: "ssh-ed25519 AAAA" + name}
	err := s.EnrollDevice(ctx, hash, t0, d, func(f *store.Fleet) (string, error) { return certFor(f, name), nil })
	return d, err
}

func mustEnroll(t *testing.T, s store.Store, hash, name string) *store.Device {
	t.Helper()
	d, err := enroll(t.Context(), s, hash, name)
	ok(t, "EnrollDevice "+name, err)
	return d
}

// usesLeft returns how many uses the enrollment token with ID id has left.
func usesLeft(t *testing.T, s store.Store, fleetID, id string) int {
	t.Helper()
	ts, err := s.ListEnrollmentTokens(t.Context(), fleetID)
	ok(t, "ListEnrollmentTokens", err)
	for _, et := range ts {
		if et.ID == id {
			return et.UsesLeft
		}
	}
	t.Fatalf("enrollment token %s is gone", id)
	return 0
}

// race runs fn n times at once (released together, to make them collide)
// and returns the results.
func race[T any](n int, fn func(i int) T) []T {
	out := make([]T, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			out[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return out
}

// trues counts the racers of race that won.
func trues(results []bool) int {
	n := 0
	for _, won := range results {
		if won {
			n++
		}
	}
	return n
}

func names(ds []*store.Device) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%s/%s", d.FleetName, d.Name))
	}
	return out
}

func testPing(t *testing.T, s store.Store) {
	ok(t, "Ping", s.Ping(t.Context()))
}
