package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/auth"
	"github.com/porthole/porthole/ca"
	"github.com/porthole/porthole/session"
	"github.com/porthole/porthole/store"
	"github.com/porthole/porthole/store/sqlitestore"
)

// fx is the fixture most tests share: one store, one set of keys, one
// server over real TLS, and a user per role. Users are made once because
// hashing their passwords is deliberately slow. Tests that need their own
// clock or limits start their own server on the same store (newServer).
var fx *fixture

type fixture struct {
	store store.Store
	keys  *ca.Keys
	srv   *Server
	ts    *httptest.Server

	// users by role name: admin; owner, operator and auditor of fleet
	// acme; other, the owner of fleet other; target, an extra user to add
	// to and remove from fleets.
	users  map[string]*store.User
	tokens map[string]string // role name -> bearer secret
	acme   *store.Fleet
	other  *store.Fleet

	seq atomic.Int64 // for unique names
}

const testPassword = "correct horse battery staple"

// testPublicURL is the fixture's public URL, and so its passkeys' relying
// party: their RP ID is its host, and its origin theirs.
const testPublicURL = "https://porthole.example.com"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "api-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fx, err = newFixture(dir)
	code := 1
	if err != nil {
		fmt.Fprintln(os.Stderr, "setting up the test fixture:", err)
	} else {
		code = m.Run()
		fx.ts.Close()
		fx.store.Close()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func newFixture(dir string) (*fixture, error) {
	ctx := context.Background()
	keyDir := filepath.Join(dir, "keys")
	if err := ca.Generate(keyDir, nil); err != nil {
		return nil, err
	}
	keys, err := ca.Load(keyDir)
	if err != nil {
		return nil, err
	}
	st, err := sqlitestore.Open(filepath.Join(dir, "porthole.db"))
	if err != nil {
		return nil, err
	}
	f := &fixture{store: st, keys: keys, users: map[string]*store.User{}, tokens: map[string]string{}}
	// Sessions go to a real manager; its commands go nowhere (the control
	// channel's own tests follow them to devices).
	sessions, err := session.New(session.Config{Store: st, ControlKey: keys.Control, UserCA: keys.UserCA,
		RelayAddr: "relay.example.com:443", Publish: func(string, []byte) error { return nil }})
	if err != nil {
		return nil, err
	}
	if f.srv, err = New(Config{Store: st, Keys: keys, Sessions: sessions, RelayAddr: "relay.example.com:443",
		Recordings: RecordingsConfig{Dir: filepath.Join(dir, "recordings")}, Console: testConsole, PublicURL: testPublicURL}); err != nil {
		return nil, err
	}
	f.ts = startTLS(f.srv.Handler(), keys)
	now := time.Now().UTC()
	for _, name := range []string{"acme", "other"} {
		fl := &store.Fleet{Name: name, CreatedAt: now}
		if err := st.CreateFleet(ctx, fl); err != nil {
			return nil, err
		}
		if name == "acme" {
			f.acme = fl
		} else {
			f.other = fl
		}
	}
	for _, u := range []struct {
		name  string
		admin bool
		fleet *store.Fleet
		role  store.Role
	}{
		{"admin", true, nil, ""},
		{"owner", false, f.acme, store.RoleOwner},
		{"operator", false, f.acme, store.RoleOperator},
		{"auditor", false, f.acme, store.RoleAuditor},
		{"other", false, f.other, store.RoleOwner},
		{"target", false, nil, ""},
	} {
		user, _, err := CreateUser(ctx, st, u.name+"@example.com", testPassword, u.admin)
		if err != nil {
			return nil, err
		}
		if u.fleet != nil {
			if err := st.SetRole(ctx, u.fleet.ID, user.ID, u.role); err != nil {
				return nil, err
			}
		}
		f.users[u.name] = user
		secret, _, err := newToken(st, user, now.Add(24*time.Hour))
		if err != nil {
			return nil, err
		}
		f.tokens[u.name] = secret
	}
	return f, nil
}

// startTLS serves h over TLS with the server's own certificate.
func startTLS(h http.Handler, keys *ca.Keys) *httptest.Server {
	ts := httptest.NewUnstartedServer(h)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{keys.TLS}}
	ts.StartTLS()
	return ts
}

