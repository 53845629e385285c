//go:build !unix

package cli

import "golang.org/x/crypto/ssh"

// watchResize does nothing where there is no SIGWINCH: the device keeps
// the size the terminal had when the session started.
func watchResize(int, *ssh.Session) (stop func()) { return func() {} }
