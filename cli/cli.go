// Package cli is porthole, the support engineer's command: log in to a
// Porthole server; reach devices (ssh, scp, forward, and proxy for stock
// OpenSSH) through sessions the server certifies; list fleets, devices,
// sessions and the support queue; replay recordings; read the audit log;
// make enrollment tokens and manage users. Each subcommand lives in its own file; Run is the one entry
// point, and it takes its streams and environment as arguments so tests
// drive the commands in-process.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// IO is what the commands read and write. Getenv stands in for os.Getenv,
// so tests choose PORTHOLE_* and XDG_CONFIG_HOME (where the login is kept)
// without touching the process's environment.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
	Getenv   func(string) string
}

// StdIO is the process's standard streams and environment.
func StdIO() IO {
	return IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, Getenv: os.Getenv}
}

// Run executes porthole with args (without the program name). The error it
// returns is a sentence meant for the user; Run has printed the command's
// usage before it when the command line itself was wrong.
func Run(ctx context.Context, args []string, stdio IO) error {
	enableEscapes(stdio.Out, stdio.Err)
	a := &app{io: stdio, now: time.Now}
	root := newRoot(a)
	if args == nil {
		args = []string{} // nil would make cobra read os.Args
	}
	root.SetArgs(args)
	root.SetIn(stdio.In)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return nil
	}
	if !a.started {
		// The flags or arguments were wrong: show how the command is used.
		fmt.Fprint(stdio.Err, cmd.UsageString())
		return err
	}
	return a.explain(ctx, err)
}

// app is the state one run of the command shares between its parts.
type app struct {
	io  IO
	now func() time.Time
	// server is the --server flag.
	server string
	// started is set once the command line parsed and a command began to
	// run: errors after that are runtime errors, not usage errors.
	started bool
	// target is the server the command talked to, once known, so errors
	// can name it.
	target target
}

// errNotLoggedIn is wrapped by the errors that say a command needs a login.
var errNotLoggedIn = errors.New("not logged in")

func notLoggedIn(format string, args ...any) error {
	return &userError{msg: fmt.Sprintf(format, args...), err: errNotLoggedIn}
}
