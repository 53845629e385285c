package keyfile

import (
	"fmt"
	"os"
)

// CheckDir refuses a directory of keys that someone else could change: one
// that other users can write to (they could swap the keys) or that belongs
// to another user. A missing directory is an error matching os.ErrNotExist.
func CheckDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("checking %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if uid, ok := fileOwner(fi); ok && uid != os.Geteuid() {
		return fmt.Errorf("%s belongs to user id %d, not to the user running this (id %d); run as its owner, or chown it", dir, uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s can be written by other users (mode %v), who could replace the keys in it; run: chmod 700 %s", dir, fi.Mode().Perm(), dir)
	}
	return nil
}
