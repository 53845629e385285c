package cli

import (
	"testing"
	"time"
)

func TestNormalizeServer(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"https://porthole.example.com:8443", "https://porthole.example.com:8443"},
		{"porthole.example.com:8443", "https://porthole.example.com:8443"},
		{"HTTPS://Porthole.Example.COM/", "https://porthole.example.com"},
		{"https://porthole.example.com:443", "https://porthole.example.com"},
		{"https://example.com/porthole/", "https://example.com/porthole"},
		{" https://127.0.0.1:9000 ", "https://127.0.0.1:9000"},
		{"https://[::1]:9000", "https://[::1]:9000"},
		{"http://porthole.example.com", ""}, // passwords never go in the clear
		{"https://user:pw@example.com", ""},
		{"https://example.com/?q=1", ""},
		{"https://", ""},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := normalizeServer(tt.in)
			if got != tt.want || (err != nil) != (tt.want == "") {
				t.Errorf("normalizeServer(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

// TestResolveTarget: the flag beats the environment, which beats the saved
// login; and a saved token never goes to a server other than its own.
func TestResolveTarget(t *testing.T) {
	saved := Config{
		Server: "https://a.example.com", Token: "pht_a", ExpiresAt: time.Unix(2e9, 0),
		Pins: map[string]string{"https://a.example.com": "sha256:aa", "https://b.example.com": "sha256:bb"},
	}
	for _, tt := range []struct {
		name    string
		flag    string
		env     map[string]string
		want    target
		wantErr bool
	}{
		{name: "saved login", want: target{server: "https://a.example.com", token: "pht_a", fingerprint: "sha256:aa", expires: time.Unix(2e9, 0)}},
		{name: "saved server written differently", flag: "A.example.com:443",
			want: target{server: "https://a.example.com", token: "pht_a", fingerprint: "sha256:aa", expires: time.Unix(2e9, 0)}},
		{name: "env server elsewhere gets no saved token", env: map[string]string{envServer: "https://b.example.com"},
			want: target{server: "https://b.example.com", fingerprint: "sha256:bb"}},
		{name: "flag server elsewhere gets no saved token", flag: "https://evil.example.com",
			env:  map[string]string{envServer: "https://a.example.com"},
			want: target{server: "https://evil.example.com"}},
		{name: "env token and fingerprint win", env: map[string]string{envToken: "pht_env", envFingerprint: "sha256:ee"},
			want: target{server: "https://a.example.com", token: "pht_env", tokenFromEnv: true, fingerprint: "sha256:ee"}},
		{name: "env server and token", env: map[string]string{envServer: "https://c.example.com", envToken: "pht_env"},
			want: target{server: "https://c.example.com", token: "pht_env", tokenFromEnv: true}},
		{name: "bad env server", env: map[string]string{envServer: "http://a.example.com"}, wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveTarget(tt.flag, func(k string) string { return tt.env[k] }, saved)
			if (err != nil) != tt.wantErr {
				t.Fatalf("resolveTarget: err = %v; want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("resolveTarget = %+v; want %+v", got, tt.want)
			}
		})
	}
	if got, err := resolveTarget("", func(string) string { return "" }, Config{}); err != nil || got != (target{}) {
		t.Errorf("nothing known: %+v, %v; want empty target", got, err)
	}
}

// TestSavedTokenStaysHome runs a command against another server than the
// saved login's and checks that server never sees the saved token.
func TestSavedTokenStaysHome(t *testing.T) {
	other := newFakeAPI(t, nil)
	env := testEnv(t)
	dir, _ := configDir(func(k string) string { return env[k] })
	if err := saveConfig(dir, Config{Server: "https://home.example.com", Token: "pht_home",
		Pins: map[string]string{other.URL: other.fingerprint}}); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, env, "", "--server", other.URL, "devices")
	if r.err == nil || !isNotLoggedIn(r.err) {
		t.Errorf("devices against another server: %v; want 'not logged in'", r.err)
	}
	if seen := other.seen(); len(seen) != 0 {
		t.Errorf("the other server was sent %v; want nothing without a login of its own", seen)
	}
}

func TestExpiredLogin(t *testing.T) {
	f := newFakeAPI(t, nil)
	env := testEnv(t)
	dir, _ := configDir(func(k string) string { return env[k] })
	if err := saveConfig(dir, Config{Server: f.URL, Token: "pht_old", ExpiresAt: time.Now().Add(-time.Minute),
		Pins: map[string]string{f.URL: f.fingerprint}}); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, env, "", "devices")
	if r.err == nil || !isNotLoggedIn(r.err) || len(f.seen()) != 0 {
		t.Errorf("devices with an expired login: %v (requests %v); want 'expired' and no request", r.err, f.seen())
	}
	mustRun(t, env, "", "logout")
	if c, _ := loadConfig(dir); c.Token != "" || c.Pins[f.URL] == "" {
		t.Errorf("after logout of an expired login: %+v; want the token gone and the pin kept", c)
	}
}
