package agentcmd

import (
	"context"
	"embed"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// The commands cobra gives every program, which the agent has always
// had: help, completion and the hidden __complete the completion scripts
// call. The scripts in completion/ are cobra's for porthole-agent:
// packaging/docgen's TestAgentAsCobra checks them, and writes them anew
// with PORTHOLE_UPDATE_COMPLETIONS=1.

const (
	helpCmd           = "help"
	completeCmd       = "__complete"
	completeNoDescCmd = "__completeNoDesc"
)

// Completion directives, as cobra's scripts read them.
const (
	compDefault    = 0 // the shell completes file names
	compNoFileComp = 4
)

//go:embed all:completion
var completionScripts embed.FS

func newHelp() *Command {
	c := &Command{
		Use:   "help [command]",
		Short: "Help about any command",
		Long: `Help provides help for any command in the application.
Simply type porthole-agent help [path to command] for full details.`,
		args: func(*Command, []string) error { return nil },
	}
	c.Run = func(_ context.Context, args []string) error {
		root := c.root()
		cmd, _, err := root.findCommand(args)
		if err != nil {
			fmt.Fprintf(stdout(c), "Unknown help topic %#q\n", args)
			// cobra gives a command its --help and --version only as it
			// runs it (or its help): the root's usage lacks them here.
			return root.usage(stdout(c), true)
		}
		return cmd.writeHelp(stdout(c))
	}
	return c
}

// stdout is where c writes its help and results: the root's standard
// output.
func stdout(c *Command) io.Writer { return c.root().stdout }

func newCompletion() *Command {
	c := &Command{
		Use:   "completion",
		Short: "Generate the autocompletion script for the specified shell",
		Long: `Generate the autocompletion script for porthole-agent for the specified shell.
See each sub-command's help for details on how to use the generated script.
`,
	}
	for _, sh := range []struct{ name, file, long string }{
		{"bash", "porthole-agent.bash", `Generate the autocompletion script for the bash shell.

This script depends on the 'bash-completion' package.
If it is not installed already, you can install it via your OS's package manager.

To load completions in your current shell session:

	source <(porthole-agent completion bash)

To load completions for every new session, execute once:

#### Linux:

	porthole-agent completion bash > /etc/bash_completion.d/porthole-agent

#### macOS:

	porthole-agent completion bash > $(brew --prefix)/etc/bash_completion.d/porthole-agent

You will need to start a new shell for this setup to take effect.
`},
		{"zsh", "_porthole-agent", `Generate the autocompletion script for the zsh shell.

If shell completion is not already enabled in your environment you will need
to enable it.  You can execute the following once:

	echo "autoload -U compinit; compinit" >> ~/.zshrc

To load completions in your current shell session:

	source <(porthole-agent completion zsh)

To load completions for every new session, execute once:

#### Linux:

	porthole-agent completion zsh > "${fpath[1]}/_porthole-agent"

#### macOS:

	porthole-agent completion zsh > $(brew --prefix)/share/zsh/site-functions/_porthole-agent

You will need to start a new shell for this setup to take effect.
`},
		{"fish", "porthole-agent.fish", `Generate the autocompletion script for the fish shell.

To load completions in your current shell session:

	porthole-agent completion fish | source

To load completions for every new session, execute once:

	porthole-agent completion fish > ~/.config/fish/completions/porthole-agent.fish

You will need to start a new shell for this setup to take effect.
`},
		{"powershell", "porthole-agent.ps1", `Generate the autocompletion script for powershell.

To load completions in your current shell session:

	porthole-agent completion powershell | Out-String | Invoke-Expression

To load completions for every new session, add the output of the above command
to your powershell profile.
`},
	} {
		sub := &Command{
			Use:            sh.name,
			Short:          "Generate the autocompletion script for " + sh.name,
			Long:           sh.long,
			noFlagsUseLine: sh.name == "bash",
		}
		noDesc := sub.flags().Bool("no-descriptions", false, "disable completion descriptions")
		sub.Run = func(context.Context, []string) error {
			script, err := completionScripts.ReadFile("completion/" + sh.file)
			if err != nil {
				return err
			}
			if *noDesc {
				script = []byte(strings.Replace(string(script), " "+completeCmd+" ", " "+completeNoDescCmd+" ", 1))
			}
			_, err = stdout(sub).Write(script)
			return err
		}
		c.add(sub)
	}
	return c
}

// newComplete is __complete (or __completeNoDesc): what the completion
// scripts ask for the words of a command line, the last being the one
// to complete. It answers with a candidate a line (the name, a tab and
// its description), then ":" and a directive; it completes commands,
// flags and, by leaving it to the shell, file names, as cobra does for
// this tree.
func newComplete(name string) *Command {
	c := &Command{
		Use:            name + " [command-line]",
		Short:          "Request shell completion choices for the specified command-line",
		Hidden:         true,
		rawArgs:        true,
		noFlagsUseLine: true,
	}
	c.Run = func(_ context.Context, args []string) error {
		if err := minArgs(1)(c, args); err != nil {
			return err
		}
		comps, directive, problem := complete(c.root(), args)
		if problem != "" {
			compDebug(c.root(), "[Error] "+problem+"\n")
		}
		desc := name == completeCmd
		env := c.root().getenv("PORTHOLE_AGENT_COMPLETION_DESCRIPTIONS")
		if env == "" {
			env = c.root().getenv("COBRA_COMPLETION_DESCRIPTIONS") // as cobra reads it, for every program
		}
		if v, err := strconv.ParseBool(env); err == nil && !v {
			desc = false
		}
		w := stdout(c)
		for _, comp := range comps {
			if !desc {
				comp, _, _ = strings.Cut(comp, "\t")
			}
			comp, _, _ = strings.Cut(comp, "\n")
			fmt.Fprintln(w, strings.TrimSpace(comp))
		}
		fmt.Fprintf(w, ":%d\n", directive)
		what := "ShellCompDirectiveDefault"
		if directive == compNoFileComp {
			what = "ShellCompDirectiveNoFileComp"
		}
		fmt.Fprintf(c.root().stderr, "Completion ended with directive: %s\n", what)
		return nil
	}
	return c
}

// compDebug writes msg for whoever debugs the completion scripts, as
// cobra's CompDebug does: to standard error, and to the file
// $BASH_COMP_DEBUG_FILE names.
func compDebug(root *Command, msg string) {
	msg = "[Debug] " + msg
	if path := root.getenv("BASH_COMP_DEBUG_FILE"); path != "" {
		if f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			f.WriteString(msg)
			f.Close()
		}
	}
	fmt.Fprint(root.stderr, msg)
}

