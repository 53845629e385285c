package agentcmd

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Command is one of porthole-agent's commands: what its help and manual
// page say of it, its flags, and what it does. Commands are parsed, and
// their help written, as cobra and pflag do (the agent used them, and
// packaging/docgen still makes the manual pages and completions with
// them from this tree; its tests hold the two to the same words), but on
// the standard library's flag package: cobra links text/template, whose
// reflection makes the linker keep every exported method, and the agent
// must stay small.
//
// Flags are given GNU style, as pflag takes them: --name value,
// --name=value, a bool as --name (or --name=false), a one-letter form
// from Shorthands as -v, and flags anywhere among the arguments; "--"
// ends them. -h and --help show a command's help.
type Command struct {
	// Use is the command's name, then what it takes, as its help shows
	// it: "replay ID [--speed N]".
	Use string
	// Aliases are other names the command answers to.
	Aliases []string
	// Short is the line the list of commands shows; Long, the help's
	// text; Example, examples indented by two spaces.
	Short, Long, Example string
	// Hidden commands are left out of help and completions.
	Hidden bool
	// Version, on the root, is what --version prints.
	Version string
	// Flags are the command's own flags; PersistentFlags (the root's)
	// are its subcommands' too. Nil: none.
	Flags, PersistentFlags *flag.FlagSet
	// Shorthands maps the one-letter form of a flag of Flags or
	// PersistentFlags to its name.
	Shorthands map[string]string
	// Commands are the command's subcommands.
	Commands []*Command
	// Run does the command's work with its arguments, once its flags
	// are parsed. Nil: the command only groups its subcommands.
	Run func(ctx context.Context, args []string) error

	args           argsRule // nil: no arguments
	noFlagsUseLine bool     // no " [flags]" after Use in the help
	rawArgs        bool     // Run parses its arguments itself
	parent         *Command
	help, version  bool // --help, --version (the root's) were given

	// The root's: where help and results go, where errors and notes
	// go, and the environment.
	stdout, stderr io.Writer
	getenv         func(string) string
}

// argsRule checks a command's arguments once its flags are parsed.
type argsRule func(c *Command, args []string) error

// noArgs, maxArgs, exactArgs and minArgs fail as cobra's NoArgs,
// MaximumNArgs, ExactArgs and MinimumNArgs do.
func noArgs(c *Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unknown command %q for %q", args[0], c.CommandPath())
	}
	return nil
}

func maxArgs(n int) argsRule {
	return func(_ *Command, args []string) error {
		if len(args) > n {
			return fmt.Errorf("accepts at most %d arg(s), received %d", n, len(args))
		}
		return nil
	}
}

func exactArgs(n int) argsRule {
	return func(_ *Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("accepts %d arg(s), received %d", n, len(args))
		}
		return nil
	}
}

func minArgs(n int) argsRule {
	return func(_ *Command, args []string) error {
		if len(args) < n {
			return fmt.Errorf("requires at least %d arg(s), only received %d", n, len(args))
		}
		return nil
	}
}

// Name is the command's name: Use's first word.
func (c *Command) Name() string {
	name, _, _ := strings.Cut(c.Use, " ")
	return name
}

// CommandPath is the command's name after its parents':
// "porthole-agent run".
func (c *Command) CommandPath() string {
	if c.parent == nil {
		return c.Name()
	}
	return c.parent.CommandPath() + " " + c.Name()
}

// Find is the command args name, under c, and the arguments left to it,
// as cobra's Find: each first argument that is no flag names a
// subcommand while there is one by that name.
func (c *Command) Find(args []string) (*Command, []string, error) { return c.findCommand(args) }

func (c *Command) root() *Command {
	for c.parent != nil {
		c = c.parent
	}
	return c
}

// add makes subs c's subcommands.
func (c *Command) add(subs ...*Command) {
	for _, s := range subs {
		s.parent = c
		c.Commands = append(c.Commands, s)
	}
}

// sorted is c's subcommands by name, as help lists them.
func (c *Command) sorted() []*Command {
	return slices.SortedFunc(slices.Values(c.Commands), func(a, b *Command) int { return strings.Compare(a.Name(), b.Name()) })
}

// available says whether help lists c, as cobra's IsAvailableCommand
// does; help lists the help command too.
func (c *Command) available() bool {
	if c.Hidden {
		return false
	}
	if c.Run != nil {
		return true
	}
	return slices.ContainsFunc(c.Commands, (*Command).available)
}

// find is the subcommand called name, or by that alias.
func (c *Command) find(name string) *Command {
	for _, s := range c.Commands {
		if s.Name() == name || slices.Contains(s.Aliases, name) {
			return s
		}
	}
	return nil
}

