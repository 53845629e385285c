// Package atomicfile replaces files so that a reader, or the system after a
// crash, sees either the old file whole or the new one whole.
//
// WriteFile writes a temporary file in the destination's directory, named
// "."+base+".tmp-" and a random suffix, syncs it, renames it over the
// destination and syncs the directory, so that the rename itself survives
// a crash (on Windows, it moves the file with MoveFileEx's write-through
// flag instead, since a directory cannot be synced there). A crash before the rename can leave the temporary file behind;
// RemoveTemps deletes such leftovers.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// tempPattern is the os.CreateTemp pattern of the temporary files of base.
func tempPattern(base string) string { return "." + base + ".tmp-*" }

// syncFile is (*os.File).Sync; tests replace it to make a write fail.
var syncFile = (*os.File).Sync

// WriteFile replaces name with data: a reader sees the old file or the new
// one, never part of either, and once WriteFile returns nil the new file
// survives a crash. The file gets exactly perm (the umask does not apply,
// unlike os.WriteFile) and belongs to the calling process's user. The
// directory must exist. On error no temporary file is left, and name is as
// it was unless only the final sync of the directory failed.
func WriteFile(name string, data []byte, perm os.FileMode) (err error) {
	dir, base := filepath.Split(name)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, tempPattern(base))
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			err = fmt.Errorf("writing %s: %w", name, err)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := syncFile(f); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return replace(f.Name(), name, dir)
}

// RemoveTemps deletes the temporary files that WriteFile calls for name
// left behind when they were cut short by a crash. Call it only when no
// WriteFile of name can be running.
func RemoveTemps(name string) {
	dir, base := filepath.Split(name)
	tmps, _ := filepath.Glob(filepath.Join(dir, tempPattern(base)))
	for _, t := range tmps {
		os.Remove(t)
	}
}
