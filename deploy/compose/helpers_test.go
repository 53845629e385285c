package compose_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"
)

// ---- our programs' command lines, checked against their own --help ----

// ours are the programs this repository builds.
var ours = []string{"portholed", "porthole-agent", "porthole"}

// isOurs reports whether a program name or path is one of ours.
func isOurs(prog string) bool { return slices.Contains(ours, filepath.Base(prog)) }

// cmdHelp is what a command's --help says about it.
type cmdHelp struct {
	path        []string        // the command path from Usage, such as [porthole-agent run]
	subcommands []string        // its subcommands, if any
	valueFlags  map[string]bool // flags (long and short) that take a value
}

var helpCache sync.Map // strings.Join(argv, "\x00") -> error

// checkCommand checks argv, a command line of one of our programs, against
// the built program itself: it runs it with --help placed before any "--",
// so that cobra parses every subcommand and flag and then only prints
// help. An unknown subcommand or flag fails there; a positional word where
// a subcommand is expected is caught from the help's command list.
func checkCommand(argv []string) error {
	key := strings.Join(argv, "\x00")
	if err, ok := helpCache.Load(key); ok {
		e, _ := err.(error)
		return e
	}
	err := checkCommandUncached(argv)
	helpCache.Store(key, err)
	return err
}

func checkCommandUncached(argv []string) error {
	prog := filepath.Base(argv[0])
	if !isOurs(prog) {
		return fmt.Errorf("%s is not one of our programs %v", prog, ours)
	}
	args := slices.Clone(argv[1:])
	dash := slices.Index(args, "--")
	if dash < 0 {
		dash = len(args)
	}
	args = slices.Insert(args, dash, "--help")
	cmd := exec.Command(filepath.Join(binDir, prog), args...)
	// Nothing of the developer's own: --help reads no config anyway.
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + os.TempDir()}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("`%s` is refused by %s: %v: %s", strings.Join(argv, " "), prog, err, firstLines(string(out), 3))
	}
	h := parseHelp(string(out))
	if len(h.path) == 0 || h.path[0] != prog {
		return fmt.Errorf("`%s --help` printed no usage line for %s:\n%s", strings.Join(argv, " "), prog, out)
	}
	pos := positionals(argv[1:], h.valueFlags)
	want := h.path[1:]
	if len(pos) < len(want) || !slices.Equal(pos[:len(want)], want) {
		return fmt.Errorf("`%s`: its help is for `%s`", strings.Join(argv, " "), strings.Join(h.path, " "))
	}
	if len(h.subcommands) > 0 && len(pos) > len(want) {
		return fmt.Errorf("`%s`: %q is not a command of `%s` (it has %v)", strings.Join(argv, " "), pos[len(want)], strings.Join(h.path, " "), h.subcommands)
	}
	return nil
}

var (
	helpCommandLine = regexp.MustCompile(`^  ([a-z][a-z0-9-]*)\s{2,}\S`)
	helpFlagLine    = regexp.MustCompile(`^\s+(?:(-[A-Za-z0-9]), )?(--[a-z0-9-]+)(\[=\S*\])?( \S)?`)
	commandWord     = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
)

// parseHelp reads cobra's help output: the Usage line's command path, the
// commands under "Available Commands:" (or group titles), and which flags
// take a value (cobra prints "--name type" with one space before the type,
// and more than one before the description).
func parseHelp(out string) cmdHelp {
	h := cmdHelp{valueFlags: map[string]bool{}}
	section := ""
	for line := range strings.Lines(out) {
		line = strings.TrimRight(line, "\n")
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, " ") && strings.HasSuffix(line, ":") {
			section = strings.TrimSuffix(line, ":")
			continue
		}
		switch section {
		case "":
			// The description before Usage: may show commands; not ours to parse.
		case "Usage":
			if h.path == nil {
				for _, w := range strings.Fields(line) {
					if !commandWord.MatchString(w) {
						break
					}
					h.path = append(h.path, w)
				}
			}
		case "Flags", "Global Flags":
			if m := helpFlagLine.FindStringSubmatch(line); m != nil {
				takes := m[3] == "" && m[4] != ""
				h.valueFlags[m[2]] = takes
				if m[1] != "" {
					h.valueFlags[m[1]] = takes
				}
			}
		case "Aliases", "Examples":
		default: // Available Commands, Additional Commands, cobra command groups
			if m := helpCommandLine.FindStringSubmatch(line); m != nil {
				h.subcommands = append(h.subcommands, m[1])
			}
		}
	}
	return h
}

// positionals returns args' words that are neither flags nor flag values,
// up to a "--".
func positionals(args []string, valueFlags map[string]bool) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return out
		case strings.HasPrefix(a, "-") && len(a) > 1:
			if !strings.Contains(a, "=") && valueFlags[a] {
				i++
			}
		default:
			out = append(out, a)
		}
	}
	return out
}

