package storetest

import (
	"testing"
	"time"

	"github.com/porthole/porthole/store"
)

// testSSOUsers: an SSO identity is one user, made on its first login and
// updated on the next; its roles are exactly the last mapping's, and it
// cannot take a local user's email.
func testSSOUsers(t *testing.T, s store.Store) {
	ctx := t.Context()
	acme, beta := mkFleet(t, s, "acme"), mkFleet(t, s, "beta")
	local := mkUser(t, s, "local@example.com")
	ok(t, "SetRole", s.SetRole(ctx, beta.ID, local.ID, store.RoleOwner))

	u := &store.User{Email: "ann@example.com", SSOSubject: "https://idp.example.com ann", CreatedAt: t0}
	ms, err := s.SyncSSOUser(ctx, u, map[string]store.Role{"acme": store.RoleOperator, "gone": store.RoleOwner})
	ok(t, "SyncSSOUser", err)
	wantPrefix(t, "user", u.ID, "usr")
	equal(t, "roles", roleList(ms), []string{"acme operator"})
	got, err := s.GetUser(ctx, u.ID)
	ok(t, "GetUser", err)
	equal(t, "user", got, &store.User{ID: u.ID, Email: u.Email, SSOSubject: u.SSOSubject, CreatedAt: stored(t0)})

	again := &store.User{Email: "ann@new.example.com", SSOSubject: u.SSOSubject, Admin: true}
	ms, err = s.SyncSSOUser(ctx, again, map[string]store.Role{"beta": store.RoleAuditor})
	ok(t, "SyncSSOUser again", err)
	equal(t, "same user", again.ID, u.ID)
	equal(t, "roles replaced", roleList(ms), []string{"beta auditor"})
	got, err = s.GetUser(ctx, u.ID)
	ok(t, "GetUser", err)
	equal(t, "email and admin updated", []any{got.Email, got.Admin}, []any{"ann@new.example.com", true})
	ms, err = s.SyncSSOUser(ctx, again, nil)
	ok(t, "SyncSSOUser without roles", err)
	equal(t, "no roles", roleList(ms), []string{})

	thief := &store.User{Email: local.Email, SSOSubject: "https://idp.example.com mallory"}
	_, err = s.SyncSSOUser(ctx, thief, map[string]store.Role{"acme": store.RoleOwner})
	wantErr(t, "SyncSSOUser with a local user's email", err, store.ErrConflict)
	ms, err = s.Memberships(ctx, local.ID)
	ok(t, "Memberships", err)
	equal(t, "the local user's roles", roleList(ms), []string{"beta owner"})
	_ = acme
}

func roleList(ms []*store.Membership) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.FleetName+" "+string(m.Role))
	}
	return out
}

// testSSORefreshes: due refreshes are listed, and of several claims of
// one exactly one wins.
func testSSORefreshes(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := mkUser(t, s, "ann@example.com")
	due := &store.Token{UserID: u.ID, Hash: randomHex(32), ExpiresAt: t0.Add(time.Hour), SSORefresh: "sealed1", SSORefreshAt: t0}
	later := &store.Token{UserID: u.ID, Hash: randomHex(32), ExpiresAt: t0.Add(time.Hour), SSORefresh: "sealed2", SSORefreshAt: t0.Add(time.Minute)}
	local := &store.Token{UserID: u.ID, Hash: randomHex(32), ExpiresAt: t0.Add(time.Hour)}
	expired := &store.Token{UserID: u.ID, Hash: randomHex(32), ExpiresAt: t0, SSORefresh: "sealed3", SSORefreshAt: t0.Add(-time.Minute)}
	for _, tok := range []*store.Token{due, later, local, expired} {
		ok(t, "CreateToken", s.CreateToken(ctx, tok))
	}
	list, err := s.DueSSORefreshes(ctx, t0, 10)
	ok(t, "DueSSORefreshes", err)
	equal(t, "due", list, []*store.Token{due})

	wins := race(4, func(int) bool {
		won, err := s.ClaimSSORefresh(ctx, due.ID, due.SSORefreshAt, t0.Add(2*time.Minute))
		ok(t, "ClaimSSORefresh", err)
		return won
	})
	equal(t, "claims won", trues(wins), 1)
	list, err = s.DueSSORefreshes(ctx, t0, 10)
	ok(t, "DueSSORefreshes after the claim", err)
	equal(t, "due after the claim", len(list), 0)

	ok(t, "SetSSORefresh", s.SetSSORefresh(ctx, due.ID, "sealed4", t0.Add(5*time.Minute)))
	got, err := s.TokenByHash(ctx, due.Hash, t0)
	ok(t, "TokenByHash", err)
	equal(t, "refresh", []any{got.SSORefresh, got.SSORefreshAt}, []any{"sealed4", stored(t0.Add(5 * time.Minute))})
	wantErr(t, "SetSSORefresh of a missing token", s.SetSSORefresh(ctx, "tok_missing", "x", t0), store.ErrNotFound)
}