// changed says whether the flag called name was given.
func (c *Command) changed(name string) bool {
	set := false
	for _, fs := range c.flagSets() {
		fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	}
	return set
}

// flagSets are the flags c takes: its own, then those it inherits.
func (c *Command) flagSets() []*flag.FlagSet {
	var sets []*flag.FlagSet
	if c.Flags != nil {
		sets = append(sets, c.Flags)
	}
	for p := c; p != nil; p = p.parent {
		if p.PersistentFlags != nil {
			sets = append(sets, p.PersistentFlags)
		}
	}
	return sets
}

// lookup is the flag called name, and the set that holds it.
func (c *Command) lookup(name string) (*flag.Flag, *flag.FlagSet) {
	for _, fs := range c.flagSets() {
		if f := fs.Lookup(name); f != nil {
			return f, fs
		}
	}
	return nil, nil
}

// shorthand is the one-letter form of the flag called name, if any.
func (c *Command) shorthand(name string) string {
	for p := c; p != nil; p = p.parent {
		for s, n := range p.Shorthands {
			if n == name && (p == c || p.PersistentFlags != nil && p.PersistentFlags.Lookup(n) != nil) {
				return s
			}
		}
	}
	return ""
}

// longName is the name of the flag whose one-letter form is s.
func (c *Command) longName(s string) string {
	for p := c; p != nil; p = p.parent {
		if n, ok := p.Shorthands[s]; ok {
			if f, _ := c.lookup(n); f != nil {
				return n
			}
		}
	}
	return ""
}

// init adds what cobra adds to every tree it runs: a --help flag on
// every command (-h), --version on the root, and the help, completion
// and __complete commands.
// flags is c's flag set, made on first use: each part that gives c flags
// adds to it, in whatever order they run.
func (c *Command) flags() *flag.FlagSet {
	if c.Flags == nil {
		c.Flags = newFlags(c)
	}
	return c.Flags
}

func (c *Command) init() {
	c.add(newHelp(), newCompletion(), newComplete(completeCmd), newComplete(completeNoDescCmd))
	var walk func(*Command)
	walk = func(c *Command) {
		c.flags()
		if c.Shorthands == nil {
			c.Shorthands = map[string]string{}
		}
		c.Flags.BoolVar(&c.help, "help", false, "help for "+c.Name())
		c.Shorthands["h"] = "help"
		for _, s := range c.Commands {
			walk(s)
		}
	}
	walk(c)
	if c.Version != "" {
		c.Flags.BoolVar(&c.version, "version", false, "version for "+c.Name())
	}
}

// newFlags is an empty set of flags for c.
func newFlags(c *Command) *flag.FlagSet {
	fs := flag.NewFlagSet(c.Name(), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// execute runs the command args name (without the program's name), as
// cobra's Execute does; c is the root.
func (c *Command) execute(ctx context.Context, args []string) error {
	out := c.stdout
	cmd, rest, err := c.findCommand(args)
	if err != nil {
		return err
	}
	if cmd.rawArgs {
		return cmd.Run(ctx, rest)
	}
	rest, err = cmd.parse(rest)
	switch {
	case err != nil:
		return err
	case cmd.help:
		return cmd.writeHelp(out)
	case cmd.version:
		_, err := fmt.Fprintf(out, "%s version %s\n", cmd.Name(), cmd.Version)
		return err
	case cmd.Run == nil:
		return cmd.writeHelp(out)
	}
	rule := cmd.args
	if rule == nil {
		rule = noArgs
	}
	if err := rule(cmd, rest); err != nil {
		return err
	}
	return cmd.Run(ctx, rest)
}

// findCommand walks args to the command they name, as cobra's Find does:
// each first argument that is no flag (nor a flag's value) names a
// subcommand while there is one by that name. The rest of args, flags
// and all, are the command's; only the root complains of an argument
// that names no command.
func (c *Command) findCommand(args []string) (*Command, []string, error) {
	cmd := c
	for {
		i := cmd.firstArg(args)
		if i < 0 {
			return cmd, args, nil
		}
		sub := cmd.find(args[i])
		if sub == nil {
			if cmd.parent == nil && len(cmd.Commands) > 0 {
				return nil, nil, fmt.Errorf("unknown command %q for %q%s", args[i], cmd.CommandPath(), cmd.suggestions(args[i]))
			}
			return cmd, args, nil
		}
		args = slices.Delete(slices.Clone(args), i, i+1)
		cmd = sub
	}
}

// firstArg is the index of args' first argument that is not a flag or
// a flag's value; -1 if none comes before "--".
func (c *Command) firstArg(args []string) int {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return -1
		case a != "" && !strings.HasPrefix(a, "-"):
			return i
		case strings.Contains(a, "="):
		case strings.HasPrefix(a, "--") && c.takesValue(a[2:]),
			len(a) == 2 && a[0] == '-' && c.takesValue(c.longName(a[1:])):
			i++ // its value
		}
	}
	return -1
}

