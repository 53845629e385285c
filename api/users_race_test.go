package api

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/session"
	"github.com/porthole/porthole/store"
)

// TestAccessLostWhileOpening: an engineer's session request that was
// authorized just before an administrator reset them, or an owner took
// their role away, must not outlive the change. The reset (or removal)
// lands while the session is being placed, after the request passed its
// checks and before the session is recorded: so after the change closed
// every open session of the user. The request is refused and its
// session closed as user_removed.
func TestAccessLostWhileOpening(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		change func(ts *testServer, fl *store.Fleet, u *store.User)
		status int
	}{
		{"reset", func(ts *testServer, _ *store.Fleet, u *store.User) {
			if r := do(t, ts.ts, "POST", "/api/v1/users/"+u.Email+"/reset", fx.tokens["admin"], apitype.ResetUserRequest{}); r.status != http.StatusOK {
				t.Errorf("reset: %d %s", r.status, r.body)
			}
		}, http.StatusUnauthorized},
		{"role removed", func(ts *testServer, fl *store.Fleet, u *store.User) {
			if r := do(t, ts.ts, "DELETE", "/api/v1/fleets/"+fl.Name+"/members/"+u.Email, fx.tokens["admin"], nil); r.status != http.StatusNoContent {
				t.Errorf("removing the role: %d %s", r.status, r.body)
			}
		}, http.StatusForbidden},
		{"made an auditor", func(ts *testServer, fl *store.Fleet, u *store.User) {
			if r := do(t, ts.ts, "PUT", "/api/v1/fleets/"+fl.Name+"/members/"+u.Email, fx.tokens["admin"], apitype.Member{Role: "auditor"}); r.status != http.StatusOK {
				t.Errorf("making an auditor: %d %s", r.status, r.body)
			}
		}, http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var (
				ts    *testServer
				fl    *store.Fleet
				u     *store.User
				armed atomic.Bool
			)
			sessions, err := session.New(session.Config{Store: fx.store, ControlKey: fx.keys.Control, UserCA: fx.keys.UserCA,
				RelayAddr: "relay.example.com:443", Publish: func(string, []byte) error { return nil },
				Place: func(ctx context.Context, d *store.Device) (*store.Relay, error) {
					if armed.CompareAndSwap(true, false) {
						tt.change(ts, fl, u)
					}
					return &store.Relay{ID: "rly_race", Addr: "relay.example.com:443", SSHAddr: "relay.example.com:22"}, nil
				}})
			must(t, err)
			ts = newServer(t, Config{Sessions: sessions, RelayAddr: "relay.example.com:443"})
			fl = fx.newFleet(t)
			d := onlineDevice(t, fl)
			u = newUser(t, false)
			must(t, fx.store.SetRole(context.Background(), fl.ID, u.ID, store.RoleOperator))
			tok := ts.login(t, u).Token

			armed.Store(true)
			r := do(t, ts.ts, "POST", "/api/v1/devices/"+d.ID+"/sessions", tok, apitype.CreateSessionRequest{PublicKey: engineerPublicKey})
			if r.status == http.StatusCreated {
				t.Errorf("a session opened across the change was handed out: %s", r.body)
			} else if r.status != tt.status {
				t.Errorf("refusal: %d %s; want %d", r.status, r.body, tt.status)
			}
			open, err := fx.store.ListSessions(context.Background(), store.SessionFilter{UserEmail: u.Email, OpenOnly: true})
			must(t, err)
			if len(open) != 0 {
				t.Errorf("%d session(s) of %s still open after the change: %+v", len(open), u.Email, open[0])
			}
			all, err := fx.store.ListSessions(context.Background(), store.SessionFilter{UserEmail: u.Email})
			must(t, err)
			for _, s := range all {
				if !closedFor(t, s.ID, control.CloseUserRemoved) {
					t.Errorf("session %s: %s %s; want closed as user_removed", s.ID, s.State, s.CloseReason)
				}
			}
		})
	}
}

// TestPresenceStreamEndsWithUser: deleting or resetting a user ends
// their presence streams at once, as revoking a login does, not at the
// next resync: until then a deleted engineer's open console kept
// following the fleets' devices.
func TestPresenceStreamEndsWithUser(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"", "/reset"} {
		ts := newServer(t, Config{PresenceResync: time.Hour})
		fl := fx.newFleet(t)
		u := newUser(t, false)
		must(t, fx.store.SetRole(t.Context(), fl.ID, u.ID, store.RoleOperator))
		bearer := ts.login(t, u).Token
		secret := newConsoleSession(t, u)
		streams := []*sseStream{
			openPresence(t, ts, "", func(req *http.Request) { req.Header.Set("Authorization", "Bearer "+bearer) }),
			openPresence(t, ts, "", func(req *http.Request) { withConsoleSession(req, secret, false) }),
		}
		for _, es := range streams {
			es.next(t, apitype.PresenceSnapshot)
		}
		method, body := "DELETE", any(nil)
		if path != "" {
			method, body = "POST", apitype.ResetUserRequest{}
		}
		if r := do(t, ts.ts, method, "/api/v1/users/"+u.ID+path, fx.tokens["admin"], body); r.status >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, r.status, r.body)
		}
		for _, es := range streams {
			if ev := es.next(t, apitype.PresenceEnd); !strings.Contains(ev.data, endLoggedOut) {
				t.Errorf("%q: the stream ended with %s", path, ev.data)
			}
			es.ended(t)
		}
	}
}

