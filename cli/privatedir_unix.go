//go:build unix

package cli

import "os"

// makePrivateDir makes dir (and its parents) if it is missing and leaves
// it readable by its owner only: mode 0700, also if it was looser.
func makePrivateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}
