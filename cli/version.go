package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/porthole/porthole/version"
)

func newVersion(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print porthole's version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(a.io.Out, version.String("porthole"))
			return err
		},
	}
}
