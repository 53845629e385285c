// Package testdeps checks in tests that a package depends only on what an
// allow-list names, besides the standard library: its own imports
// (Imports), or everything a program links (Deps).
//
// An entry of an allow-list allows the package of that path and the
// packages below it: "golang.org/x/crypto" allows golang.org/x/crypto/ssh,
// not golang.org/x/cryptography. Only tests may import this package (a test
// in the module root checks).
package testdeps

import (
	"errors"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Imports fails t for each import of the Go files in dir, test files
// aside, that is neither the standard library nor allowed. It reads the
// files of every platform, whatever their build constraints. A test checks
// its own package with dir ".".
func Imports(t testing.TB, dir string, allowed ...string) {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !standard(path) && !allows(allowed, path) {
				t.Errorf("%s imports %s, which is not in its allow-list", name, path)
			}
		}
	}
	if checked == 0 {
		t.Errorf("no Go files in %s to check the imports of", dir)
	}
}

// Deps fails t for each package that pkg links, as `go list -deps` lists
// them with env added to the environment (say GOOS=linux), that is neither
// the standard library nor allowed. It returns every package listed, the
// standard library's too, so that the test can check it looked at the
// program it meant to.
func Deps(t testing.TB, pkg string, env []string, allowed ...string) []string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command to list the dependencies of %s with: %v", pkg, err)
	}
	cmd := exec.Command(gobin, "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", pkg)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		var msg []byte
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			msg = ee.Stderr
		}
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, msg)
	}
	var deps []string
	for line := range strings.Lines(string(out)) {
		path, std, _ := strings.Cut(strings.TrimSpace(line), " ")
		deps = append(deps, path)
		if std != "true" && !allows(allowed, path) {
			t.Errorf("%s links %s, which is not in its allow-list (go list -deps)", pkg, path)
		}
	}
	return deps
}

// standard tells a standard library package by its path, whose first
// element has no dot.
func standard(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

// allows reports whether one of allowed is path or a parent of it.
func allows(allowed []string, path string) bool {
	for _, a := range allowed {
		if path == a || strings.HasPrefix(path, a+"/") {
			return true
		}
	}
	return false
}
