package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/engineerssh"
)

func TestExplain(t *testing.T) {
	// A port nothing listens on, for a real "connection refused".
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "https://" + ln.Addr().String()
	ln.Close()
	c, err := apiclient.New(closed, apiclient.Options{Token: "x"})
	if err != nil {
		t.Fatal(err)
	}
	_, refused := c.Me(t.Context())
	canceledCtx, cancel := context.WithCancel(t.Context())
	cancel()
	_, canceled := c.Me(canceledCtx)

	for _, tt := range []struct {
		name    string
		err     error
		fromEnv bool // the token came from PORTHOLE_TOKEN
		want    string
	}{
		{"unauthenticated", &apiclient.Error{Status: 401, Code: apitype.CodeUnauthenticated, Message: "bad token"},
			false, "not logged in to " + closed + " (or your login expired): run `porthole login`"},
		{"unauthenticated env token", &apiclient.Error{Status: 401, Code: apitype.CodeUnauthenticated, Message: "bad token"},
			true, closed + " refused the token in PORTHOLE_TOKEN (it expired or was revoked): set a valid one, or unset it and run `porthole login`"},
		{"forbidden", &apiclient.Error{Status: 403, Code: apitype.CodeForbidden, Message: "only an owner of fleet acme can delete devices"},
			false, "only an owner of fleet acme can delete devices (ask an owner of the fleet or an administrator if you need it)"},
		{"other API error", fmt.Errorf("wrapped: %w", &apiclient.Error{Status: 404, Code: apitype.CodeNotFound, Message: "no fleet acme"}),
			false, "no fleet acme"},
		{"connection refused", refused, false, "cannot reach the Porthole server at " + strings.TrimPrefix(closed, "https://") + ": is portholed running?"},
		{"interrupted", canceled, false, "interrupted"},
		{"already explained", &userError{msg: "as it was"}, false, "as it was"},
		{"not logged in", notLoggedIn("not logged in to X"), false, "not logged in to X"},
		{"anything else", errors.New("disk full"), false, "disk full"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := &app{target: target{server: closed, tokenFromEnv: tt.fromEnv}}
			got := a.explain(t.Context(), tt.err)
			if got.Error() != tt.want {
				t.Errorf("explain(%v) = %q; want %q", tt.err, got, tt.want)
			}
			if !errors.Is(got, tt.err) {
				t.Errorf("explain(%v) does not wrap the original error", tt.err)
			}
		})
	}
}

// TestRelayTurnedAway: a relay that closes the connection before the login
// (past its caps on connections in their handshake: issue 11, finding 2)
// is said to be turning connections away, not blamed on the device.
func TestRelayTurnedAway(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	key, err := engineerssh.NewSessionKey()
	if err != nil {
		t.Fatal(err)
	}
	c, err := apiclient.New("https://"+ln.Addr().String(), apiclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := &link{c: c, opened: &apitype.CreateSessionResponse{RelayAddr: ln.Addr().String()}, session: apitype.Session{ID: "ses_1"},
		signer: key, hostCA: key.PublicKey(), device: apitype.Device{Name: "dev1"}}
	err = l.dialRelay(t.Context())
	if ue, ok := errors.AsType[*userError](err); !ok || !strings.Contains(ue.msg, "closed the connection before logging you in: it is turning connections away") ||
		strings.Contains(ue.msg, "dev1") {
		t.Errorf("dialRelay = %v; want the relay turning connections away, not a word of the device", err)
	}
}
