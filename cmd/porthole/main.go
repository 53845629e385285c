// Command porthole is the support engineer's Porthole client. See package
// cli.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/porthole/porthole/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := cli.Run(ctx, os.Args[1:], cli.StdIO())
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "porthole:", err)
		os.Exit(1)
	}
}
