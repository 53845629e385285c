package agentssh

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/sessioncert"
)

func TestNewChecksConfig(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no host key", func(c *Config) { c.HostKey = nil }, "HostKey"},
		{"no user CA", func(c *Config) { c.UserCA = nil }, "UserCA"},
		{"no device id", func(c *Config) { c.DeviceID = "" }, "DeviceID"},
		{"no SessionOpen", func(c *Config) { c.SessionOpen = nil }, "SessionOpen"},
		{"a port out of range", func(c *Config) { c.AllowPorts = []int{22, 70000} }, "70000"},
		{"an unknown user", func(c *Config) { c.RunAs = "no-such-user-here" }, "no user"},
		{"another user without SFTPCommand", func(c *Config) { c.RunAs = "nobody" }, "SFTPCommand"},
		{"a relative SFTPCommand", func(c *Config) { c.SFTPCommand = []string{"porthole-agent", "sftp-server"} }, "absolute"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := e.config()
			tt.edit(&c)
			_, err := New(c)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v; want ErrConfig naming %q", err, tt.want)
			}
		})
	}
}

// TestRunAsNeedsRoot: an agent that is not root says so, instead of
// failing at the first shell.
func TestRunAsNeedsRoot(t *testing.T) {
	needRoot(t)
	out, err := runAsNobody(t, testBinary(t), modeNewRunAs, "root")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(out, "needs the agent to run as root") {
		t.Errorf("New as nobody with RunAs=root: %q; want it to say it needs root", out)
	}
}

// TestLoginRefused tries what an attacker (or a confused engineer) would.
func TestLoginRefused(t *testing.T) {
	e := newEnv(t)
	other := newSigner(t)
	withClaims := func(edit func(*sessioncert.Claims)) ssh.AuthMethod {
		c := claims()
		edit(&c)
		cs, err := ssh.NewCertSigner(e.cert(t, e.userCA, c), e.engineer)
		if err != nil {
			t.Fatal(err)
		}
		return ssh.PublicKeys(cs)
	}
	otherCA, err := ssh.NewCertSigner(e.cert(t, other, claims()), e.engineer)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		auth    ssh.AuthMethod
		closed  bool   // SessionOpen says no
		want    string // in ServeConn's error
		banner  string // in what the engineer is told, "" for nothing
		session string
	}{
		{name: "a bare key", auth: ssh.PublicKeys(e.engineer), want: "not a certificate"},
		{name: "a certificate from another CA", auth: ssh.PublicKeys(otherCA), want: "another authority"},
		{name: "an expired certificate", auth: withClaims(func(c *sessioncert.Claims) {
			c.ValidAfter, c.ValidBefore = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
		}), want: "expired", banner: "not valid now"},
		{name: "a certificate for another device", auth: withClaims(func(c *sessioncert.Claims) { c.Device = "dev2" }), want: "another device", banner: "acme/dev2"},
		{name: "a certificate for another fleet", auth: withClaims(func(c *sessioncert.Claims) { c.Fleet = "globex" }), want: "another device", banner: "globex/dev1"},
		{name: "a certificate for another device id", auth: withClaims(func(c *sessioncert.Claims) { c.DeviceID = "dev_2" }), want: "another device", banner: "id dev_2"},
		{name: "a certificate for another session", auth: withClaims(func(c *sessioncert.Claims) { c.Session = "ses_2" }), want: "session ses_2", banner: "not this one"},
		{name: "a session that is not open", auth: e.certAuth(t), closed: true, want: "not open", banner: "not open"},
		{name: "no key at all", auth: ssh.Password("hunter2"), want: "no session certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := e.server(t, func(c *Config) {
				c.SessionOpen = func(s string) bool { return !tt.closed && s == testSession }
			})
			var mu sync.Mutex
			var banners strings.Builder
			cc := e.clientConfig(tt.auth)
			cc.BannerCallback = func(m string) error {
				mu.Lock()
				defer mu.Unlock()
				banners.WriteString(m)
				return nil
			}
			_, s, err := e.dialConfig(t, srv, testSession, cc)
			if err == nil {
				t.Fatal("logged in")
			}
			serr := s.wait(t)
			if serr == nil || !strings.Contains(serr.Error(), tt.want) {
				t.Errorf("ServeConn = %v; want an error containing %q", serr, tt.want)
			}
			mu.Lock()
			defer mu.Unlock()
			if tt.banner == "" && banners.Len() > 0 {
				t.Errorf("banner %q; want none", banners.String())
			}
			if !strings.Contains(banners.String(), tt.banner) {
				t.Errorf("banner %q; want one containing %q", banners.String(), tt.banner)
			}
		})
	}
}

