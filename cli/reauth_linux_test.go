//go:build linux

package cli

import (
	"context"
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
	master, tty := openPTY(t)
	var screen testnet.Buffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			screen.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), []string{"ssh", "dev2.acme"},
			IO{In: tty, Out: tty, Err: tty, Getenv: func(k string) string { return env[k] }})
	}()
	testwait.For(t, 10*time.Second, "the code prompt", func() bool { return strings.Contains(screen.String(), "Authenticator code (TOTP): ") })
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
	master, tty := openPTY(t)
	var screen testnet.Buffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			screen.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), []string{"ssh", "dev2.acme"},
			IO{In: tty, Out: tty, Err: tty, Getenv: func(k string) string { return env[k] }})
	}()
	testwait.For(t, 10*time.Second, "the code prompt", func() bool { return strings.Contains(screen.String(), "Authenticator code (TOTP): ") })
	master.WriteString("000000\r")
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "re-authentication refused: wrong code") {
		t.Errorf("error: %v", err)
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("session requests: %d; want 1", n)
	}
}
