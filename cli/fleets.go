package cli

import (
	"context"
	"strings"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/spf13/cobra"
)

func newFleets(a *app) *cobra.Command {
	cmd := listing[apitype.Fleet]{
		fetch: func(ctx context.Context, c *apiclient.Client) ([]apitype.Fleet, error) {
			return c.Fleets(ctx)
		},
		compare: func(x, y apitype.Fleet) int { return strings.Compare(x.Name, y.Name) },
		none:    "no fleets (an administrator makes them with `porthole fleets create`)",
		headers: []string{"NAME", "ROLE", "CREATED"},
		row: func(fl apitype.Fleet) []string {
			return []string{fl.Name, orDash(fl.Role), formatTime(fl.CreatedAt)}
		},
	}.attach(a, &cobra.Command{
		Use:   "fleets",
		Short: "List the fleets you belong to, with your role in each",
		Long: `List the fleets you belong to, with your role in each: owner (manages members
and devices), operator (enrolls devices, opens sessions) or auditor (reads).
Administrators see every fleet, with the role "admin".`,
		Args: cobra.NoArgs,
	})
	cmd.AddCommand(&cobra.Command{
		Use:     "create NAME",
		Short:   "Make a new fleet (administrators)",
		Long:    "Make a new fleet. NAME is lower-case letters, digits and dashes, up to 63.",
		Example: "  porthole fleets create acme\n  porthole users grant bob@example.com --fleet acme --role operator",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *apiclient.Client) error {
				_, err := c.CreateFleet(cmd.Context(), args[0])
				return err
			}, "created fleet %s", args[0])
		},
	})
	cmd.AddCommand(newPolicy(a))
	return cmd
}

// addFleetFlag gives cmd a --fleet flag, completed from the fleets the
// user belongs to.
func addFleetFlag(a *app, cmd *cobra.Command, fleet *string, required bool) {
	usage := "fleet name"
	if !required {
		usage = "only this fleet"
	}
	cmd.Flags().StringVar(fleet, "fleet", "", usage)
	if required {
		_ = cmd.MarkFlagRequired("fleet")
	}
	_ = cmd.RegisterFlagCompletionFunc("fleet", func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		c, err := a.connect()
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		fleets, err := c.Fleets(cmd.Context())
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		var names []string
		for _, f := range fleets {
			names = append(names, f.Name)
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	})
}
