package pkg

import "golang.org/x/sys/unix"

var _ = unix.Z
