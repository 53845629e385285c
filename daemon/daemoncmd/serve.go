package daemoncmd

import (
	"fmt"
	"log/slog"
	"net"
	"os/signal"
	"syscall"

	"github.com/porthole/porthole/daemon"
	"github.com/spf13/cobra"
)

func newServe(stdio IO) *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the server from a config file",
		Long: `serve runs the Porthole server with the config file that init wrote (or your
own; unknown keys are errors): the HTTPS API on listen, the MQTT broker that
devices idle on at broker.listen (TLS, with the same certificate) unless
broker.url names an external one, and the SSH relay where devices and
engineers meet for sessions at relay.listen. It stops cleanly on SIGINT or
SIGTERM, disconnecting the devices and recording them offline.

With recordings: s3://bucket/prefix, the credentials recordings_s3 leaves
out are read from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
AWS_SESSION_TOKEN; with recordings_s3.aws_role, they are those of the AWS
role portholed runs as (EC2 instance profile, ECS task role, EKS web
identity).`,
		Example: `  portholed serve --config /var/lib/portholed/portholed.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := daemon.LoadConfig(configPath)
			if err != nil {
				return err
			}
			cfg.ApplyEnv(stdio.Getenv)
			logger := daemon.NewLogger(stdio.Err, cfg.Log)
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			srv, err := daemon.Open(ctx, cfg, logger)
			if err != nil {
				return err
			}
			defer srv.Close()
			apiLn, err := net.Listen("tcp", cfg.Listen)
			if err != nil {
				return fmt.Errorf("listening on %s (listen): %w", cfg.Listen, err)
			}
			ls := daemon.Listeners{API: apiLn}
			if !cfg.Broker.External() {
				if ls.Broker, err = net.Listen("tcp", cfg.Broker.Listen); err != nil {
					apiLn.Close()
					return fmt.Errorf("listening for devices on %s (broker.listen): %w", cfg.Broker.Listen, err)
				}
			}
			if cfg.Has(daemon.RoleRelay) {
				if ls.Relay, err = net.Listen("tcp", cfg.Relay.Listen); err != nil {
					apiLn.Close()
					if ls.Broker != nil {
						ls.Broker.Close()
					}
					return fmt.Errorf("listening for the relay on %s (relay.listen): %w", cfg.Relay.Listen, err)
				}
			}
			err = srv.Serve(ctx, ls)
			logger.Info("stopped", slog.Any("err", err))
			return err
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "config file (YAML), e.g. DATA_DIR/portholed.yaml (required)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
