package cli

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/api"
	"github.com/porthole/porthole/internal/testhydra"
	"github.com/porthole/porthole/sso"
	"github.com/porthole/porthole/store"
)

// TestLoginSSO: `porthole login --sso` against the real API and a real
// provider prints a link and a code, waits with its progress while the
// engineer signs in in a browser, and keeps the login; nothing is pasted
// back.
func TestLoginSSO(t *testing.T) {
	idp := testhydra.Start(t)
	keys, st := newServerState(t)
	if err := st.CreateFleet(t.Context(), &store.Fleet{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{keys.TLS}}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	callback := ts.URL + "/api/v1/sso/callback"
	id, secret := idp.Client(t, callback)
	cfg := sso.Config{Issuer: idp.Issuer, ClientID: id, ClientSecret: secret,
		Roles: []sso.RoleMapping{{Group: "support-eu", Fleet: "acme", Role: store.RoleOperator}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	p, err := sso.New(cfg, secret, callback, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Store: st, Keys: keys, SSO: p, PublicURL: ts.URL, DevicePollInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	idp.SetUser("ann", testhydra.User{Email: "ann@example.com", Groups: []string{"support-eu"}})

	env := testEnv(t)
	env[envFingerprint] = keys.TLSFingerprint()
	stderr, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := Run(context.Background(), []string{"login", "--sso", ts.URL}, IO{In: strings.NewReader(""), Out: io.Discard, Err: w,
			Getenv: func(k string) string { return env[k] }})
		w.Close()
		done <- err
	}()
	var said strings.Builder
	link := ""
	lines := bufio.NewScanner(stderr)
	for lines.Scan() {
		said.WriteString(lines.Text() + "\n")
		if regexp.MustCompile(`^waiting for you to sign in at ` + regexp.QuoteMeta(ts.URL) + `/sso/device \(expires in (9|10) min\)$`).MatchString(lines.Text()) {
			break
		}
		if m := regexp.MustCompile(`^\s+(https://\S+user_code=\S+)$`).FindStringSubmatch(lines.Text()); m != nil {
			link = m[1]
		}
	}
	go io.Copy(io.Discard, stderr)
	if link == "" {
		t.Fatalf("porthole login --sso printed no link:\n%s", said.String())
	}
	code := regexp.MustCompile(`shows the code  ([B-Z]{4}-[B-Z]{4})`).FindStringSubmatch(said.String())
	if code == nil {
		t.Fatalf("porthole login --sso printed no code:\n%s", said.String())
	}

	// The engineer's browser, on any device.
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := b.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), code[1]) {
		t.Fatalf("the page does not show the code %s:\n%s", code[1], page)
	}
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(string(page))
	form, err := b.PostForm(ts.URL+"/sso/device", url.Values{"csrf": {csrf[1]}, "user_code": {code[1]}})
	if err != nil {
		t.Fatal(err)
	}
	form.Body.Close()
	if _, body := idp.SignIn(t, b, form, "ann"); !strings.Contains(body, "Signed in as ann@example.com") {
		t.Fatalf("the browser's sign-in ended with:\n%s", body)
	}
	if err := <-done; err != nil {
		t.Fatalf("porthole login --sso: %v\n%s", err, said.String())
	}
	if c := savedConfig(t, env); c.Token == "" || c.Email != "ann@example.com" || c.Server != ts.URL {
		t.Errorf("saved login %+v", c)
	}
	r := mustRun(t, env, "", "fleets")
	if !strings.Contains(r.stdout, "acme") || !strings.Contains(r.stdout, "operator") {
		t.Errorf("porthole fleets after the SSO login:\n%s", r.stdout)
	}
}

// TestLoginSSOOff: a server without single sign-on says so.
func TestLoginSSOOff(t *testing.T) {
	ra, _ := startRealAPI(t)
	env := testEnv(t)
	env[envFingerprint] = ra.fingerprint
	r := runCLI(t, env, "", "login", "--sso", ra.url)
	if r.err == nil || !strings.Contains(r.err.Error(), "does not offer single sign-on: log in without --sso") {
		t.Errorf("login --sso to a server without SSO: %v", r.err)
	}
}
