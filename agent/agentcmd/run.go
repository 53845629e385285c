package agentcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"

	"github.com/porthole/porthole/agent"
	"github.com/porthole/porthole/agent/agentstate"
	"github.com/porthole/porthole/agentssh"
)

func newRun(stdio IO, g *globals) *Command {
	var stateDir, configFile string
	cmd := &Command{
		Use:   "run [--state DIR] [--config FILE]",
		Short: "Stay connected to the server and obey its signed commands",
		Long: `run keeps this device connected to its Porthole server's control channel
(MQTT) until it is stopped (SIGINT or SIGTERM), reconnecting by itself when the
connection drops. The device idles there, costing a ping a minute, until the
server asks it for a support session.

Every command is checked before anything is done: it must be signed by the
server's control key, addressed to this device, not expired and never seen
before. Refused commands are logged and recorded in agent.log in the state
directory.

For a session the device dials out to the relay named in the command, and
serves an SSH server of its own over that one connection: it listens on no
port. Engineers get in only with a certificate for that session, signed by
the server's user CA; the session ends when the server closes it, after
idle_timeout without their input, or after max_duration.

Everything engineers do is recorded in the state directory, for the owner
(porthole-agent log, sessions, replay): what their terminals showed, every
command with its exit status, every file copied and every port forward,
within the recordings caps below. The recordings are also sent to the server,
during and after each session (what could not be sent goes when the server
is back, or when the agent starts again), where the engineers' fleet and you,
the owner, read them: porthole-agent owner-link prints your link.

The owner's config file (YAML, default ` + agent.DefaultConfigFile + `; a missing
default file means the defaults) may point the device at an external broker,
or through an HTTP proxy:

  proxy: http://proxy.example:3128       # HTTP CONNECT proxy to the server (API, broker, relay);
                                         # http://USER:PASSWORD@HOST:PORT or https:// too;
                                         # direct (or none): no proxy; default: $HTTPS_PROXY
                                         # (NO_PROXY, localhost and loopback always go direct)
  broker:
    url: mqtts://mqtt.example.com:8883   # or mqtt:// (unencrypted)
    username: ...                        # default <fleet>/<device>
    password: ...                        # default: signed with the device key
    ca_file: /etc/porthole/broker-ca.pem # default: the system's roots
    client_cert: /etc/porthole/device.crt  # for brokers such as AWS IoT Core
    client_key: /etc/porthole/device.key
  log_level: info                        # debug, info, warn or error
  allow_ports: [22, 80]                  # local ports engineers may forward to (default none)
  run_as: support                        # user for shells and file copies (default the agent's)
  idle_timeout: 15m                      # may shorten the server's limits, never lengthen them
  max_duration: 2h
  record_input: false                    # also record what engineers type (passwords too)
  recordings:                            # caps on the recordings of sessions
    max_session: 64MiB                   # output kept per session, then a truncation marker
    max_events: 16MiB                    # events.jsonl per session
    max_total: 512MiB                    # all recordings; the oldest are deleted first
    keep: 30d                            # recordings of sessions that ended earlier are deleted
  consent: manual                        # manual (support window and code), approve or auto
  approval_timeout: 5m                   # approve: unanswered sessions are denied after this (at most 10m)
  socket: /run/porthole/agent.sock       # where porthole-agent request, status, approve, deny, revoke reach it
  socket_group: porthole                 # who may use the socket (default porthole, if that group exists)
  local_ui: 127.0.0.1:7780               # the owner's local page, on loopback only (default: none)

Unknown keys are errors.`,
		Example: `  porthole-agent run
  porthole-agent run --state ./dev1-state --config ./agent.yaml`,
	}
	cmd.Run = func(ctx context.Context, _ []string) error {
		cfg, err := loadConfig(configFile, cmd.changed("config"))
		if err != nil {
			return err
		}
		st, err := agentstate.Load(stateDir)
		if err != nil {
			return err
		}
		level := cfg.Level()
		if g.verbose {
			level = slog.LevelDebug
		}
		logger := slog.New(slog.NewTextHandler(stdio.Err, &slog.HandlerOptions{Level: level}))
		a, err := agent.New(agent.Options{State: st, Config: *cfg, Logger: logger, Status: stdio.Err})
		if err != nil {
			return err
		}
		return a.Run(ctx)
	}
	f := cmd.flags()
	f.StringVar(&stateDir, "state", agentstate.DefaultDir, "the state directory that porthole-agent enroll filled")
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

// newSFTPServer is the hidden command the agent runs, as the config's
// run_as user, to serve an engineer's file transfers with that user's
// rights: SFTP on standard input and output.
func newSFTPServer(stdio IO) *Command {
	return &Command{
		Use:    "sftp-server",
		Short:  "Serve SFTP on standard input and output (run by the agent itself)",
		Hidden: true,
		Run: func(context.Context, []string) error {
			return agentssh.ServeSFTP(stdio.In, stdoutCloser{stdio.Out})
		},
	}
}

// stdoutCloser lets ServeSFTP close standard output when it is done.
type stdoutCloser struct{ io.Writer }

func (w stdoutCloser) Close() error {
	if c, ok := w.Writer.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
