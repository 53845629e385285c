package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/spf13/cobra"
)

func newLogout(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Revoke your token on the server and forget it here",
		Long: `Revoke the login's token on the server, then forget it here. If the server
cannot be reached, the token is forgotten here anyway and porthole says how to
revoke it later. The server's pinned certificate is kept.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.logout(cmd.Context()) },
	}
}

func (a *app) logout(ctx context.Context) error {
	dir, cfg, err := a.loadConfig()
	if err != nil {
		return err
	}
	c, err := a.connect()
	if errors.Is(err, errNotLoggedIn) {
		if a.target.expires.IsZero() {
			fmt.Fprintln(a.io.Err, "not logged in; nothing to do")
			return nil
		}
		// The saved login has expired: the server has no use for it either.
		cfg.forgetLogin()
		if err := saveConfig(dir, cfg); err != nil {
			return err
		}
		fmt.Fprintf(a.io.Err, "logged out (the login to %s had expired)\n", a.target.server)
		return nil
	}
	if err != nil {
		return err
	}
	t := a.target
	revokeErr := c.Logout(ctx)
	if revokeErr != nil && !apiclient.IsCode(revokeErr, apitype.CodeUnauthenticated) {
		revokeErr = a.explain(ctx, revokeErr)
	}
	if t.tokenFromEnv {
		if revokeErr != nil {
			return revokeErr
		}
		fmt.Fprintf(a.io.Err, "revoked the token in %s on %s; unset it\n", envToken, t.server)
		return nil
	}
	tokenID := cfg.TokenID
	cfg.forgetLogin()
	if err := saveConfig(dir, cfg); err != nil {
		return err
	}
	switch {
	case revokeErr == nil:
		fmt.Fprintf(a.io.Err, "logged out of %s\n", t.server)
	case apiclient.IsCode(revokeErr, apitype.CodeUnauthenticated):
		fmt.Fprintf(a.io.Err, "logged out: the server no longer accepted this login (it expired or was revoked)\n")
	default:
		fmt.Fprintf(a.io.Err, "warning: could not revoke the token on the server: %v\n"+
			"Forgot the login here anyway. The token stays valid until %s; revoke it from another login with:\n"+
			"  porthole tokens revoke %s\n", revokeErr, formatTime(t.expires), tokenID)
	}
	return nil
}
