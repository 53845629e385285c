//go:build !unix

package cli

import (
	"context"
	"errors"
)

// lockFile is not written for systems without flock: OpenSSH's
// IdentityAgent there is not a Unix socket either.
func lockFile(context.Context, string, func()) (func(), error) {
	return nil, errors.New("porthole proxy runs on Unix systems only; use porthole ssh, scp and forward here")
}
