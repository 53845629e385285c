package daemoncmd

import (
	"bufio"
	"errors"
	"fmt"
	"strings"

	"github.com/porthole/porthole/daemon"
	"github.com/spf13/cobra"
)

func newInit(stdio IO) *cobra.Command {
	var opts daemon.InitOptions
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "init --data DIR --admin-email EMAIL",
		Short: "Make a new data dir: keys, certificate authorities, database and the first admin",
		Long: `init makes everything a new Porthole server needs, in a new directory:
the control key that signs commands to devices, the user and host certificate
authorities, the relay's host key, a self-signed TLS certificate, a config file
(portholed.yaml), the database, and the first administrator.

The admin's password is generated and printed once, unless --password-stdin
reads it from standard input. The admin's TOTP secret is printed as an
otpauth:// URI and a QR code for an authenticator app. init never overwrites
an existing directory.`,
		Example: `  portholed init --data /var/lib/portholed --admin-email ops@example.com \
      --public-url https://porthole.example.com:8443
  echo "$PASSWORD" | portholed init --data ./data --admin-email me@example.com --password-stdin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if passwordStdin {
				line, err := bufio.NewReader(stdio.In).ReadString('\n')
				line = strings.TrimRight(line, "\r\n")
				if line == "" {
					return fmt.Errorf("--password-stdin: no password on standard input (%v)", err)
				}
				if len(line) < 12 {
					return errors.New("--password-stdin: the password must be at least 12 characters")
				}
				opts.AdminPassword = line
			}
			return daemon.Init(cmd.Context(), opts, stdio.Out)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.DataDir, "data", "", "new directory for keys, config and database (required)")
	f.StringVar(&opts.AdminEmail, "admin-email", "", "the first administrator's email (required)")
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the admin's password from standard input instead of generating one")
	f.StringVar(&opts.PublicURL, "public-url", "", "how engineers and devices reach this server (default https://<hostname>:8443)")
	f.StringVar(&opts.Database, "database", "", `"sqlite" (default, a file in the data dir) or a postgres:// URL`)
	f.StringSliceVar(&opts.TLSHosts, "tls-host", nil, "extra host names or addresses for the self-signed certificate (repeatable)")
	f.StringVar(&opts.BrokerListen, "broker-listen", "", `the embedded MQTT broker's address, where devices idle (default ":8883")`)
	f.StringVar(&opts.RelayListen, "relay-listen", "", `the SSH relay's address, where devices and engineers meet (default ":2222")`)
	_ = cmd.MarkFlagRequired("data")
	_ = cmd.MarkFlagRequired("admin-email")
	return cmd
}
