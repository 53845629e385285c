package testdeps

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// fakeTB collects the failures instead of failing the test.
type fakeTB struct {
	testing.TB
	errors []string
	fatal  string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Fatalf(format string, args ...any) { f.fatal = fmt.Sprintf(format, args...) }

func (f *fakeTB) Fatal(args ...any) { f.fatal = fmt.Sprint(args...) }

func TestImports(t *testing.T) {
	for _, tt := range []struct {
		name    string
		allowed []string
		want    []string // the imports refused
	}{
		{"all allowed", []string{"example.com/bad", "golang.org/x/crypto", "golang.org/x/cryptography", "golang.org/x/sys"}, nil},
		{"a parent allows its packages, not a sibling", []string{"example.com", "golang.org/x/crypto", "golang.org/x/sys/unix"},
			[]string{"golang.org/x/cryptography"}},
		{"only the standard library", nil,
			[]string{"example.com/bad", "golang.org/x/crypto/ssh", "golang.org/x/cryptography", "golang.org/x/sys/unix"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeTB{}
			Imports(f, "testdata/pkg", tt.allowed...)
			var got []string
			for _, e := range f.errors {
				_, path, _ := strings.Cut(e, " imports ")
				path, _, _ = strings.Cut(path, ",")
				got = append(got, path)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) || f.fatal != "" {
				t.Errorf("Imports refused %q (fatal %q); want %q (the test file's imports are not checked)", got, f.fatal, tt.want)
			}
		})
	}
}

func TestImportsNoFiles(t *testing.T) {
	f := &fakeTB{}
	Imports(f, "testdata/empty")
	if len(f.errors) != 1 || !strings.Contains(f.errors[0], "no Go files") {
		t.Errorf("Imports of a directory without Go files: %q; want one failure saying so", f.errors)
	}
}

// TestDeps lists this package's own dependencies: the standard library,
// and itself.
func TestDeps(t *testing.T) {
	const self = "github.com/porthole/porthole/internal/testdeps"
	f := &fakeTB{}
	deps := Deps(f, self, []string{"GOOS=linux"})
	if want := []string{self + " links " + self + ", which is not in its allow-list (go list -deps)"}; !slices.Equal(f.errors, want) || f.fatal != "" {
		t.Errorf("Deps without an allow-list: %q (fatal %q); want %q", f.errors, f.fatal, want)
	}
	if !slices.Contains(deps, self) || !slices.Contains(deps, "go/parser") {
		t.Errorf("Deps = %q; want it to list %s and go/parser", deps, self)
	}
	Deps(t, ".", nil, self)

	f = &fakeTB{}
	Deps(f, "./no/such/package", nil)
	if !strings.Contains(f.fatal, "go list -deps") {
		t.Errorf("Deps of a missing package: fatal %q; want go list's failure", f.fatal)
	}
}
