package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/api"
	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/ca"
	"github.com/porthole/porthole/store/sqlitestore"
	"github.com/porthole/porthole/store/sqlstore"
)

// realAPI is the real server (package api) in-process over TLS with its
// own self-signed certificate, which a test can swap for another.
type realAPI struct {
	url         string
	fingerprint string
	cert        atomic.Pointer[tls.Certificate]
}

const adminEmail, adminPassword = "ops@example.com", "correct horse battery staple"

// startRealAPI starts the API on a fresh SQLite store with one
// administrator, and returns it with the administrator's TOTP secret.
func startRealAPI(t *testing.T) (*realAPI, string) {
	t.Helper()
	keys, st := newServerState(t)
	srv, err := api.New(api.Config{Store: st, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	_, uri, err := api.CreateUser(context.Background(), st, adminEmail, adminPassword, true)
	if err != nil {
		t.Fatal(err)
	}
	ra := &realAPI{fingerprint: keys.TLSFingerprint()}
	ra.cert.Store(&keys.TLS)
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.Listener = tls.NewListener(ts.Listener, &tls.Config{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return ra.cert.Load(), nil },
	})
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	ts.Start()
	t.Cleanup(ts.Close)
	ra.url = "https://" + ts.Listener.Addr().String()
	return ra, totpSecret(t, uri)
}

// newServerState makes a server's keys and an empty SQLite store, closed
// when the test ends.
func newServerState(t *testing.T) (*ca.Keys, *sqlstore.Store) {
	t.Helper()
	dir := t.TempDir()
	keyDir := filepath.Join(dir, "keys")
	if err := ca.Generate(keyDir, nil); err != nil {
		t.Fatal(err)
	}
	keys, err := ca.Load(keyDir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlitestore.Open(filepath.Join(dir, "porthole.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return keys, st
}

func totpSecret(t *testing.T, uri string) string {
	t.Helper()
	key, err := otp.NewKeyFromURL(uri)
	if err != nil {
		t.Fatalf("TOTP URI %q: %v", uri, err)
	}
	return key.Secret()
}

func totpCode(t *testing.T, secret string) string {
	t.Helper()
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// TestRealAPI walks an administrator and an engineer through the CLI
// against the real API: login with TOTP and certificate pinning, a changed
// certificate refused, fleets, users, roles, enrollment, devices, logout.
func TestRealAPI(t *testing.T) {
	ra, adminSecret := startRealAPI(t)
	admin := testEnv(t)

	// Login pins the self-signed certificate.
	r := mustRun(t, admin, adminEmail+"\n"+adminPassword+"\n"+totpCode(t, adminSecret)+"\n", "login", ra.url)
	if !strings.Contains(r.stderr, "pinned the server's certificate "+ra.fingerprint) {
		t.Errorf("first login does not say it pinned %s:\n%s", ra.fingerprint, r.stderr)
	}
	if c := savedConfig(t, admin); c.Pins[ra.url] != ra.fingerprint || c.Token == "" || c.TokenID == "" {
		t.Fatalf("saved login %+v", c)
	}

	// Another certificate at the same address: refused, nothing sent.
	orig := ra.cert.Load()
	ra.cert.Store(ptr(newTestCert(t)))
	if r := runCLI(t, admin, adminEmail+"\n"+adminPassword+"\n000000\n", "login", ra.url); r.err == nil || !strings.Contains(r.err.Error(), "has changed") {
		t.Errorf("login with a changed certificate: %v; want refused", r.err)
	}
	if r := runCLI(t, admin, "", "fleets"); r.err == nil || !strings.Contains(r.err.Error(), "has changed") {
		t.Errorf("fleets with a changed certificate: %v; want refused", r.err)
	}
	ra.cert.Store(orig)

	// Fleets.
	mustRun(t, admin, "", "fleets", "create", "acme")
	var fleets []apitype.Fleet
	jsonOut(t, mustRun(t, admin, "", "fleets", "--json"), &fleets)
	if len(fleets) != 1 || fleets[0].Name != "acme" || fleets[0].Role != "admin" {
		t.Errorf("fleets --json = %+v; want acme, admin", fleets)
	}
	if r := runCLI(t, admin, "", "fleets", "create", "acme"); r.err == nil || r.err.Error() == "" {
		t.Errorf("creating acme twice: %v; want the server's refusal", r.err)
	}

	// A user, with a role in acme, who logs in with what create printed.
	r = mustRun(t, admin, "", "users", "create", "bob@example.com")
	password := regexp.MustCompile(`(?m)^password: (\S+)$`).FindStringSubmatch(r.stdout)
	uri := regexp.MustCompile(`(?m)^totp_uri: (\S+)$`).FindStringSubmatch(r.stdout)
	if password == nil || uri == nil {
		t.Fatalf("users create printed:\n%s", r.stdout)
	}
	mustRun(t, admin, "", "users", "grant", "bob@example.com", "--fleet", "acme", "--role", "operator")
	r = mustRun(t, admin, "", "users")
	if !regexp.MustCompile(`bob@example.com\s+no\s+acme:operator`).MatchString(r.stdout) {
		t.Errorf("users table does not show bob as operator of acme:\n%s", r.stdout)
	}
	bob := testEnv(t)
	mustRun(t, bob, "bob@example.com\n"+password[1]+"\n"+totpCode(t, totpSecret(t, uri[1]))+"\n", "login", ra.url)
	jsonOut(t, mustRun(t, bob, "", "fleets", "--json"), &fleets)
	if len(fleets) != 1 || fleets[0].Role != "operator" {
		t.Errorf("bob's fleets = %+v; want acme as operator", fleets)
	}
	if r := runCLI(t, bob, "", "fleets", "create", "mine"); r.err == nil || !strings.Contains(r.err.Error(), "administrator") {
		t.Errorf("bob creating a fleet: %v; want a refusal naming administrators", r.err)
	}

	// Bob makes an enrollment token; a device enrolls with it.
	r = mustRun(t, bob, "", "enroll-token", "create", "--fleet", "acme", "--uses", "2", "--ttl", "1h")
	token := strings.TrimSpace(r.stdout)
	if !strings.Contains(r.stderr, "--token "+token+" --fingerprint "+ra.fingerprint) {
		t.Errorf("enroll-token create does not print the enroll command:\n%s", r.stderr)
	}
	enroll(t, ra, token, "dev1")
	var devices []apitype.Device
	jsonOut(t, mustRun(t, bob, "", "devices", "--json"), &devices)
	if len(devices) != 1 || devices[0].Name != "dev1" || devices[0].Fleet != "acme" {
		t.Fatalf("devices --json = %+v; want dev1 in acme", devices)
	}
	r = mustRun(t, bob, "", "devices")
	if !regexp.MustCompile(`dev1\s+acme\s+never`).MatchString(r.stdout) {
		t.Errorf("devices table:\n%s", r.stdout)
	}
	mustRun(t, bob, "", "devices", "label", "dev1", "site=berlin", "--fleet", "acme")
	jsonOut(t, mustRun(t, bob, "", "devices", "--json"), &devices)
	if devices[0].Labels["site"] != "berlin" {
		t.Errorf("labels after label: %v", devices[0].Labels)
	}
	var ets []apitype.EnrollmentToken
	jsonOut(t, mustRun(t, bob, "", "enroll-token", "list", "--fleet", "acme", "--json"), &ets)
	if len(ets) != 1 || ets[0].UsesLeft != 1 || ets[0].Token != "" {
		t.Errorf("enroll-token list = %+v; want one token with one use left and no secret", ets)
	}
	mustRun(t, bob, "", "enroll-token", "rm", "--fleet", "acme", ets[0].ID)

	// Removing a device takes an owner.
	if r := runCLI(t, bob, "", "devices", "rm", "dev1"); r.err == nil || !strings.Contains(r.err.Error(), "ask an owner") {
		t.Errorf("operator removing a device: %v; want refused", r.err)
	}
	mustRun(t, admin, "", "devices", "rm", "dev1", "--fleet", "acme")
	jsonOut(t, mustRun(t, admin, "", "devices", "--json"), &devices)
	if len(devices) != 0 {
		t.Errorf("devices after rm = %+v", devices)
	}

	// Revoking bob's role hides the fleet from him.
	mustRun(t, admin, "", "users", "revoke", "bob@example.com", "--fleet", "acme")
	jsonOut(t, mustRun(t, bob, "", "fleets", "--json"), &fleets)
	if len(fleets) != 0 {
		t.Errorf("bob's fleets after revoke = %+v", fleets)
	}

	// Tokens, and logout revokes on the server.
	var tokens []apitype.TokenInfo
	jsonOut(t, mustRun(t, bob, "", "tokens", "--json"), &tokens)
	if len(tokens) != 1 || !tokens[0].Current {
		t.Errorf("bob's tokens = %+v; want this login only", tokens)
	}
	old := savedConfig(t, bob)
	mustRun(t, bob, "", "logout")
	stale := map[string]string{"XDG_CONFIG_HOME": t.TempDir(), envServer: ra.url, envToken: old.Token, envFingerprint: ra.fingerprint}
	if r := runCLI(t, stale, "", "fleets"); r.err == nil || !strings.Contains(r.err.Error(), "run `porthole login`") {
		t.Errorf("the logged-out token still works, or the error does not say to log in: %v", r.err)
	}

	// bob lost his authenticator: an administrator resets him, and the
	// new secrets log in (api TestResetUser: a reset ends his logins).
	// Then he leaves: deleted, his login ends. Nobody deletes themselves.
	r = mustRun(t, admin, "", "users", "reset", "bob@example.com")
	password = regexp.MustCompile(`(?m)^password: (\S+)$`).FindStringSubmatch(r.stdout)
	uri = regexp.MustCompile(`(?m)^totp_uri: (\S+)$`).FindStringSubmatch(r.stdout)
	if password == nil || uri == nil || !strings.Contains(r.stderr, "reset user bob@example.com") {
		t.Fatalf("users reset printed:\n%s%s", r.stdout, r.stderr)
	}
	mustRun(t, bob, "bob@example.com\n"+password[1]+"\n"+totpCode(t, totpSecret(t, uri[1]))+"\n", "login", ra.url)
	mustRun(t, admin, "", "users", "delete", "bob@example.com")
	if r := runCLI(t, bob, "", "fleets"); r.err == nil || !strings.Contains(r.err.Error(), "run `porthole login`") {
		t.Errorf("bob's login survived his deletion: %v", r.err)
	}
	if r := runCLI(t, admin, "", "users", "delete", adminEmail); r.err == nil || !strings.Contains(r.err.Error(), "another administrator can") {
		t.Errorf("deleting oneself: %v", r.err)
	}
}

// enroll enrolls a device as the agent does.
func enroll(t *testing.T, ra *realAPI, token, name string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	c, err := apiclient.New(ra.url, apiclient.Options{Fingerprint: ra.fingerprint})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Enroll(t.Context(), apitype.EnrollRequest{
		Token: token, Name: name, PublicKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))),
	}); err != nil {
		t.Fatalf("enrolling %s: %v", name, err)
	}
}

func jsonOut(t *testing.T, r result, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, r.stdout)
	}
}

func ptr[T any](v T) *T { return &v }
