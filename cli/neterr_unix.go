//go:build unix

package cli

import "syscall"

// errConnRefused is the error of a connection refused.
var errConnRefused error = syscall.ECONNREFUSED
