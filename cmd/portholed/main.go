// Command portholed is the Porthole server. See package daemoncmd.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/porthole/porthole/daemon/daemoncmd"
)

func main() {
	if err := daemoncmd.Run(context.Background(), os.Args[1:], daemoncmd.StdIO()); err != nil {
		fmt.Fprintln(os.Stderr, "portholed:", err)
		os.Exit(1)
	}
}
