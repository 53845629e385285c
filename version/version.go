// Package version says which build of Porthole this is. The Makefile and
// the release scripts set Version and Commit with -ldflags
// "-X github.com/porthole/porthole/version.Version=... -X ....Commit=...".
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release or git description of this build.
var Version = "dev"

// Commit is the git commit this build was made from (with "-dirty" when
// the tree had uncommitted changes). Empty: the VCS stamp Go recorded in
// the binary, when it recorded one (not with -buildvcs=false, nor with go
// run), else "unknown".
var Commit = ""

// String describes the build for `version` commands: the program, its
// version and commit, the Go release and the platform, as in
// "porthole-agent 1.2.0 (commit 6b6784f0c2a1, go1.26.8, linux/arm64)".
func String(program string) string {
	return fmt.Sprintf("%s %s (commit %s, %s, %s/%s)", program, Version, commit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// commit is Commit, else the build's VCS stamp, else "unknown".
func commit() string {
	if Commit != "" {
		return Commit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return "unknown"
	}
	if modified == "true" {
		rev += "-dirty"
	}
	return rev
}
