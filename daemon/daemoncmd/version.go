package daemoncmd

import (
	"fmt"

	"github.com/porthole/porthole/version"
	"github.com/spf13/cobra"
)

func newVersion(stdio IO) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the server's version and the commit it was built from",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(stdio.Out, version.String("portholed"))
			return err
		},
	}
}
