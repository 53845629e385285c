package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/porthole/porthole/agent/agentcmd"
)

// runAgent runs porthole-agent's commands (package agentcmd) with args.
func runAgent(args ...string) string {
	var out, errOut bytes.Buffer
	err := agentcmd.Run(context.Background(), args, agentcmd.IO{
		In: strings.NewReader(""), Out: &out, Err: &errOut,
		Getenv: func(string) string { return "" },
	})
	return fmt.Sprintf("stdout:\n%s\nstderr:\n%s\nerr: %v", out.String(), errOut.String(), err)
}

// runCobra runs args through the agent's tree as cobra's, as the agent
// did when it was built on cobra.
func runCobra(args ...string) string {
	var out, errOut bytes.Buffer
	root := agentRoot()
	root.SetArgs(args)
	root.SetIn(strings.NewReader(""))
	root.SetOut(&out)
	root.SetErr(&errOut)
	err := root.ExecuteContext(context.Background())
	return fmt.Sprintf("stdout:\n%s\nstderr:\n%s\nerr: %v", out.String(), errOut.String(), err)
}

// TestAgentAsCobra: porthole-agent's help and completion scripts are
// cobra's, word for word, as when the agent was built on cobra, and as
// its manual pages and the packages' completions, which cobra still
// writes, say. (Its errors and its answers to the completion scripts
// are tested in package agentcmd.)
func TestAgentAsCobra(t *testing.T) {
	var cases [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		cases = append(cases, append(path[:len(path):len(path)], "--help"), append([]string{"help"}, path...))
		for _, sub := range c.Commands() {
			walk(sub, append(path[:len(path):len(path)], sub.Name()))
		}
	}
	root := agentRoot()
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	walk(root, nil)
	cases = append(cases,
		[]string{}, []string{"help", "nothing"}, []string{"-h"}, []string{"run", "-h"}, []string{"--version"},
		[]string{"completion"}, []string{"session", "--help"},
		[]string{"completion", "bash"}, []string{"completion", "bash", "--no-descriptions"},
		[]string{"completion", "zsh"}, []string{"completion", "zsh", "--no-descriptions"},
		[]string{"completion", "fish"}, []string{"completion", "fish", "--no-descriptions"},
		[]string{"completion", "powershell"}, []string{"completion", "powershell", "--no-descriptions"},
	)
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			if got, want := runAgent(args...), runCobra(args...); got != want {
				t.Errorf("porthole-agent %q:\n%s\nwant, as cobra:\n%s", args, got, want)
				if len(args) > 1 && args[0] == "completion" {
					t.Log("the scripts in agent/agentcmd/completion/ are cobra's: " + updateScripts + " writes them anew")
				}
			}
		})
	}
	if os.Getenv("PORTHOLE_UPDATE_COMPLETIONS") != "" {
		for file, gen := range map[string]func(io.Writer) error{
			"porthole-agent.bash": func(w io.Writer) error { return root.GenBashCompletionV2(w, true) },
			"_porthole-agent":     root.GenZshCompletion,
			"porthole-agent.fish": func(w io.Writer) error { return root.GenFishCompletion(w, true) },
			"porthole-agent.ps1":  root.GenPowerShellCompletionWithDesc,
		} {
			var buf bytes.Buffer
			if err := gen(&buf); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join("..", "..", "agent", "agentcmd", "completion", file), buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// updateScripts writes porthole-agent's completion scripts anew, from
// cobra's, for a new cobra.
const updateScripts = "PORTHOLE_UPDATE_COMPLETIONS=1 go test -run TestAgentAsCobra ./packaging/docgen"
