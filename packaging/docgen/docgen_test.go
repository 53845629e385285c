package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestGenerate: a page for every command a user can run, under the name
// man looks for, as a valid gzip of a man page; no page name shared by two
// programs (they go in different packages, which dpkg would refuse); the
// completions in place and valid shell; and the same bytes twice.
func TestGenerate(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1765000000")
	dir := t.TempDir()
	if err := generate(dir, "1.2.3", programs()); err != nil {
		t.Fatal(err)
	}
	owner := map[string]string{} // page -> program
	for _, root := range programs() {
		name := root.Name()
		var want []string
		var walk func(*cobra.Command)
		walk = func(c *cobra.Command) {
			if !c.IsAvailableCommand() && c != root {
				return
			}
			want = append(want, strings.ReplaceAll(c.CommandPath(), " ", "-")+".1.gz")
			for _, sub := range c.Commands() {
				walk(sub)
			}
		}
		walk(root)
		for _, page := range want {
			if o, ok := owner[page]; ok {
				t.Errorf("%s and %s both have the man page %s", o, name, page)
			}
			owner[page] = name
			text := gunzip(t, filepath.Join(dir, name, "man1", page))
			if !strings.Contains(text, `.TH "`+strings.ToUpper(strings.TrimSuffix(page, ".1.gz"))+`" "1" "Dec 2025" "Porthole 1.2.3"`) {
				t.Errorf("%s: no .TH header naming it, the date and the version:\n%.300s", page, text)
			}
		}
		pages, _ := filepath.Glob(filepath.Join(dir, name, "man1", "*"))
		if len(pages) != len(want) {
			t.Errorf("%s: %d pages; want %d, one per command: %v", name, len(pages), len(want), want)
		}
		for _, f := range []string{"bash/" + name, "zsh/_" + name, "fish/" + name + ".fish"} {
			data, err := os.ReadFile(filepath.Join(dir, name, f))
			if err != nil {
				t.Error(err)
				continue
			}
			if !bytes.Contains(data, []byte(name)) {
				t.Errorf("%s: does not name %s", f, name)
			}
		}
		// bash -n: bash parses it (zsh and fish the same where installed).
		for shell, f := range map[string]string{"bash": "bash/" + name, "zsh": "zsh/_" + name, "fish": "fish/" + name + ".fish"} {
			path, err := exec.LookPath(shell)
			if err != nil {
				continue
			}
			if out, err := exec.Command(path, "-n", filepath.Join(dir, name, f)).CombinedOutput(); err != nil {
				t.Errorf("%s -n %s: %v\n%s", shell, f, err, out)
			}
		}
	}

	again := t.TempDir()
	if err := generate(again, "1.2.3", programs()); err != nil {
		t.Fatal(err)
	}
	if a, b := tree(t, dir), tree(t, again); a != b {
		t.Error("two runs wrote different files: the packages would not be reproducible")
	}
}

func gunzip(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("%s: gzip header holds name %q and time %v; want neither (gzip -n)", path, zr.Name, zr.ModTime)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return string(data)
}

// tree is every file under dir with its contents, as one string.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		b.WriteString(rel + "\n" + string(data) + "\n")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
