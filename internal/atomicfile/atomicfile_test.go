package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// names lists dir's entries.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.json")
	for _, tt := range []struct {
		data string
		perm os.FileMode
	}{
		{"one", 0o640},
		{"two, longer", 0o600},
		{"", 0o644},
	} {
		if err := WriteFile(path, []byte(tt.data), tt.perm); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil || string(data) != tt.data {
			t.Errorf("read %q, %v; want %q", data, err, tt.data)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != tt.perm {
			t.Errorf("mode = %v; want %v", fi.Mode().Perm(), tt.perm)
		}
	}
	if got := names(t, dir); !slices.Equal(got, []string{"f.json"}) {
		t.Errorf("the directory holds %v; want only f.json (no temporary files)", got)
	}
}

// TestWriteFileUmask: the file gets the mode asked for, whatever the
// umask (a group-readable file stays group-readable).
func TestWriteFileUmask(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared")
	if err := WriteFile(path, []byte("x"), 0o664); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o664 {
		t.Errorf("mode = %v; want 0664", fi.Mode().Perm())
	}
}

// TestWriteFileRelative: a bare file name is written in the current
// directory.
func TestWriteFileRelative(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := WriteFile("f", []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile("f"); err != nil || string(data) != "x" {
		t.Errorf("read %q, %v; want x", data, err)
	}
}

// TestWriteFileFails: a write that fails at any step leaves the old file
// as it was and no temporary file behind.
func TestWriteFileFails(t *testing.T) {
	old := []byte("the old content")
	setup := func(t *testing.T) (dir, path string) {
		dir = t.TempDir()
		path = filepath.Join(dir, "f")
		if err := os.WriteFile(path, old, 0o600); err != nil {
			t.Fatal(err)
		}
		return dir, path
	}
	check := func(t *testing.T, dir, path string, err error) {
		t.Helper()
		if err == nil {
			t.Fatal("WriteFile succeeded; want an error")
		}
		if data, _ := os.ReadFile(path); string(data) != string(old) {
			t.Errorf("the old file holds %q after a failed write; want %q", data, old)
		}
		if got := names(t, dir); !slices.Equal(got, []string{"f"}) {
			t.Errorf("the directory holds %v after a failed write; want only f", got)
		}
	}

	t.Run("sync", func(t *testing.T) {
		dir, path := setup(t)
		errDisk := errors.New("disk on fire")
		syncFile = func(*os.File) error { return errDisk }
		t.Cleanup(func() { syncFile = (*os.File).Sync })
		err := WriteFile(path, []byte("the new content"), 0o600)
		check(t, dir, path, err)
		if !errors.Is(err, errDisk) {
			t.Errorf("error %v; want it to wrap the sync's", err)
		}
	})
	t.Run("rename", func(t *testing.T) {
		// A directory where the file should go: the rename fails,
		// even for root.
		dir := t.TempDir()
		path := filepath.Join(dir, "f")
		if err := os.Mkdir(path, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(path, "inside"), old, 0o600); err != nil {
			t.Fatal(err)
		}
		err := WriteFile(path, []byte("the new content"), 0o600)
		if err == nil {
			t.Fatal("WriteFile over a directory succeeded; want an error")
		}
		if data, _ := os.ReadFile(filepath.Join(path, "inside")); string(data) != string(old) {
			t.Errorf("the directory's file holds %q; want %q", data, old)
		}
		if got := names(t, dir); !slices.Equal(got, []string{"f"}) {
			t.Errorf("the directory holds %v after a failed write; want only f", got)
		}
	})
	t.Run("missing directory", func(t *testing.T) {
		dir, _ := setup(t)
		if err := WriteFile(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600); err == nil {
			t.Error("writing into a missing directory succeeded")
		}
		if got := names(t, dir); !slices.Equal(got, []string{"f"}) {
			t.Errorf("the directory holds %v; want only f", got)
		}
	})
}

func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "meta.json")
	if err := WriteFile(path, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	// What a crash between creating the temporary file and renaming it
	// leaves, for this file and for another.
	f, err := os.CreateTemp(dir, tempPattern("meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.WriteFile(filepath.Join(dir, ".other.json.tmp-456"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	RemoveTemps(path)
	if got := names(t, dir); !slices.Equal(got, []string{".other.json.tmp-456", "meta.json"}) {
		t.Errorf("after RemoveTemps the directory holds %v; want meta.json and the other file's leftover", got)
	}
}
