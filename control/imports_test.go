package control

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestImports: the agent links this package, so it may use only the
// standard library, golang.org/x/crypto and internal/atomicfile (itself
// only the standard library), never the server's packages.
func TestImports(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			first, _, _ := strings.Cut(path, "/")
			if strings.Contains(first, ".") && !strings.HasPrefix(path, "golang.org/x/crypto/") && path != "github.com/porthole/porthole/internal/atomicfile" {
				t.Errorf("%s imports %s; control may use only the standard library, golang.org/x/crypto and internal/atomicfile", name, path)
			}
		}
	}
}