// TestUserNameIgnored: stock ssh sends the laptop's user name; the
// certificate alone decides.
func TestUserNameIgnored(t *testing.T) {
	e := newEnv(t)
	srv := e.server(t, nil)
	for _, user := range []string{"root", "", "alice"} {
		cc := e.clientConfig(e.certAuth(t))
		cc.User = user
		c, _, err := e.dialConfig(t, srv, testSession, cc)
		if err != nil {
			t.Fatalf("user %q: %v", user, err)
		}
		c.Close()
	}
}

func TestSecondFactor(t *testing.T) {
	const code = "K4M2-9QXD-TT7P"
	e := newEnv(t)
	var mu sync.Mutex
	var tries []string
	srv := e.server(t, func(c *Config) {
		c.SecondFactor = func(session string) (string, func(string) error) {
			if session != testSession {
				return "", nil
			}
			return "Support code for dev1: ", func(answer string) error {
				mu.Lock()
				defer mu.Unlock()
				tries = append(tries, answer)
				if answer != code {
					return errors.New("wrong support code")
				}
				return nil
			}
		}
	})
	answer := func(a string) ssh.AuthMethod {
		return ssh.KeyboardInteractive(func(_, _ string, questions []string, echos []bool) ([]string, error) {
			if len(questions) != 1 || questions[0] != "Support code for dev1: " || echos[0] {
				return nil, errors.New("unexpected questions")
			}
			return []string{a}, nil
		})
	}

	t.Run("certificate alone", func(t *testing.T) {
		if _, _, err := e.dial(t, srv, testSession, e.certAuth(t)); err == nil {
			t.Fatal("logged in without the support code")
		}
	})
	t.Run("code alone", func(t *testing.T) {
		if _, _, err := e.dial(t, srv, testSession, answer(code)); err == nil {
			t.Fatal("logged in with the support code and no certificate")
		}
	})
	t.Run("wrong code", func(t *testing.T) {
		cc := e.clientConfig(e.certAuth(t), answer("AAAA-BBBB-CCCC"))
		var banner string
		cc.BannerCallback = func(m string) error { banner += m; return nil }
		_, s, err := e.dialConfig(t, srv, testSession, cc)
		if err == nil {
			t.Fatal("logged in with a wrong code")
		}
		if !strings.Contains(banner, "wrong support code") {
			t.Errorf("banner %q; want the check's words", banner)
		}
		if err := s.wait(t); err == nil {
			t.Error("ServeConn = nil; want a refusal")
		}
	})
	t.Run("right code", func(t *testing.T) {
		c, _, err := e.dial(t, srv, testSession, e.certAuth(t), answer(code))
		if err != nil {
			t.Fatal(err)
		}
		if out, _, err := run(t, c, "echo in", nil); err != nil || out != "in\n" {
			t.Errorf("after the code: %q, %v", out, err)
		}
	})
	mu.Lock()
	defer mu.Unlock()
	if len(tries) == 0 || tries[len(tries)-1] != code {
		t.Errorf("check saw %q", tries)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	e := newEnv(t)
	srv := e.server(t, func(c *Config) { c.HandshakeTimeout = 100 * time.Millisecond })
	addr, s := listen(t, srv, testSession)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// Say nothing.
	start := time.Now()
	err = s.wait(t)
	if err == nil || !strings.Contains(err.Error(), "did not finish") {
		t.Errorf("ServeConn = %v; want a login timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

// TestCancelDuringHandshake: a session closed while its engineer logs in
// ends the connection and returns nil.
func TestCancelDuringHandshake(t *testing.T) {
	e := newEnv(t)
	srv := e.server(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeConn(ctx, sc, testSession) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeConn = %v; want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeConn went on after cancel")
	}
}
