//go:build unix

package keyfile

import (
	"os"
	"syscall"
)

// fileOwner returns the user id that owns a file.
func fileOwner(fi os.FileInfo) (uid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
