package agentcmd

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/porthole/porthole/agent"
)

func newRun(stdio IO, g *globals) *cobra.Command {
	var stateDir, configFile string
	cmd := &cobra.Command{
		Use:   "run [--state DIR] [--config FILE]",
		Short: "Stay connected to the server and obey its signed commands",
		Long: `run keeps this device connected to its Porthole server's control channel
(MQTT) until it is stopped (SIGINT or SIGTERM), reconnecting by itself when the
connection drops. The device idles there, costing a ping a minute, until the
server asks it for a support session.

Every command is checked before anything is done: it must be signed by the
server's control key, addressed to this device, not expired and never seen
before. Refused commands are logged and recorded in agent.log in the state
directory. This version does not hold support sessions yet: it answers every
session request with "unsupported".

The owner's config file (YAML, default ` + agent.DefaultConfigFile + `; a missing
default file means the defaults) may point the device at an external broker:

  broker:
    url: mqtts://mqtt.example.com:8883   # or mqtt:// (unencrypted)
    username: ...                        # default <fleet>/<device>
    password: ...                        # default: signed with the device key
    ca_file: /etc/porthole/broker-ca.pem # default: the system's roots
    client_cert: /etc/porthole/device.crt  # for brokers such as AWS IoT Core
    client_key: /etc/porthole/device.key
  log_level: info                        # debug, info, warn or error

Unknown keys are errors.`,
		Example: `  porthole-agent run
  porthole-agent run --state ./dev1-state --config ./agent.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(configFile, cmd.Flags().Changed("config"))
			if err != nil {
				return err
			}
			st, err := agent.LoadState(stateDir)
			if err != nil {
				return err
			}
			level := cfg.Level()
			if g.verbose {
				level = slog.LevelDebug
			}
			return agent.Run(cmd.Context(), agent.RunOptions{
				State:  st,
				Config: *cfg,
				Logger: slog.New(slog.NewTextHandler(stdio.Err, &slog.HandlerOptions{Level: level})),
				Status: stdio.Err,
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&stateDir, "state", agent.DefaultStateDir, "the state directory `porthole-agent enroll` filled")
	f.StringVar(&configFile, "config", agent.DefaultConfigFile, "the owner's config file")
	return cmd
}

// loadConfig reads the config file; a missing file is the defaults unless
// it was asked for by name.
func loadConfig(path string, explicit bool) (*agent.Config, error) {
	cfg, err := agent.LoadConfig(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !explicit:
		return &agent.Config{}, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("the config file %s does not exist", path)
	}
	return cfg, err
}
