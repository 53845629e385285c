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
		name string
		err  error
		want string
	}{
		{"unauthenticated", &apiclient.Error{Status: 401, Code: apitype.CodeUnauthenticated, Message: "bad token"},
			"not logged in to " + closed + " (or your login expired): run `porthole login`"},
		{"forbidden", &apiclient.Error{Status: 403, Code: apitype.CodeForbidden, Message: "only an owner of fleet acme can delete devices"},
			"only an owner of fleet acme can delete devices (ask an owner of the fleet or an administrator if you need it)"},
		{"other API error", fmt.Errorf("wrapped: %w", &apiclient.Error{Status: 404, Code: apitype.CodeNotFound, Message: "no fleet acme"}),
			"no fleet acme"},
		{"connection refused", refused, "cannot reach the Porthole server at " + strings.TrimPrefix(closed, "https://") + ": is portholed running?"},
		{"interrupted", canceled, "interrupted"},
		{"already explained", &userError{msg: "as it was"}, "as it was"},
		{"not logged in", notLoggedIn("not logged in to X"), "not logged in to X"},
		{"anything else", errors.New("disk full"), "disk full"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := &app{target: target{server: closed}}
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
