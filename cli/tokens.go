package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/spf13/cobra"
)

func newTokens(a *app) *cobra.Command {
	cmd := listing[apitype.TokenInfo]{
		fetch: func(ctx context.Context, c *apiclient.Client) ([]apitype.TokenInfo, error) {
			return c.Tokens(ctx)
		},
		compare: func(x, y apitype.TokenInfo) int { return x.CreatedAt.Compare(y.CreatedAt) },
		none:    "no tokens",
		headers: []string{"ID", "NAME", "CREATED", "EXPIRES", "LAST USED"},
		row: func(t apitype.TokenInfo) []string {
			name := t.Name
			if t.Current {
				name += " (this login)"
			}
			return []string{t.ID, orDash(name), formatTime(t.CreatedAt), formatTime(t.ExpiresAt), formatTime(t.LastUsedAt)}
		},
	}.attach(a, &cobra.Command{
		Use:   "tokens",
		Short: "List your API tokens (one per login)",
		Args:  cobra.NoArgs,
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke one of your tokens, such as the login of a lost laptop",
		Args:  cobra.ExactArgs(1),
		RunE:  func(cmd *cobra.Command, args []string) error { return a.revokeToken(cmd.Context(), args[0]) },
	})
	return cmd
}

func (a *app) revokeToken(ctx context.Context, id string) error {
	c, err := a.connect()
	if err != nil {
		return err
	}
	if err := c.RevokeToken(ctx, id); err != nil {
		return err
	}
	dir, cfg, err := a.loadConfig()
	if err != nil {
		return err
	}
	if !a.target.tokenFromEnv && strings.EqualFold(cfg.TokenID, id) {
		cfg.forgetLogin()
		if err := saveConfig(dir, cfg); err != nil {
			return err
		}
		fmt.Fprintf(a.io.Err, "revoked token %s, the one of this login: you are logged out\n", id)
		return nil
	}
	fmt.Fprintf(a.io.Err, "revoked token %s\n", id)
	return nil
}