func firstLines(s string, n int) string {
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' })
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, " / ")
}

// ---- shell ----

// shellCommands returns the simple commands of a shell script (or of a
// README's sh block) as words: continuation lines joined, comments dropped,
// a word holding an expansion ($x, "${x}", $(...)) replaced by "X" so that
// it stands for a value. It understands what our scripts use, not all of
// sh: quotes, backslashes, and ; && || | & > < ( ) as separators.
func shellCommands(script string) [][]string {
	script = strings.ReplaceAll(script, "\\\n", " ")
	var cmds [][]string
	for line := range strings.Lines(script) {
		var words []string
		var cur strings.Builder
		inWord, expands := false, false
		flush := func() {
			if inWord {
				w := cur.String()
				if expands {
					w = "X"
				}
				words = append(words, w)
			}
			cur.Reset()
			inWord, expands = false, false
		}
		end := func() {
			flush()
			if len(words) > 0 {
				cmds = append(cmds, words)
			}
			words = nil
		}
		quote := byte(0)
		for i := 0; i < len(line); i++ {
			c := line[i]
			switch {
			case quote == '\'':
				if c == '\'' {
					quote = 0
				} else {
					cur.WriteByte(c)
				}
			case quote == '"':
				switch c {
				case '"':
					quote = 0
				case '\\':
					if i+1 < len(line) {
						i++
						cur.WriteByte(line[i])
					}
				case '$', '`':
					expands = true
					cur.WriteByte(c)
				default:
					cur.WriteByte(c)
				}
			case c == '\'' || c == '"':
				quote, inWord = c, true
			case c == '\\' && i+1 < len(line):
				i++
				cur.WriteByte(line[i])
				inWord = true
			case c == '$' || c == '`':
				expands, inWord = true, true
				cur.WriteByte(c)
				// Swallow a ${...} or $(...) whole, separators and all.
				if i+1 < len(line) && (line[i+1] == '{' || line[i+1] == '(') {
					open, close := line[i+1], byte('}')
					if open == '(' {
						close = ')'
					}
					depth := 0
					for i++; i < len(line); i++ {
						if line[i] == open {
							depth++
						} else if line[i] == close {
							if depth--; depth == 0 {
								break
							}
						}
					}
				}
			case c == '#' && !inWord:
				end()
				i = len(line)
			case c == ' ' || c == '\t' || c == '\n':
				flush()
			case strings.IndexByte(";&|<>()", c) >= 0:
				end()
			default:
				cur.WriteByte(c)
				inWord = true
			}
		}
		end()
	}
	return cmds
}

