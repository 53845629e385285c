package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/termqr"
	"github.com/spf13/cobra"
)

// roles a user can have in a fleet, most powerful first.
var roles = []string{"owner", "operator", "auditor"}

func newUsers(a *app) *cobra.Command {
	cmd := listing[apitype.User]{
		fetch:   usersWithRoles,
		compare: func(x, y apitype.User) int { return strings.Compare(x.Email, y.Email) },
		none:    "no users",
		headers: []string{"EMAIL", "ADMIN", "ROLES", "CREATED"},
		row: func(u apitype.User) []string {
			var rs []string
			for _, r := range u.Roles {
				rs = append(rs, r.Fleet+":"+r.Role)
			}
			admin := "no"
			if u.Admin {
				admin = "yes"
			}
			return []string{u.Email, admin, orDash(strings.Join(rs, ",")), formatTime(u.CreatedAt)}
		},
	}.attach(a, &cobra.Command{
		Use:   "users",
		Short: "List users and their fleet roles (administrators)",
		Args:  cobra.NoArgs,
	})
	cmd.AddCommand(newUserCreate(a), newUserReset(a), newUserDelete(a), newUserGrant(a), newUserRevoke(a))
	return cmd
}

func newUserCreate(a *app) *cobra.Command {
	var admin, asJSON bool
	cmd := &cobra.Command{
		Use:   "create EMAIL",
		Short: "Make a user, with a one-time password and a TOTP secret (administrators)",
		Long: `Make a user. The server makes their password and TOTP secret; porthole prints
them once on standard output (as "password: ..." and "totp_uri: otpauth://...",
or a JSON object with --json) and, on a terminal, shows the TOTP secret as a QR
code for their authenticator app. Hand both over a channel you trust: neither
can be shown again.

The new user has no fleet yet: give them one with ` + "`porthole users grant`.",
		Example: "  porthole users create bob@example.com\n  porthole users grant bob@example.com --fleet acme --role operator",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.CreateUser(cmd.Context(), apitype.CreateUserRequest{Email: args[0], Admin: admin})
			if err != nil {
				return err
			}
			return a.printSecrets(resp, asJSON, "created user %s")
		},
	}
	cmd.Flags().BoolVar(&admin, "admin", false, "make the user an administrator (creates fleets and users)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the new user and secrets as a JSON object")
	return cmd
}

// printSecrets prints a user's new password and TOTP secret, once: on
// standard output (or as JSON), and the secret as a QR code on a terminal;
// done says what happened ("created user %s").
func (a *app) printSecrets(resp *apitype.CreateUserResponse, asJSON bool, done string) error {
	if asJSON {
		return writeJSON(a.io.Out, resp)
	}
	if resp.Password != "" {
		fmt.Fprintf(a.io.Out, "password: %s\n", resp.Password)
	}
	fmt.Fprintf(a.io.Out, "totp_uri: %s\n", resp.TOTPURI)
	if terminalFd(a.io.Err) >= 0 {
		fmt.Fprintf(a.io.Err, "\n%s scans this with an authenticator app:\n", resp.User.Email)
		termqr.Print(a.io.Err, resp.TOTPURI)
	}
	fmt.Fprintf(a.io.Err, done+"; hand over the password and TOTP secret now, they are not shown again\n", resp.User.Email)
	return nil
}

func newUserDelete(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "delete EMAIL",
		Short: "Delete a user, with their logins and fleet roles; their open sessions close (administrators)",
		Long: `Delete a user, such as an engineer who left: their logins (API tokens and
console sessions) stop working at once, their fleet roles go, and every
session they have open is closed (the device ends it; they read that their
access was taken away). What they did stays in the audit log under their
email. You cannot delete yourself: another administrator can.`,
		Example: "  porthole users delete bob@example.com",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			if err := c.DeleteUser(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.io.Err, "deleted user %s; their logins and open sessions are ended\n", args[0])
			return nil
		},
	}
}

func newUserReset(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "reset EMAIL",
		Short: "Give a user a new one-time password and TOTP secret; their logins and open sessions end (administrators)",
		Long: `Give a user who lost their password or authenticator a new password and TOTP
secret, printed once as "porthole users create" prints them. Every login the
user had ends, and so does every session they have open: whoever held the old
secrets may have made them.`,
		Example: "  porthole users reset bob@example.com",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.ResetUser(cmd.Context(), args[0], "")
			if err != nil {
				return err
			}
			return a.printSecrets(resp, asJSON, "reset user %s (their logins and open sessions are ended)")
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the user and new secrets as a JSON object")
	return cmd
}

func newUserGrant(a *app) *cobra.Command {
	var fleet, role string
	cmd := &cobra.Command{
		Use:   "grant EMAIL --fleet FLEET --role owner|operator|auditor",
		Short: "Give a user a role in a fleet, replacing the role they had there",
		Long: `Give a user a role in a fleet, replacing the role they had there:
  owner     manages the fleet's members and devices, and all an operator does
  operator  enrolls devices and opens sessions
  auditor   reads devices, sessions and the audit log`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(roles, role) {
				return fmt.Errorf("role %q is not one of %s", role, strings.Join(roles, ", "))
			}
			return a.withClient(func(c *apiclient.Client) error {
				return c.SetMember(cmd.Context(), fleet, args[0], role)
			}, "%s is now %s of fleet %s", args[0], role, fleet)
		},
	}
	addFleetFlag(a, cmd, &fleet, true)
	cmd.Flags().StringVar(&role, "role", "", "owner, operator or auditor")
	_ = cmd.MarkFlagRequired("role")
	_ = cmd.RegisterFlagCompletionFunc("role", cobra.FixedCompletions(roles, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func newUserRevoke(a *app) *cobra.Command {
	var fleet string
	cmd := &cobra.Command{
		Use:   "revoke EMAIL --fleet FLEET",
		Short: "Take a user's role in a fleet away",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *apiclient.Client) error {
				return c.RemoveMember(cmd.Context(), fleet, args[0])
			}, "%s no longer has a role in fleet %s", args[0], fleet)
		},
	}
	addFleetFlag(a, cmd, &fleet, true)
	return cmd
}

// usersWithRoles lists the users with their fleet roles. The server's list
// leaves roles out (they cost a query per user there), so when none came
// they are gathered from each fleet's members.
func usersWithRoles(ctx context.Context, c *apiclient.Client) ([]apitype.User, error) {
	users, err := c.Users(ctx)
	if err != nil || slices.ContainsFunc(users, func(u apitype.User) bool { return len(u.Roles) > 0 }) {
		return users, err
	}
	fleets, err := c.Fleets(ctx)
	if err != nil {
		return nil, err
	}
	byID := map[string]*apitype.User{}
	for i := range users {
		byID[users[i].ID] = &users[i]
	}
	for _, f := range fleets {
		members, err := c.Members(ctx, f.Name)
		if err != nil {
			return nil, err
		}
		for _, m := range members {
			if u := byID[m.UserID]; u != nil {
				u.Roles = append(u.Roles, apitype.FleetRole{Fleet: f.Name, Role: m.Role})
			}
		}
	}
	return users, nil
}
