package agentcmd

import (
	"context"
	"fmt"

	"github.com/porthole/porthole/version"
)

func newVersion(stdio IO) *Command {
	return &Command{
		Use:   "version",
		Short: "Print the agent's version",
		Run: func(context.Context, []string) error {
			_, err := fmt.Fprintln(stdio.Out, version.String("porthole-agent"))
			return err
		},
	}
}
