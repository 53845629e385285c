package main

import (
	"errors"
	"flag"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/porthole/porthole/agent/agentcmd"
)

// agentRoot is porthole-agent's command tree as cobra's, for its manual
// pages and completions: the agent parses its commands without cobra, to
// stay small (package agentcmd), but lays them out as cobra does, so the
// pages say what its help says (TestAgentAsCobra).
func agentRoot() *cobra.Command { return toCobra(agentcmd.Root()) }

// toCobra is c, and its subcommands, as cobra commands that only
// document.
func toCobra(c *agentcmd.Command) *cobra.Command {
	cc := &cobra.Command{
		Use: c.Use, Aliases: c.Aliases,
		Short: c.Short, Long: c.Long, Example: c.Example,
		Hidden: c.Hidden, Version: c.Version,
		SilenceErrors: true, SilenceUsage: true,
	}
	if c.Run != nil {
		cc.RunE = func(*cobra.Command, []string) error {
			return errors.New("docgen: this tree documents porthole-agent, it does not run it")
		}
	}
	copyFlags := func(from *flag.FlagSet, to *pflag.FlagSet) {
		if from == nil {
			return
		}
		from.VisitAll(func(f *flag.Flag) {
			pf := &pflag.Flag{
				Name: f.Name, Shorthand: c.Shorthand(f.Name), Usage: f.Usage, DefValue: f.DefValue,
				Value: pflagValue{f.Value, agentcmd.FlagType(f)},
			}
			if pf.Value.Type() == "bool" {
				pf.NoOptDefVal = "true"
			}
			to.AddFlag(pf)
		})
	}
	copyFlags(c.Flags, cc.Flags())
	copyFlags(c.PersistentFlags, cc.PersistentFlags())
	for _, sub := range c.Commands {
		cc.AddCommand(toCobra(sub))
	}
	return cc
}

// pflagValue is a flag of the standard library's as pflag takes it.
type pflagValue struct {
	flag.Value
	kind string
}

func (v pflagValue) Type() string { return v.kind }
