package agentcmd

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode"
)

// The help, laid out as cobra's default help and usage templates and
// pflag's flag list lay it out, so the agent's help reads as its manual
// pages (which cobra makes) and as it always did.

// writeHelp writes c's help: its text, then its usage.
func (c *Command) writeHelp(w io.Writer) error {
	text := c.Long
	if text == "" {
		text = c.Short
	}
	if text = strings.TrimRightFunc(text, unicode.IsSpace); text != "" {
		fmt.Fprintf(w, "%s\n\n", text)
	}
	return c.usage(w, false)
}

// useLine is Use after the parents' names, with " [flags]" when the
// command takes any.
func (c *Command) useLine() string {
	line := c.Use
	if c.parent != nil {
		line = c.parent.CommandPath() + " " + c.Use
	}
	if !c.noFlagsUseLine && len(c.flagList(true, true)) > 0 && !strings.Contains(line, "[flags]") {
		line += " [flags]"
	}
	return line
}

// usage writes c's usage: how to call it, its examples, subcommands and
// flags; bare leaves out --help and --version.
func (c *Command) usage(w io.Writer, bare bool) error {
	var b strings.Builder
	b.WriteString("Usage:")
	if c.Run != nil {
		fmt.Fprintf(&b, "\n  %s", c.useLine())
	}
	subs := slices.DeleteFunc(c.sorted(), func(s *Command) bool { return !s.available() })
	if len(subs) > 0 {
		fmt.Fprintf(&b, "\n  %s [command]", c.CommandPath())
	}
	if len(c.Aliases) > 0 {
		fmt.Fprintf(&b, "\n\nAliases:\n  %s", strings.Join(append([]string{c.Name()}, c.Aliases...), ", "))
	}
	if c.Example != "" {
		fmt.Fprintf(&b, "\n\nExamples:\n%s", c.Example)
	}
	if len(subs) > 0 {
		b.WriteString("\n\nAvailable Commands:")
		pad := c.namePadding()
		for _, s := range subs {
			fmt.Fprintf(&b, "\n  %-*s %s", pad, s.Name(), s.Short)
		}
	}
	local := c.flagList(true, false)
	if bare {
		local = slices.DeleteFunc(local, func(f *flag.Flag) bool { return f.Name == "help" || f.Name == "version" && c.parent == nil })
	}
	if len(local) > 0 {
		fmt.Fprintf(&b, "\n\nFlags:\n%s", flagUsages(c, local))
	}
	if inherited := c.flagList(false, true); len(inherited) > 0 {
		fmt.Fprintf(&b, "\n\nGlobal Flags:\n%s", flagUsages(c, inherited))
	}
	if len(subs) > 0 {
		fmt.Fprintf(&b, "\n\nUse \"%s [command] --help\" for more information about a command.", c.CommandPath())
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// namePadding is how wide the names in c's list of subcommands are
// padded: to the longest, hidden ones included (but not __complete,
// which cobra adds only when it is called), and at least 11.
func (c *Command) namePadding() int {
	pad := 11
	for _, s := range c.Commands {
		if !s.rawArgs {
			pad = max(pad, len(s.Name()))
		}
	}
	return pad
}

// flagList is c's flags sorted by name: its own (and the persistent
// ones it defines) if local, those it inherits from its parents if
// inherited.
func (c *Command) flagList(local, inherited bool) []*flag.Flag {
	var list []*flag.Flag
	seen := map[string]bool{}
	addAll := func(fs *flag.FlagSet) {
		if fs == nil {
			return
		}
		fs.VisitAll(func(f *flag.Flag) {
			if !seen[f.Name] {
				seen[f.Name] = true
				list = append(list, f)
			}
		})
	}
	if local {
		addAll(c.Flags)
		addAll(c.PersistentFlags)
	}
	if inherited {
		for p := c.parent; p != nil; p = p.parent {
			addAll(p.PersistentFlags)
		}
	}
	slices.SortFunc(list, func(a, b *flag.Flag) int { return strings.Compare(a.Name, b.Name) })
	return list
}

// flagUsages lists flags as pflag's FlagUsages does:
//
//	-v, --verbose        log each step to standard error
//	    --state string   the agent's state directory (default "/var/lib/porthole-agent")
func flagUsages(c *Command, flags []*flag.Flag) string {
	lines := make([]string, 0, len(flags))
	width := 0
	for _, f := range flags {
		line := "      --" + f.Name
		if s := c.shorthand(f.Name); s != "" {
			line = "  -" + s + ", --" + f.Name
		}
		name, usage := flag.UnquoteUsage(f)
		if kind := flagType(f); kind == "bool" {
			name = ""
		} else if !strings.Contains(f.Usage, "`") {
			name = kind
			if kind == "float64" {
				name = "float"
			}
		}
		if name != "" {
			line += " " + name
		}
		line += "\x00"
		width = max(width, len(line))
		line += usage
		if !zeroDefault(f) {
			if flagType(f) == "string" {
				line += fmt.Sprintf(" (default %q)", f.DefValue)
			} else {
				line += fmt.Sprintf(" (default %s)", f.DefValue)
			}
		}
		lines = append(lines, line)
	}
	var b strings.Builder
	for _, line := range lines {
		name, usage, _ := strings.Cut(line, "\x00")
		fmt.Fprintln(&b, name, strings.Repeat(" ", width-len(name)), strings.ReplaceAll(usage, "\n", "\n"+strings.Repeat(" ", width+2)))
	}
	return strings.TrimRightFunc(b.String(), unicode.IsSpace)
}

// flagType is pflag's name for f's type: bool, string, duration or
// float64.
func flagType(f *flag.Flag) string {
	if g, ok := f.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case bool:
			return "bool"
		case time.Duration:
			return "duration"
		case float64:
			return "float64"
		case string:
			return "string"
		}
	}
	if isBool(f) {
		return "bool"
	}
	return "string"
}

// FlagType is pflag's name for the type of f, one of c's flags: bool,
// string, duration or float64. (For packaging/docgen.)
func FlagType(f *flag.Flag) string { return flagType(f) }

// Shorthand is the one-letter form of c's flag called name, or "".
// (For packaging/docgen.)
func (c *Command) Shorthand(name string) string { return c.shorthand(name) }

// zeroDefault says whether f's default is its type's zero, which the
// list of flags does not show.
func zeroDefault(f *flag.Flag) bool {
	switch flagType(f) {
	case "bool":
		return f.DefValue == "false" || f.DefValue == ""
	case "duration":
		return f.DefValue == "0" || f.DefValue == "0s"
	case "float64":
		return f.DefValue == "0"
	}
	return f.DefValue == ""
}
