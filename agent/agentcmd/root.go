// Package agentcmd holds the commands of porthole-agent, the program that
// runs on each device.
package agentcmd

import (
	"context"
	"io"
	"log/slog"
	"os"

	"github.com/porthole/porthole/version"
)

// IO is what commands read and write; tests pass buffers and a fake
// environment.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
	// Getenv reads the environment. Nil: os.Getenv.
	Getenv func(string) string
}

// StdIO is the process's standard streams and environment.
func StdIO() IO { return IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, Getenv: os.Getenv} }

// Run executes porthole-agent with args (without the program name).
func Run(ctx context.Context, args []string, stdio IO) error {
	if stdio.Getenv == nil {
		stdio.Getenv = os.Getenv
	}
	root := newRoot(stdio)
	root.init()
	root.stdout, root.stderr, root.getenv = stdio.Out, stdio.Err, stdio.Getenv
	return root.execute(ctx, args)
}

// Root is porthole-agent's command tree, for what documents it: the man
// pages and shell completions the packages ship (without the help and
// completion commands, which Run adds as cobra does). Run runs it.
func Root() *Command { return newRoot(StdIO()) }

// globals are the flags every command takes.
type globals struct {
	verbose bool
}

// logger writes progress to stderr with --verbose, and only warnings
// otherwise: stdout carries the command's result alone.
func (g *globals) logger(stdio IO) *slog.Logger {
	level := slog.LevelWarn
	if g.verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(stdio.Err, &slog.HandlerOptions{Level: level}))
}

func newRoot(stdio IO) *Command {
	var g globals
	root := &Command{
		Use:   "porthole-agent",
		Short: "The Porthole agent: lets support reach this device, only while its owner allows it",
		Long: `porthole-agent runs on a device (an appliance, a field computer) so that a
support engineer can reach it through a Porthole server: a shell, file copy and
port forwards, without any port open on the device. Like a ship's porthole, the
way opens from the inside: the device's owner decides when, and sees
everything that was done.

Each device first enrolls with the server, once: it makes its own SSH key,
which never leaves it, and receives a host certificate so engineers can tell
it is really this device.

Then "porthole-agent run" keeps the device connected to the server's control
channel, where it obeys only commands signed by the server, and only as far as
its owner consents (consent: in the config): by default the owner runs
"porthole-agent request" and reads the support code it prints to the
engineer; "status" shows who is connected, "revoke" ends it all at once.`,
		Example: `  porthole-agent enroll --server https://porthole.example.com:8443 \
      --token phe_... --name kitchen-amp
  porthole-agent run
  porthole-agent request --reason "the amplifier hums"`,
		Version:    version.Version,
		Shorthands: map[string]string{"v": "verbose"},
	}
	root.PersistentFlags = newFlags(root)
	root.PersistentFlags.BoolVar(&g.verbose, "verbose", false, "log each step to standard error")
	root.add(newEnroll(stdio, &g), newRun(stdio, &g), newVersion(stdio), newSFTPServer(stdio))
	root.add(newLog(stdio), newSessions(stdio), newReplay(stdio))
	root.add(newRequest(stdio), newStatus(stdio), newApprove(stdio), newDeny(stdio), newRevoke(stdio), newUI(stdio))
	root.add(newOwnerLink(stdio))
	return root
}
