//go:build linux

package cli

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/internal/testnet"
	"github.com/porthole/porthole/internal/testwait"
)

// TestSSHReauthPrompt: porthole ssh on a terminal, refused for want of a
// fresh second factor, shows the fleet's words, asks for the code, sends
// it, and asks for the session again, once.
func TestSSHReauthPrompt(t *testing.T) {
	t.Parallel()
	f, asked, codes := reauthAPI(t)
	env := f.loggedIn(t)
	master, screen, done := untilCodePrompt(t, env, "ssh", "dev2.acme")
	if s := screen.String(); !strings.Contains(s, "within the last 15m") {
		t.Errorf("the terminal shows %q; want the fleet's rule", s)
	}
	master.WriteString("123 456\r")
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("porthole ssh did not finish")
	}
	if err == nil || !strings.Contains(err.Error(), "dev2 is offline") {
		t.Errorf("error after the retry: %v; want the retried request's answer", err)
	}
	if got := <-codes; got != "123456" {
		t.Errorf("code sent: %q", got)
	}
	if n := asked.Load(); n != 2 {
		t.Errorf("session requests: %d; want 2 (one retry)", n)
	}
}

// TestSSHReauthWrongCode: a wrong code ends the run in words, without a
// second request.
func TestSSHReauthWrongCode(t *testing.T) {
	t.Parallel()
	f, asked, _ := reauthAPI(t)
	env := f.loggedIn(t)
	master, _, done := untilCodePrompt(t, env, "ssh", "dev2.acme")
	master.WriteString("000000\r")
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "re-authentication refused: wrong code") {
		t.Errorf("error: %v", err)
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("session requests: %d; want 1", n)
	}
}

// TestApproveReauthPrompt: porthole requests approve on a terminal,
// refused because the fleet asks its approvers too for a fresh code, asks
// for the code, sends it and approves again, once.
func TestApproveReauthPrompt(t *testing.T) {
	t.Parallel()
	f, asked, codes := reauthAPI(t)
	env := f.loggedIn(t)
	master, screen, done := untilCodePrompt(t, env, "requests", "approve", "req_q2x7p4t8w6zak3m9")
	if s := screen.String(); !strings.Contains(s, "to approve a session") {
		t.Errorf("the terminal shows %q; want the fleet's rule", s)
	}
	master.WriteString("123456\r")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("approving after a fresh code: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("porthole requests approve did not finish")
	}
	testwait.For(t, 5*time.Second, "the approval's words", func() bool {
		return strings.Contains(screen.String(), "approved req_q2x7p4t8w6zak3m9: bob@example.com's session ses_1")
	})
	if got := <-codes; got != "123456" {
		t.Errorf("code sent: %q", got)
	}
	if n := asked.Load(); n != 2 {
		t.Errorf("approvals sent: %d; want 2 (one retry)", n)
	}
}

// untilCodePrompt runs porthole with args on a terminal of its own and
// returns once it asks for the authenticator code: the terminal's master
// end to type into, what it shows, and the run's end.
func untilCodePrompt(t *testing.T, env map[string]string, args ...string) (*os.File, *testnet.Buffer, chan error) {
	t.Helper()
	master, tty := openPTY(t)
	screen := watchScreen(master)
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), args, IO{In: tty, Out: tty, Err: tty, Getenv: func(k string) string { return env[k] }})
	}()
	testwait.For(t, 10*time.Second, "the code prompt", func() bool { return strings.Contains(screen.String(), "Authenticator code (TOTP): ") })
	return master, screen, done
}
