// Command porthole-agent runs on each device: it enrolls the device with a
// Porthole server, then runs it (the control channel, the embedded SSH
// server for engineers' sessions, their recordings and uploads, the owner's
// consent, socket and page) and gives the owner its commands (status,
// request, approve, revoke, log, replay). See package agentcmd.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/porthole/porthole/agent/agentcmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := agentcmd.Run(ctx, os.Args[1:], agentcmd.StdIO())
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "porthole-agent:", err)
		os.Exit(1)
	}
}
