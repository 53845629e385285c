package control

import (
	"testing"

	"github.com/porthole/porthole/internal/testdeps"
)

// TestImports: the agent links this package, so it may use only the
// standard library, golang.org/x/crypto and internal/atomicfile (itself
// only the standard library), never the server's packages.
func TestImports(t *testing.T) {
	testdeps.Imports(t, ".",
		"golang.org/x/crypto",
		"github.com/porthole/porthole/internal/atomicfile",
	)
}
