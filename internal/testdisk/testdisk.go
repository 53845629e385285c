// Package testdisk gives tests a disk that fills up: a small tmpfs of
// their own, and a way to fill it to the last byte. Mounting needs root;
// without it the test is skipped, saying so.
package testdisk

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Tiny mounts a tmpfs of size (as mount takes it: "512k", "2m") on a
// directory of the test's own, unmounted when the test ends.
func Tiny(t testing.TB, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root, to mount a small tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// Fill writes a file into dir until its disk has no byte left, and
// returns a function that removes it again.
func Fill(t testing.TB, dir string) (free func()) {
	t.Helper()
	name := filepath.Join(dir, "testdisk-filler")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for n := len(buf); n > 0; {
		if _, err := f.Write(buf[:n]); err != nil {
			n /= 2 // the last blocks, then the last bytes
		}
	}
	return func() {
		if err := os.Remove(name); err != nil {
			t.Error(err)
		}
	}
}