// complete is what completes the last of args, and the directive; and
// what stood in the way, in cobra's words, for the scripts' debug output.
func complete(root *Command, args []string) (comps []string, directive int, problem string) {
	toComplete, words := args[len(args)-1], args[:len(args)-1]
	cmd, words, err := root.findCommand(words)
	if err != nil {
		return nil, compDefault, fmt.Sprintf("unable to find a command for arguments: %v", args[:len(args)-1])
	}
	// Completing a flag's value (--state DIR, --state=DIR)?
	valueOf := ""
	var flagProblem string
	if strings.HasPrefix(toComplete, "-") {
		if i := strings.Index(toComplete, "="); i >= 0 {
			name := toComplete[i-1 : i]
			if strings.HasPrefix(toComplete, "--") {
				name, valueOf = toComplete[2:i], toComplete[2:i]
			} else {
				valueOf = cmd.longName(name)
			}
			if f, _ := cmd.lookup(valueOf); f == nil {
				flagProblem = fmt.Sprintf("Subcommand '%s' does not support flag '%s'", cmd.Name(), name)
			}
		}
	} else if n := len(words); n > 0 && len(words[n-1]) > 1 && words[n-1][0] == '-' && !strings.Contains(words[n-1], "=") && words[n-1] != "--" {
		prev := words[n-1]
		name := strings.TrimPrefix(prev, "--")
		if !strings.HasPrefix(prev, "--") {
			name = cmd.longName(prev[len(prev)-1:])
		}
		if f, _ := cmd.lookup(name); f != nil && !isBool(f) {
			valueOf, words = name, words[:n-1]
		}
	}
	rest, err := cmd.parse(words)
	if err != nil {
		return nil, compDefault, fmt.Sprintf("Error while parsing flags from args %v: %s", words, err.Error())
	}
	if flagProblem != "" {
		return nil, compDefault, flagProblem
	}
	if cmd.help || cmd.version {
		return nil, compNoFileComp, ""
	}
	if valueOf != "" {
		return nil, compDefault, "" // the shell completes file names
	}
	if strings.HasPrefix(toComplete, "-") && !strings.Contains(toComplete, "=") {
		add := func(list []*flag.Flag) {
			for _, f := range list {
				if cmd.changed(f.Name) {
					continue
				}
				if long := "--" + f.Name; strings.HasPrefix(long, toComplete) {
					comps = append(comps, long+"\t"+f.Usage)
				}
				if s := cmd.shorthand(f.Name); s != "" && strings.HasPrefix("-"+s, toComplete) {
					comps = append(comps, "-"+s+"\t"+f.Usage)
				}
			}
		}
		add(cmd.flagList(false, true))
		add(cmd.flagList(true, false))
		return comps, compNoFileComp, ""
	}
	directive = compDefault
	localSet := false
	for _, f := range cmd.flagList(true, false) {
		if cmd.Flags != nil && cmd.Flags.Lookup(f.Name) == f && cmd.changed(f.Name) {
			localSet = true
		}
	}
	target := cmd
	if cmd.Name() == helpCmd {
		// help completes the names of the commands it would explain.
		t, _, err := root.findCommand(rest)
		if err != nil {
			return nil, compNoFileComp, ""
		}
		target, rest = t, nil
		directive = compNoFileComp
	}
	if len(rest) == 0 && !localSet {
		for _, s := range target.sorted() {
			if !s.available() {
				continue
			}
			if strings.HasPrefix(s.Name(), toComplete) {
				comps = append(comps, s.Name()+"\t"+s.Short)
			}
			directive = compNoFileComp
		}
	}
	if cmd.Name() == "completion" || cmd.parent != nil && cmd.parent.Name() == "completion" {
		directive = compNoFileComp
	}
	return comps, directive, ""
}
