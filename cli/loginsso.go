package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
)

// ssoLogin is `porthole login --sso`: the device authorization grant
// (RFC 8628) that portholed serves. It prints the page and the code,
// polls until the engineer has signed in in a browser, and returns the
// login; the provider's tokens stay with the server.
func (a *app) ssoLogin(ctx context.Context, c *apiclient.Client) (*apitype.LoginResponse, error) {
	host, _ := os.Hostname()
	dc, err := c.DeviceCode(ctx, apitype.DeviceCodeRequest{ClientName: host})
	if apiclient.IsCode(err, apitype.CodeNotFound) {
		return nil, &userError{msg: "this server does not offer single sign-on: log in without --sso, with your email, password and code", err: err}
	}
	if err != nil {
		return nil, err
	}
	expires := a.now().Add(time.Duration(dc.ExpiresIn) * time.Second)
	fmt.Fprintf(a.io.Err, "To sign in, open this page in a browser, on this or any other device:\n\n    %s\n\n"+
		"and check that it shows the code  %s  (or open %s and type it).\n\n", dc.VerificationURIComplete, dc.UserCode, dc.VerificationURI)
	interval := time.Duration(max(dc.Interval, 1)) * time.Second
	said := ""
	for {
		if left := expires.Sub(a.now()); left > 0 {
			if msg := fmt.Sprintf("waiting for you to sign in at %s (expires in %s)", dc.VerificationURI, waitLeft(left)); msg != said {
				fmt.Fprintln(a.io.Err, msg)
				said = msg
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(interval):
		}
		resp, err := c.DeviceToken(ctx, dc.DeviceCode)
		switch {
		case err == nil:
			return resp, nil
		case apiclient.IsCode(err, apitype.CodeAuthorizationPending):
		case apiclient.IsCode(err, apitype.CodeSlowDown):
			interval += 5 * time.Second // RFC 8628 3.5
		case apiclient.IsCode(err, apitype.CodeExpiredToken):
			return nil, &userError{msg: "nobody signed in within 10 minutes, so the code expired: run porthole login --sso again", err: err}
		case apiclient.IsCode(err, apitype.CodeAccessDenied):
			return nil, &userError{msg: "single sign-on refused: the browser page said why (often: none of your groups gives you a role here; ask your operator)", err: err}
		default:
			return nil, err
		}
	}
}

// waitLeft says a wait in whole minutes, or seconds under one.
func waitLeft(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%d s", int(d.Seconds()))
	}
	return fmt.Sprintf("%d min", int(d.Minutes()))
}
