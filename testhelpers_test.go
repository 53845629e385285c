package porthole_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestTestHelpersOnlyInTests: the test helpers in internal/test* (testwait,
// testmosquitto, testdeps, testtls) are imported only by test files (and
// by each other), so that no program links them.
func TestTestHelpersOnlyInTests(t *testing.T) {
	const helpers = "github.com/porthole/porthole/internal/test"
	for dir, paths := range sourceFiles(t) {
		if strings.HasPrefix(filepath.ToSlash(dir), "internal/test") {
			continue
		}
		for _, path := range paths {
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				t.Errorf("%s: %v", path, err)
				continue
			}
			for _, imp := range f.Imports {
				if p, _ := strconv.Unquote(imp.Path.Value); strings.HasPrefix(p, helpers) {
					t.Errorf("%s imports %s; only test files may", path, p)
				}
			}
		}
	}
}
