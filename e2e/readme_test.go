package e2e

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestREADMECommands keeps the README from rotting: every command it shows
// for our three programs must be a real command with real flags (checked
// against the built binaries' own --help), and every make target it names
// must exist. The README's two first commands, make demo and make test, are
// also run for real: the demo by TestDemoScript, the tests by CI.
func TestREADMECommands(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	makefile, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	programs := map[string]string{"porthole": bins.CLI, "porthole-agent": bins.Agent, "portholed": bins.Server}
	checked := 0
	for _, line := range readmeCommands(string(readme)) {
		words := strings.Fields(line)
		name := strings.TrimPrefix(words[0], "bin/")
		if name == "make" {
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(words[1]) + `:`).Match(makefile) {
				t.Errorf("README runs `%s` but the Makefile has no target %s", line, words[1])
			}
			continue
		}
		bin, ok := programs[name]
		if !ok {
			continue // stock tools: ssh, scp, rsync
		}
		checked++
		help := commandHelp(t, bin, name, words[1:])
		for _, w := range words[1:] {
			if w == "--" {
				break
			}
			flag, _, _ := strings.Cut(w, "=")
			if strings.HasPrefix(flag, "-") && !regexp.MustCompile(`(^|[\s,])`+regexp.QuoteMeta(flag)+`\b`).MatchString(help) {
				t.Errorf("README shows `%s`, but %s does not take %s", line, name, flag)
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d commands found in the README's sh blocks; is the parser still reading it?", checked)
	}
}

// readmeCommands returns the commands of the README's ```sh blocks, with
// continuation lines joined and comments dropped.
func readmeCommands(md string) []string {
	var out []string
	inSh := false
	var cur string
	for line := range strings.Lines(md) {
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "```sh"):
			inSh = true
			continue
		case strings.HasPrefix(line, "```"):
			inSh = false
			continue
		case !inSh:
			continue
		}
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "$ "))
		if strings.HasSuffix(line, "\\") {
			cur += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		if line = strings.TrimSpace(cur + line); line != "" {
			out = append(out, line)
		}
		cur = ""
	}
	return out
}

// commandHelp walks args down the program's subcommands (a word is a
// subcommand when its --help says so) and returns the deepest one's help.
func commandHelp(t *testing.T, bin, name string, args []string) string {
	t.Helper()
	path := []string{}
	help := runHelp(t, bin, path)
	for _, w := range args {
		if strings.HasPrefix(w, "-") {
			break
		}
		next := runHelp(t, bin, append(path, w))
		usage := regexp.MustCompile(`(?m)^Usage:\n\s+(.*)$`).FindStringSubmatch(next)
		if usage == nil || !strings.HasPrefix(usage[1], strings.Join(append([]string{name}, append(path, w)...), " ")) {
			break // an argument, not a subcommand
		}
		path, help = append(path, w), next
	}
	return help
}

func runHelp(t *testing.T, bin string, path []string) string {
	t.Helper()
	out, err := exec.Command(bin, append(append([]string{}, path...), "--help")...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s --help: %v\n%s", bin, strings.Join(path, " "), err, out)
	}
	return string(out)
}