// testDeviceGrants: a grant is found by its user code only while pending
// and unexpired, decided once, polled with a guard, and used once.
func testDeviceGrants(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := mkUser(t, s, "ann@example.com")
	g := &store.DeviceGrant{DeviceHash: randomHex(32), UserHash: randomHex(32), Requester: "127.0.0.1 (laptop)",
		CreatedAt: t0, ExpiresAt: t0.Add(10 * time.Minute)}
	ok(t, "CreateDeviceGrant", s.CreateDeviceGrant(ctx, g))
	wantPrefix(t, "grant", g.ID, "dgr")

	got, err := s.DeviceGrantByUserCode(ctx, g.UserHash, t0)
	ok(t, "DeviceGrantByUserCode", err)
	equal(t, "grant", got, g)
	wantErr(t, "DeviceGrantByUserCode expired", errOf(s.DeviceGrantByUserCode(ctx, g.UserHash, g.ExpiresAt)), store.ErrNotFound)

	polled, err := s.PollDeviceGrant(ctx, g.ID, time.Time{}, t0.Add(time.Second))
	ok(t, "PollDeviceGrant", err)
	equal(t, "first poll", polled, true)
	polled, err = s.PollDeviceGrant(ctx, g.ID, time.Time{}, t0.Add(2*time.Second))
	ok(t, "PollDeviceGrant", err)
	equal(t, "a poll racing the first", polled, false)

	wantErr(t, "UseDeviceGrant pending", errOf(s.UseDeviceGrant(ctx, g.ID)), nil)
	used, _ := s.UseDeviceGrant(ctx, g.ID)
	equal(t, "use of a pending grant", used, false)

	late := *g
	late.State, late.UserID = store.GrantApproved, u.ID
	decided, err := s.DecideDeviceGrant(ctx, &late, g.ExpiresAt)
	ok(t, "DecideDeviceGrant after expiry", err)
	equal(t, "decided after expiry", decided, false)

	approve := *g
	approve.State, approve.UserID, approve.SSORefresh = store.GrantApproved, u.ID, "sealed"
	approve.SSORefreshAt, approve.LoginExpires = t0.Add(5*time.Minute), t0.Add(time.Hour)
	decided, err = s.DecideDeviceGrant(ctx, &approve, t0)
	ok(t, "DecideDeviceGrant", err)
	equal(t, "decided", decided, true)
	deny := *g
	deny.State, deny.UserID = store.GrantDenied, ""
	decided, err = s.DecideDeviceGrant(ctx, &deny, t0)
	ok(t, "DecideDeviceGrant again", err)
	equal(t, "decided twice", decided, false)
	wantErr(t, "DeviceGrantByUserCode approved", errOf(s.DeviceGrantByUserCode(ctx, g.UserHash, t0)), store.ErrNotFound)

	got, err = s.DeviceGrantByDeviceCode(ctx, g.DeviceHash)
	ok(t, "DeviceGrantByDeviceCode", err)
	equal(t, "approved", []any{got.State, got.UserID, got.SSORefresh, got.SSORefreshAt, got.LoginExpires},
		[]any{store.GrantApproved, u.ID, "sealed", stored(t0.Add(5 * time.Minute)), stored(t0.Add(time.Hour))})

	uses := race(4, func(int) bool {
		used, err := s.UseDeviceGrant(ctx, g.ID)
		ok(t, "UseDeviceGrant", err)
		return used
	})
	equal(t, "uses", trues(uses), 1)
	got, err = s.DeviceGrantByDeviceCode(ctx, g.DeviceHash)
	ok(t, "DeviceGrantByDeviceCode", err)
	equal(t, "used, its refresh token gone", []any{got.State, got.SSORefresh}, []any{store.GrantUsed, ""})

	ok(t, "DeleteDeviceGrants", s.DeleteDeviceGrants(ctx, g.ExpiresAt.Add(time.Millisecond)))
	wantErr(t, "DeviceGrantByDeviceCode deleted", errOf(s.DeviceGrantByDeviceCode(ctx, g.DeviceHash)), store.ErrNotFound)
}
