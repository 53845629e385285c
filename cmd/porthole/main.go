// Command porthole is the support engineer's Porthole client. See package
// cli.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"

	"github.com/porthole/porthole/cli"
)

func main() {
	// A short-lived client whose live heap is a few MiB: collecting less
	// often costs little memory and a third of the CPU a transfer spends
	// in the collector (x/crypto and SFTP allocate per packet). GOGC in
	// the environment still rules.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
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