// newToken stores a bearer token for u, as login would.
func newToken(st store.Store, u *store.User, expires time.Time) (string, *store.Token, error) {
	secret, hash := auth.NewSecret("pht")
	tok := &store.Token{UserID: u.ID, Hash: hash, Name: "test", CreatedAt: time.Now().UTC(), ExpiresAt: expires}
	err := st.CreateToken(context.Background(), tok)
	return secret, tok, err
}

// name returns a fresh name with prefix, unique in this test binary.
func (f *fixture) name(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, f.seq.Add(1))
}

// newFleet makes a fleet in which the fixture's owner, operator and
// auditor have their roles.
func (f *fixture) newFleet(t testing.TB) *store.Fleet {
	t.Helper()
	ctx := context.Background()
	fl := &store.Fleet{Name: f.name("fleet"), CreatedAt: time.Now().UTC()}
	must(t, f.store.CreateFleet(ctx, fl))
	for _, role := range []store.Role{store.RoleOwner, store.RoleOperator, store.RoleAuditor} {
		must(t, f.store.SetRole(ctx, fl.ID, f.users[string(role)].ID, role))
	}
	return fl
}

// newEnrollmentToken stores an enrollment token for fleet.
func (f *fixture) newEnrollmentToken(t testing.TB, fl *store.Fleet, uses int, expires time.Time) (string, *store.EnrollmentToken) {
	t.Helper()
	secret, hash := auth.NewSecret("phe")
	et := &store.EnrollmentToken{FleetID: fl.ID, Hash: hash, UsesLeft: uses, MaxUses: uses,
		CreatedBy: f.users["admin"].ID, CreatedAt: time.Now().UTC(), ExpiresAt: expires}
	must(t, f.store.CreateEnrollmentToken(context.Background(), et))
	return secret, et
}

// newDevice enrolls a device in fleet straight through the store.
func (f *fixture) newDevice(t testing.TB, fl *store.Fleet) *store.Device {
	t.Helper()
	return f.newDeviceNamed(t, fl, f.name("dev"))
}

