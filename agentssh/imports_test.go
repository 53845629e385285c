package agentssh

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestImports: porthole-agent links this package, so it may use only the
// standard library, x/crypto/ssh, pkg/sftp, creack/pty and the packages
// shared with the agent, never the server's.
func TestImports(t *testing.T) {
	allowed := []string{
		"golang.org/x/crypto/ssh",
		"github.com/pkg/sftp",
		"github.com/creack/pty",
		"github.com/porthole/porthole/sessioncert",
		"github.com/porthole/porthole/control",
		"github.com/porthole/porthole/sshalgo",
	}
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
	imports:
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			first, _, _ := strings.Cut(path, "/")
			if !strings.Contains(first, ".") {
				continue // the standard library
			}
			for _, a := range allowed {
				if path == a || strings.HasPrefix(path, a+"/") {
					continue imports
				}
			}
			t.Errorf("%s imports %s; the agent's SSH server may not", name, path)
		}
	}
}
