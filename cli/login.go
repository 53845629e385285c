package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/spf13/cobra"
)

func newLogin(a *app) *cobra.Command {
	var email, fingerprint string
	var useSSO bool
	cmd := &cobra.Command{
		Use:   "login [SERVER]",
		Short: "Log in with your email, password and TOTP code",
		Long: `Log in to a Porthole server with your email, password and the code from your
authenticator app, and keep the token in the config file.

SERVER defaults to --server, $PORTHOLE_SERVER, or the server you last logged in
to; porthole asks for it if there is none.

The first time porthole meets a server whose certificate this system does not
trust (Porthole servers usually run with a self-signed one), it pins the
certificate's fingerprint and shows it: check it with your operator. From then
on a different certificate is refused. Give the fingerprint up front with
--fingerprint to check it before anything is sent.

When standard input is not a terminal, the email, password and code are read
from it one per line, for scripts.

With --sso, sign in with your organization's single sign-on instead: porthole
prints a link and a short code; open the link in any browser (on any device),
check that it shows the same code, confirm, and sign in at your provider.
Nothing is pasted back: porthole waits, then keeps the login. Your provider
decides your fleet roles, and removing you there ends the login within minutes.`,
		Example: `  porthole login https://porthole.example.com:8443
  porthole login porthole.example.com:8443 --fingerprint sha256:3f2a...
  porthole login --sso https://porthole.example.com:8443`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			if useSSO && email != "" {
				return &userError{msg: "--email and --sso do not go together: with --sso your provider says who you are"}
			}
			return a.login(cmd.Context(), server, email, fingerprint, useSSO)
		},
	}
	cmd.Flags().BoolVar(&useSSO, "sso", false, "sign in with your organization's single sign-on, in any browser")
	cmd.Flags().StringVar(&email, "email", "", "your email (asked for if not given)")
	cmd.Flags().StringVar(&fingerprint, "fingerprint", "",
		"the server certificate's fingerprint, sha256:<hex>, as your operator gave it (default $"+envFingerprint+")")
	return cmd
}

func (a *app) login(ctx context.Context, server, email, fingerprint string, useSSO bool) error {
	dir, cfg, err := a.loadConfig()
	if err != nil {
		return err
	}
	ask := newPrompter(a.io.In, a.io.Err)
	server, err = a.loginServer(ask, server, cfg)
	if err != nil {
		return err
	}
	a.target = target{server: server}
	presented, trusted, err := apiclient.FetchFingerprint(ctx, server, a.netDial())
	if err != nil {
		return err
	}
	if fingerprint == "" {
		fingerprint = a.io.Getenv(envFingerprint)
	}
	pin, err := decidePin(server, presented, trusted, cfg.Pins[server], fingerprint)
	if err != nil {
		return a.viaProxy(server, err)
	}
	if pin.note != "" {
		fmt.Fprintln(a.io.Err, pin.note)
	}
	c, err := apiclient.New(server, apiclient.Options{Fingerprint: pin.pin, NetDial: a.netDial()})
	if err != nil {
		return err
	}
	a.target.fingerprint = pin.pin
	var resp *apitype.LoginResponse
	if useSSO {
		resp, err = a.ssoLogin(ctx, c)
	} else {
		resp, err = passwordLogin(ctx, c, ask, email, cfg, server)
	}
	if err != nil {
		return err
	}
	cfg.Server, cfg.Token, cfg.TokenID = server, resp.Token, resp.TokenID
	cfg.Email, cfg.ExpiresAt = resp.User.Email, resp.ExpiresAt
	if cfg.Pins == nil {
		cfg.Pins = map[string]string{}
	}
	if pin.pin != "" {
		cfg.Pins[server] = pin.pin
	} else {
		delete(cfg.Pins, server)
	}
	if err := saveConfig(dir, cfg); err != nil {
		return err
	}
	fmt.Fprintf(a.io.Err, "logged in to %s as %s (token expires %s, %s)\n",
		server, resp.User.Email, formatTime(resp.ExpiresAt), untilString(resp.ExpiresAt, a.now()))
	if a.io.Getenv(envToken) != "" {
		fmt.Fprintf(a.io.Err, "note: %s is set and wins over this login; unset it to use the login\n", envToken)
	}
	return nil
}

// passwordLogin logs in with email, password and TOTP code.
func passwordLogin(ctx context.Context, c *apiclient.Client, ask *prompter, email string, cfg Config, server string) (*apitype.LoginResponse, error) {
	req, err := askCredentials(ask, email, cfg, server)
	if err != nil {
		return nil, err
	}
	resp, err := c.Login(ctx, req)
	if apiclient.IsCode(err, apitype.CodeUnauthenticated) {
		return nil, &userError{msg: "login refused: " + err.Error(), err: err}
	}
	return resp, err
}

// loginServer is the server to log in to: the argument, --server,
// $PORTHOLE_SERVER, the saved one, or what the user types.
func (a *app) loginServer(ask *prompter, server string, cfg Config) (string, error) {
	for _, s := range []string{server, a.server, a.io.Getenv(envServer), cfg.Server} {
		if s != "" {
			return normalizeServer(s)
		}
	}
	s, err := ask.line("Porthole server URL", "")
	if err != nil {
		return "", err
	}
	return normalizeServer(s)
}

// askCredentials asks for what --email did not give: email (offering the
// one last used on this server), password and TOTP code.
func askCredentials(ask *prompter, email string, cfg Config, server string) (apitype.LoginRequest, error) {
	var req apitype.LoginRequest
	var err error
	if req.Email = email; req.Email == "" {
		def := ""
		if cfg.Server == server {
			def = cfg.Email
		}
		if req.Email, err = ask.line("Email", def); err != nil {
			return req, err
		}
	}
	if req.Password, err = ask.secret("Password"); err != nil {
		return req, err
	}
	code, err := ask.line("TOTP code (from your authenticator app)", "")
	req.TOTP = strings.ReplaceAll(code, " ", "")
	return req, err
}
