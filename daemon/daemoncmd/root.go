// Package daemoncmd holds the cobra commands of portholed, the Porthole
// server: init, init-node, serve and dev.
package daemoncmd

import (
	"context"
	"io"
	"os"

	"github.com/porthole/porthole/version"
	"github.com/spf13/cobra"
)

// IO is where commands read and write; tests pass buffers.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
	// Getenv reads the environment (the object storage's credentials,
	// see daemon.Config.ApplyEnv). Nil: os.Getenv.
	Getenv func(string) string
}

// Run executes portholed with args (without the program name).
func Run(ctx context.Context, args []string, stdio IO) error {
	if stdio.Getenv == nil {
		stdio.Getenv = os.Getenv
	}
	root := newRoot(stdio)
	root.SetArgs(args)
	root.SetIn(stdio.In)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	return root.ExecuteContext(ctx)
}

// Root is portholed's command tree, for what documents it: the man pages
// and shell completions the packages ship. Run runs it.
func Root() *cobra.Command { return newRoot(StdIO()) }

// StdIO is the process's standard streams.
func StdIO() IO { return IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, Getenv: os.Getenv} }

func newRoot(stdio IO) *cobra.Command {
	root := &cobra.Command{
		Use:   "portholed",
		Short: "The Porthole server: API, certificate authorities, relay and broker",
		Long: `portholed is the Porthole server. Devices enroll with it and idle on its
control channel; support engineers log in to it, and reach a device only while
the device's owner has opened the way.

Try it at once, with throw-away state:
  portholed dev

Run it for real:
  portholed init --data /var/lib/portholed --admin-email you@example.com
  portholed serve --config /var/lib/portholed/portholed.yaml`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Version,
	}
	root.AddCommand(newInit(stdio), newInitNode(stdio), newServe(stdio), newDev(stdio), newVersion(stdio))
	return root
}