// takesValue says whether the flag called name takes the next argument
// as its value, as cobra's Find takes it: an unknown flag is taken to, and
// so are --help and --version, which cobra gives a command only once it
// is found ("porthole-agent --help run" is the root's help).
func (c *Command) takesValue(name string) bool {
	if name == "help" || name == "version" {
		return true
	}
	f, _ := c.lookup(name)
	return f == nil || !isBool(f)
}

// isBool says whether f is a flag given without a value.
func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// parse sets c's flags from args as pflag does, and returns the other
// arguments.
func (c *Command) parse(args []string) (rest []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(rest, args[i+1:]...), nil
		case !strings.HasPrefix(a, "-") || len(a) == 1:
			rest = append(rest, a)
		case strings.HasPrefix(a, "--"):
			name, value, hasValue := strings.Cut(a[2:], "=")
			if name == "" || name[0] == '-' || name[0] == '=' {
				return nil, fmt.Errorf("bad flag syntax: %s", a)
			}
			f, _ := c.lookup(name)
			switch {
			case f == nil:
				return nil, fmt.Errorf("unknown flag: --%s", name)
			case hasValue:
			case isBool(f):
				value = "true"
			case i+1 < len(args):
				i++
				value = args[i]
			default:
				return nil, fmt.Errorf("flag needs an argument: --%s", name)
			}
			if err := c.set(f, value); err != nil {
				return nil, err
			}
		default:
			shorts := a[1:]
			for j := 0; j < len(shorts); j++ {
				f, _ := c.lookup(c.longName(shorts[j : j+1]))
				if f == nil {
					return nil, fmt.Errorf("unknown shorthand flag: %q in -%s", rune(shorts[j]), shorts[j:])
				}
				var value string
				switch {
				case j+1 < len(shorts) && shorts[j+1] == '=':
					value, j = shorts[j+2:], len(shorts)
				case isBool(f):
					value = "true"
				case j+1 < len(shorts):
					value, j = shorts[j+1:], len(shorts)
				case i+1 < len(args):
					i++
					value = args[i]
				default:
					return nil, fmt.Errorf("flag needs an argument: %q in -%s", rune(shorts[j]), shorts[j:])
				}
				if err := c.set(f, value); err != nil {
					return nil, err
				}
			}
		}
	}
	return rest, nil
}

// set gives f its value, failing as pflag does.
func (c *Command) set(f *flag.Flag, value string) error {
	_, fs := c.lookup(f.Name)
	if err := fs.Set(f.Name, value); err != nil {
		title := "--" + f.Name
		if s := c.shorthand(f.Name); s != "" {
			title = "-" + s + ", " + title
		}
		return fmt.Errorf("invalid argument %q for %q flag: %v", value, title, why(f, value, err))
	}
	return nil
}

// why is the parser's own error for value, where the flag package says
// only "parse error".
func why(f *flag.Flag, value string, err error) error {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return err
	}
	var perr error
	switch g.Get().(type) {
	case bool:
		_, perr = strconv.ParseBool(value)
	case time.Duration:
		_, perr = time.ParseDuration(value)
	case float64:
		_, perr = strconv.ParseFloat(value, 64)
	}
	if perr != nil {
		return perr
	}
	return err
}

// suggestions is cobra's "Did you mean this?" for an unknown command.
func (c *Command) suggestions(typed string) string {
	var b strings.Builder
	for _, s := range c.sorted() {
		if !s.available() {
			continue
		}
		name, t := strings.ToLower(s.Name()), strings.ToLower(typed)
		if levenshtein(t, name) <= 2 || strings.HasPrefix(name, t) {
			if b.Len() == 0 {
				b.WriteString("\n\nDid you mean this?\n")
			}
			fmt.Fprintf(&b, "\t%v\n", s.Name())
		}
	}
	return b.String()
}

// levenshtein is the edit distance between s and t, in bytes.
func levenshtein(s, t string) int {
	prev := make([]int, len(t)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(s); i++ {
		cur := make([]int, len(t)+1)
		cur[0] = i
		for j := 1; j <= len(t); j++ {
			if s[i-1] == t[j-1] {
				cur[j] = prev[j-1]
			} else {
				cur[j] = 1 + min(prev[j], cur[j-1], prev[j-1])
			}
		}
		prev = cur
	}
	return prev[len(t)]
}
