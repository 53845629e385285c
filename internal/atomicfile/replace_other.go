//go:build !windows

package atomicfile

import "os"

// replace renames tmp over name and syncs their directory dir, so that the
// rename survives a crash.
func replace(tmp, name, dir string) error {
	if err := os.Rename(tmp, name); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
