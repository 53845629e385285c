package agentssh

import (
	"testing"

	"github.com/porthole/porthole/internal/testdeps"
)

// TestImports: porthole-agent links this package, so it may use only the
// standard library, x/crypto/ssh, pkg/sftp, creack/pty and the packages
// shared with the agent, never the server's.
func TestImports(t *testing.T) {
	testdeps.Imports(t, ".",
		"golang.org/x/crypto/ssh",
		"github.com/pkg/sftp",
		"github.com/creack/pty",
		"github.com/porthole/porthole/sessioncert",
		"github.com/porthole/porthole/control",
		"github.com/porthole/porthole/sshalgo",
	)
}
