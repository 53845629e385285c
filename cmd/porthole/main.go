// Command porthole is the support engineer's Porthole client. See package
// cli.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"

	"github.com/porthole/porthole/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := cli.Run(ctx, os.Args[1:], cli.StdIO())
	stop()
	// `porthole ssh` exits with the remote command's status, like ssh,
	// and says nothing more: the command spoke for itself.
	if ee, ok := errors.AsType[*cli.ExitError](err); ok {
		os.Exit(ee.Code)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "porthole:", err)
		os.Exit(1)
	}
}
