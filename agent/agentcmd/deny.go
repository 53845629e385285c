package agentcmd

import "github.com/spf13/cobra"

func newDeny(stdio IO) *cobra.Command {
	return newAnswer(stdio, false)
}
