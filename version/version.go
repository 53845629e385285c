// Package version says which build of Porthole this is. The Makefile sets
// Version with -ldflags "-X github.com/porthole/porthole/version.Version=...".
package version

import (
	"fmt"
	"runtime"
)

// Version is the release or git description of this build.
var Version = "dev"

// String describes the build for `--version` and `version` commands.
func String(program string) string {
	return fmt.Sprintf("%s %s (%s, %s/%s)", program, Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
