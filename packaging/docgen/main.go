// Command docgen writes the manual pages and the bash, zsh and fish
// completions of porthole, porthole-agent and portholed, from their cobra
// command trees, for the packages to install:
//
//	docgen -out DIR [-version V]
//
// writes, for each PROGRAM, DIR/PROGRAM/man1/*.1.gz (a page per command,
// compressed as gzip -n does, as Debian's policy asks) and
// DIR/PROGRAM/{bash,zsh,fish}/ holding its completion script under the
// name that shell looks it up by. Each program has a directory of its own
// because each goes in its own package. Dates come from SOURCE_DATE_EPOCH
// when set, so two builds of one commit agree.
package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/porthole/porthole/cli"
	"github.com/porthole/porthole/daemon/daemoncmd"
)

func main() {
	out := flag.String("out", "", "directory to write each program's pages and completions into (required)")
	ver := flag.String("version", "", "the version the man pages name (default: none)")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: docgen -out DIR [-version V]")
		os.Exit(2)
	}
	if err := generate(*out, *ver, programs()); err != nil {
		fmt.Fprintln(os.Stderr, "docgen:", err)
		os.Exit(1)
	}
}

// programs are the command trees documented, each made anew: generating
// adds cobra's help command to a tree.
func programs() []*cobra.Command {
	return []*cobra.Command{agentRoot(), cli.Root(), daemoncmd.Root()}
}

// generate writes the man pages and completions of roots under dir.
func generate(dir, version string, roots []*cobra.Command) error {
	source := "Porthole"
	if version != "" {
		source += " " + version
	}
	for _, root := range roots {
		man := filepath.Join(dir, root.Name(), "man1")
		if err := os.MkdirAll(man, 0o755); err != nil {
			return err
		}
		// No "Auto generated ... on DATE" line: it would make two builds
		// of one commit differ.
		root.DisableAutoGenTag = true
		header := &doc.GenManHeader{Section: "1", Source: source, Manual: "Porthole Manual"}
		if err := doc.GenManTree(root, header, man); err != nil {
			return fmt.Errorf("man pages of %s: %w", root.Name(), err)
		}
		if err := gzipAll(man); err != nil {
			return fmt.Errorf("man pages of %s: %w", root.Name(), err)
		}
		if err := completions(filepath.Join(dir, root.Name()), root); err != nil {
			return fmt.Errorf("completions of %s: %w", root.Name(), err)
		}
	}
	return nil
}

// completions writes root's bash, zsh and fish completion scripts under
// the names bash-completion, zsh's fpath and fish look for.
func completions(dir string, root *cobra.Command) error {
	name := root.Name()
	for _, c := range []struct {
		shell, file string
		gen         func(io.Writer) error
	}{
		{"bash", name, func(w io.Writer) error { return root.GenBashCompletionV2(w, true) }},
		{"zsh", "_" + name, root.GenZshCompletion},
		{"fish", name + ".fish", func(w io.Writer) error { return root.GenFishCompletion(w, true) }},
	} {
		var buf bytes.Buffer
		if err := c.gen(&buf); err != nil {
			return fmt.Errorf("%s: %w", c.shell, err)
		}
		if err := os.MkdirAll(filepath.Join(dir, c.shell), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, c.shell, c.file), buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// gzipAll replaces each page in dir by its gzip, with no name or time in
// the gzip header (gzip -n), so the result depends on the text alone.
func gzipAll(dir string) error {
	pages, err := filepath.Glob(filepath.Join(dir, "*.1"))
	if err != nil {
		return err
	}
	if len(pages) == 0 {
		return errors.New("no man pages were written")
	}
	for _, p := range pages {
		text, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(string(text), ".nh\n.TH ") {
			return fmt.Errorf("%s does not start as a man page (.TH)", p)
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if _, err := zw.Write(text); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		if err := os.WriteFile(p+".gz", buf.Bytes(), 0o644); err != nil {
			return err
		}
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	return nil
}