// commandWords drops what comes before the program in a simple command:
// exec, if/then/!, and VAR=value assignments.
func commandWords(words []string) []string {
	for len(words) > 0 {
		switch w := words[0]; {
		case w == "exec" || w == "if" || w == "then" || w == "else" || w == "!" || w == "do" || w == "sudo":
			words = words[1:]
		case regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`).MatchString(w):
			words = words[1:]
		default:
			return words
		}
	}
	return nil
}

// ---- Dockerfile ----

type dockerfile struct {
	path   string
	args   map[string]string // ARGs before the first FROM, with their defaults
	stages []*stage
}

type stage struct {
	name   string
	from   string // as written, before ${ARG} expansion
	instrs []instr
}

type instr struct {
	line int
	cmd  string // upper case
	rest string
}

// parseDockerfile reads a Dockerfile's instructions: comments dropped,
// continuation lines joined.
func parseDockerfile(t *testing.T, path string) *dockerfile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	df := &dockerfile{path: path, args: map[string]string{}}
	var buf strings.Builder
	start := 0
	for i, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && buf.Len() == 0) {
			continue
		}
		if buf.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(trimmed, "\\") {
			buf.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		buf.WriteString(trimmed)
		text := buf.String()
		buf.Reset()
		cmd, rest, _ := strings.Cut(text, " ")
		in := instr{line: start, cmd: strings.ToUpper(cmd), rest: strings.TrimSpace(rest)}
		switch {
		case in.cmd == "FROM":
			f := strings.Fields(in.rest)
			f = slices.DeleteFunc(f, func(s string) bool { return strings.HasPrefix(s, "--") })
			st := &stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			df.stages = append(df.stages, st)
		case len(df.stages) == 0 && in.cmd == "ARG":
			name, def, _ := strings.Cut(in.rest, "=")
			df.args[name] = def
		case len(df.stages) > 0:
			st := df.stages[len(df.stages)-1]
			st.instrs = append(st.instrs, in)
		default:
			t.Fatalf("%s:%d: %s before FROM", path, in.line, in.cmd)
		}
	}
	return df
}

func (df *dockerfile) stage(name string) *stage {
	for _, s := range df.stages {
		if s.name == name {
			return s
		}
	}
	return nil
}

// baseImage is the stage's FROM with ${ARG}s expanded from the Dockerfile's
// defaults and buildArgs (compose's build.args).
func (df *dockerfile) baseImage(s *stage, buildArgs map[string]string) string {
	return os.Expand(s.from, func(k string) string {
		if v, ok := buildArgs[k]; ok {
			return v
		}
		return df.args[k]
	})
}

// copyOp is one COPY or ADD: its sources, destination and --from stage.
type copyOp struct {
	line int
	from string
	srcs []string
	dest string
}

func (s *stage) copies() []copyOp {
	var out []copyOp
	for _, in := range s.instrs {
		if in.cmd != "COPY" && in.cmd != "ADD" {
			continue
		}
		op := copyOp{line: in.line}
		var words []string
		for _, w := range strings.Fields(in.rest) {
			if v, ok := strings.CutPrefix(w, "--from="); ok {
				op.from = v
			} else if !strings.HasPrefix(w, "--") {
				words = append(words, w)
			}
		}
		op.srcs, op.dest = words[:len(words)-1], words[len(words)-1]
		out = append(out, op)
	}
	return out
}

// entrypoint is the stage's ENTRYPOINT in exec (JSON) form.
func (s *stage) entrypoint(t *testing.T) []string {
	t.Helper()
	var ep []string
	for _, in := range s.instrs {
		if in.cmd == "ENTRYPOINT" {
			ep = nil
			if err := json.Unmarshal([]byte(in.rest), &ep); err != nil {
				t.Errorf("stage %s line %d: ENTRYPOINT %s is not in exec form [\"...\"]: %v", s.name, in.line, in.rest, err)
			}
		}
	}
	return ep
}

// ---- compose ----

// composeFile is the part of the compose spec we use. Unknown keys are
// errors (KnownFields), so a key this test does not check cannot slip in.
type composeFile struct {
	Name       string                `yaml:"name"`
	Services   map[string]service    `yaml:"services"`
	Volumes    map[string]*yaml.Node `yaml:"volumes"`
	Extensions map[string]any        `yaml:",inline"` // x-... anchors
}

type service struct {
	Build       build                `yaml:"build"`
	Image       string               `yaml:"image"`
	Profiles    []string             `yaml:"profiles"`
	Hostname    string               `yaml:"hostname"`
	Environment map[string]string    `yaml:"environment"`
	Ports       []string             `yaml:"ports"`
	Volumes     []string             `yaml:"volumes"`
	Restart     string               `yaml:"restart"`
	DependsOn   map[string]dependsOn `yaml:"depends_on"`
	Healthcheck healthcheck          `yaml:"healthcheck"`
	Entrypoint  []string             `yaml:"entrypoint"`
	Command     []string             `yaml:"command"`
}

type build struct {
	Context    string            `yaml:"context"`
	Dockerfile string            `yaml:"dockerfile"`
	Target     string            `yaml:"target"`
	Args       map[string]string `yaml:"args"`
}

type dependsOn struct {
	Condition string `yaml:"condition"`
}

type healthcheck struct {
	Test        []string `yaml:"test"`
	Interval    string   `yaml:"interval"`
	Timeout     string   `yaml:"timeout"`
	StartPeriod string   `yaml:"start_period"`
	Retries     int      `yaml:"retries"`
}

var interpolation = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// interpolate does compose's variable substitution with env standing for
// the shell's environment and .env: ${VAR}, ${VAR:-default}, ${VAR-default},
// ${VAR:?error}, $VAR and $$.
func interpolate(text string, env map[string]string) (string, error) {
	var err error
	out := interpolation.ReplaceAllStringFunc(text, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sm := interpolation.FindStringSubmatch(m)
		name, op, arg := sm[1], sm[2], sm[3]
		if name == "" {
			name = sm[4]
		}
		v, set := env[name]
		switch op {
		case ":-":
			if v == "" {
				return arg
			}
		case "-":
			if !set {
				return arg
			}
		case ":?", "?":
			if v == "" && (op == ":?" || !set) {
				err = fmt.Errorf("%s must be set: %s", name, arg)
			}
		}
		return v
	})
	return out, err
}

// loadCompose reads compose.yaml with env as the environment.
func loadCompose(t *testing.T, env map[string]string) *composeFile {
	t.Helper()
	data, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text, err := interpolate(string(data), env)
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	var cf composeFile
	dec := yaml.NewDecoder(bytes.NewReader([]byte(text)))
	dec.KnownFields(true)
	if err := dec.Decode(&cf); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	for k := range cf.Extensions {
		if !strings.HasPrefix(k, "x-") {
			t.Errorf("compose.yaml: unknown top-level key %q", k)
		}
	}
	return &cf
}
