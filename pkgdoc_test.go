// Package porthole_test checks rules that span the whole module.
package porthole_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackageDocs: every package has exactly one doc comment, and it starts
// "Package <name> " (or "Command <name> " for a main). A package that cannot
// be described in one sentence is two packages.
func TestPackageDocs(t *testing.T) {
	for dir, paths := range sourceFiles(t) {
		var docs []string
		for _, path := range paths {
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Errorf("%s: %v", path, err)
				continue
			}
			if f.Doc == nil {
				continue
			}
			docs = append(docs, path)
			want := "Package " + f.Name.Name + " "
			if f.Name.Name == "main" {
				want = "Command "
			}
			if !strings.HasPrefix(f.Doc.Text(), want) {
				t.Errorf("%s: package doc should start %q; got %q", path, want, firstLine(f.Doc.Text()))
			}
		}
		if len(docs) != 1 {
			t.Errorf("%s: %d package doc comments %v; want exactly one", dir, len(docs), docs)
		}
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// sourceFiles lists the module's Go files, test files aside, by directory.
func sourceFiles(t *testing.T) map[string][]string {
	t.Helper()
	files := map[string][]string{} // dir -> non-test Go files
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "testdata" || d.Name() == "bin" ||
			path == "third_party") { // others' code, kept as it came (third_party/*/README.md)
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			files[filepath.Dir(path)] = append(files[filepath.Dir(path)], path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