// newDeviceNamed enrolls a device called name in fl.
func (f *fixture) newDeviceNamed(t testing.TB, fl *store.Fleet, name string) *store.Device {
	t.Helper()
	secret, _ := f.newEnrollmentToken(t, fl, 1, time.Now().Add(time.Hour))
	d := &store.Device{Name: name, PublicKey: newDeviceKey(t), EnrolledAt: time.Now().UTC()}
	must(t, f.store.EnrollDevice(context.Background(), auth.HashSecret(secret), time.Now(), d,
		func(*store.Fleet) (string, error) { return "cert", nil }))
	d.FleetName = fl.Name
	return d
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// response is an answer, read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request to ts. body may be nil, a string or []byte (sent as
// is) or anything else (sent as JSON).
func do(t *testing.T, ts *httptest.Server, method, path, token string, body any) response {
	t.Helper()
	return doWith(t, ts.Client(), ts, method, path, token, body)
}

// doFrom is do from another source address (any of 127.0.0.0/8).
func doFrom(t *testing.T, ts *httptest.Server, from, method, path, token string, body any) response {
	t.Helper()
	tr := ts.Client().Transport.(*http.Transport).Clone()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	tr.DialContext = d.DialContext
	defer tr.CloseIdleConnections()
	return doWith(t, &http.Client{Transport: tr}, ts, method, path, token, body)
}

// doWith is do with client c.
func doWith(t *testing.T, c *http.Client, ts *httptest.Server, method, path, token string, body any) response {
	t.Helper()
	req := newRequest(t, context.Background(), method, ts.URL+path, body)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	must(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	must(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// newRequest makes a request to url with body: nil, a string or []byte
// (sent as is) or anything else (sent as JSON).
func newRequest(t *testing.T, ctx context.Context, method, url string, body any) *http.Request {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		must(t, err)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	must(t, err)
	return req
}

// errorBody decodes an error answer.
func (r response) errorBody(t *testing.T) apitype.ErrorDetail {
	t.Helper()
	var eb apitype.ErrorBody
	if err := json.Unmarshal(r.body, &eb); err != nil || eb.Error.Code == "" {
		t.Fatalf("answer %d is not an error body: %s", r.status, r.body)
	}
	return eb.Error
}

// wantError checks an error answer's status and code.
func (r response) wantError(t *testing.T, status int, code string) apitype.ErrorDetail {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d; want %d (body %s)", r.status, status, r.body)
	}
	e := r.errorBody(t)
	if e.Code != code {
		t.Fatalf("code = %q; want %q (message %q)", e.Code, code, e.Message)
	}
	return e
}

// decodeAs checks the status and decodes a JSON answer.
func decodeAs[T any](t *testing.T, r response, status int) T {
	t.Helper()
	var v T
	if r.status != status {
		t.Fatalf("status = %d; want %d (body %s)", r.status, status, r.body)
	}
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
	return v
}

// clock is a settable time for tests of expiry, TOTP steps and limits.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

// newClock starts at a whole second, which every store keeps exactly.
func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// logBuffer collects a server's log for tests to search.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testServer is a server of its own on the fixture's store.
type testServer struct {
	*Server
	ts    *httptest.Server
	clock *clock
	log   *logBuffer
}

// newServer starts a server on the fixture's store with its own clock,
// log and limits; cfg's Store, Keys, Now and Logger are filled in.
func newServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	c, lb := newClock(), &logBuffer{}
	if cfg.Store == nil {
		cfg.Store = fx.store
	}
	cfg.Keys, cfg.Now = fx.keys, c.Now
	cfg.Logger = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(cfg)
	must(t, err)
	ts := startTLS(s.Handler(), fx.keys)
	t.Cleanup(ts.Close)
	return &testServer{Server: s, ts: ts, clock: c, log: lb}
}

// newUser makes a user with the test password.
func newUser(t *testing.T, admin bool) *store.User {
	t.Helper()
	u, _, err := CreateUser(context.Background(), fx.store, fx.name("user")+"@example.com", testPassword, admin)
	must(t, err)
	return u
}

// totpCode is u's TOTP code at now.
func totpCode(t *testing.T, u *store.User, now time.Time) string {
	t.Helper()
	code, err := totp.GenerateCode(u.TOTPSecret, now)
	must(t, err)
	return code
}

// engineerPublicKey is an engineer's key for session requests.
var engineerPublicKey = func() string {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		panic(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey())))
}()

// newSession records a connecting session on d by the fixture's operator,
// straight through the store.
// newFourEyesSession stores a session on d that waits for a second
// engineer, asked for by u, with its four-eyes request, as session.Open
// makes them in a four-eyes fleet.
func (f *fixture) newFourEyesSession(t testing.TB, d *store.Device, u *store.User) (*store.Session, *store.SupportRequest) {
	t.Helper()
	ses := &store.Session{DeviceID: d.ID, UserID: u.ID, UserEmail: u.Email, State: store.SessionRequested, FourEyes: true,
		PublicKey: engineerPublicKey, Reason: "ticket 12", IdleTimeout: time.Minute, MaxDuration: time.Hour}
	must(t, f.store.CreateSession(context.Background(), ses))
	r := &store.SupportRequest{DeviceID: d.ID, Kind: store.RequestFourEyes, SessionID: ses.ID, Reason: ses.Reason,
		RequestedBy: u.Email, ExpiresAt: time.Now().Add(10 * time.Minute)}
	must(t, f.store.CreateSupportRequest(context.Background(), r))
	return ses, r
}

func (f *fixture) newSession(t testing.TB, d *store.Device) *store.Session {
	t.Helper()
	ses := &store.Session{DeviceID: d.ID, UserID: f.users["operator"].ID, UserEmail: f.users["operator"].Email,
		State: store.SessionConnecting, PublicKey: engineerPublicKey, IdleTimeout: time.Minute, MaxDuration: time.Hour}
	must(t, f.store.CreateSession(context.Background(), ses))
	return ses
}
