package cli

import "golang.org/x/sys/windows"

// errConnRefused is the error of a connection refused: Winsock's own,
// which syscall.ECONNREFUSED does not match on Windows.
var errConnRefused error = windows.WSAECONNREFUSED