// TestClaimsReleased: a support request an engineer claimed goes back in
// the queue when they lose their role in its fleet, become its auditor,
// or are deleted: left claimed, another engineer was told it is "already
// claimed by" someone who can no longer answer it.
func TestClaimsReleased(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		method string
		path   func(fl *store.Fleet, u *store.User) string
		body   any
	}{
		{"role removed", "DELETE", func(fl *store.Fleet, u *store.User) string {
			return "/api/v1/fleets/" + fl.Name + "/members/" + u.Email
		}, nil},
		{"made an auditor", "PUT", func(fl *store.Fleet, u *store.User) string {
			return "/api/v1/fleets/" + fl.Name + "/members/" + u.Email
		},
			apitype.Member{Role: "auditor"}},
		{"deleted", "DELETE", func(_ *store.Fleet, u *store.User) string { return "/api/v1/users/" + u.Email }, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts, fl, d, u, tok := reauthServer(t)
			r := &store.SupportRequest{DeviceID: d.ID, Kind: store.RequestSupport, Reason: "it hums", ExpiresAt: time.Now().Add(time.Hour)}
			must(t, fx.store.CreateSupportRequest(context.Background(), r))
			decodeAs[apitype.SupportRequest](t, do(t, ts.ts, "POST", "/api/v1/requests/"+r.ID+"/claim", tok, nil), http.StatusOK)
			if got := do(t, ts.ts, tt.method, tt.path(fl, u), fx.tokens["admin"], tt.body); got.status >= 300 {
				t.Fatalf("%s: %d %s", tt.name, got.status, got.body)
			}
			got, err := fx.store.GetSupportRequest(context.Background(), r.ID)
			must(t, err)
			if got.State != store.RequestOpen || got.ClaimedEmail != "" {
				t.Errorf("the request %s claimed stays %s by %q", u.Email, got.State, got.ClaimedEmail)
			}
			decodeAs[apitype.SupportRequest](t, do(t, ts.ts, "POST", "/api/v1/requests/"+r.ID+"/claim", fx.tokens["operator"], nil), http.StatusOK)
		})
	}
}

// TestRoleLossKeepsAdminSessions: an administrator reaches every fleet's
// devices whatever their role in it, so losing that role (or being made
// its auditor) ends none of their sessions: they were told their access
// was taken away while it was not.
func TestRoleLossKeepsAdminSessions(t *testing.T) {
	t.Parallel()
	ts, fl, d, _, _ := reauthServer(t)
	admin, tok := memberOf(t, ts, fl, true)
	ses := openAs(t, ts, d, tok)
	decodeAs[apitype.Member](t, do(t, ts.ts, "PUT", "/api/v1/fleets/"+fl.Name+"/members/"+admin.Email, fx.tokens["admin"],
		apitype.Member{Role: "auditor"}), http.StatusOK)
	if r := do(t, ts.ts, "DELETE", "/api/v1/fleets/"+fl.Name+"/members/"+admin.Email, fx.tokens["admin"], nil); r.status != http.StatusNoContent {
		t.Fatalf("removing the role: %d %s", r.status, r.body)
	}
	s, err := fx.store.GetSession(context.Background(), ses.ID)
	must(t, err)
	if !s.Open() {
		t.Errorf("an administrator's session closed as %s", s.CloseReason)
	}
}

// resetOnCreateToken is the store with a hook run once, when armed, just
// before a login's token is stored: after the login checked the password
// and the code.
type resetOnCreateToken struct {
	store.Store
	armed atomic.Bool
	hook  func()
}

func (s *resetOnCreateToken) CreateToken(ctx context.Context, tok *store.Token) error {
	if s.armed.CompareAndSwap(true, false) {
		s.hook()
	}
	return s.Store.CreateToken(ctx, tok)
}

// TestLoginRacesReset: whoever stole a user's password and authenticator
// logs in again and again while an administrator resets the user. A login
// that checked the old secrets before the reset and stored its token
// after it (hashing the password leaves a wide window) must not survive
// the reset: that is what the reset is for. Deleted, the same.
func TestLoginRacesReset(t *testing.T) {
	t.Parallel()
	for _, deleted := range []bool{false, true} {
		st := &resetOnCreateToken{Store: fx.store}
		ts := newServer(t, Config{Store: st})
		u := newUser(t, false)
		st.hook = func() {
			if deleted {
				must(t, fx.store.DeleteUser(context.Background(), u.ID, ""))
			} else {
				must(t, fx.store.ResetUserSecrets(context.Background(), u.ID, "$argon2id$new", "NEWSECRETNEWSECR"))
			}
		}
		st.armed.Store(true)
		r := do(t, ts.ts, "POST", "/api/v1/login", "", loginBody(u, testPassword, totpCode(t, u, ts.clock.Now())))
		if r.status == http.StatusOK {
			t.Errorf("deleted %v: a login with the old secrets, stored after the change, was handed out", deleted)
		} else {
			r.wantError(t, http.StatusUnauthorized, apitype.CodeUnauthenticated)
		}
		if !deleted {
			toks, err := fx.store.ListTokens(context.Background(), u.ID)
			must(t, err)
			if len(toks) != 0 {
				t.Errorf("after the reset, %d token(s) of the old secrets remain", len(toks))
			}
		}
	}
}
