package recstore_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/porthole/porthole/internal/testdisk"
	"github.com/porthole/porthole/recstore"
	"github.com/porthole/porthole/recstore/recstoretest"
)

func TestDir(t *testing.T) {
	t.Parallel()
	recstoretest.Run(t, &recstore.Dir{Root: t.TempDir()})
}

// TestDirFull: an append that finds the disk full leaves the file as it
// was, with no torn chunk.
func TestDirFull(t *testing.T) {
	root := testdisk.Tiny(t, "256k")
	d := &recstore.Dir{Root: root}
	ctx := context.Background()
	k := recstore.Key{Fleet: "flt_1", Session: "ses_1"}
	if err := d.Append(ctx, k, "a.cast", 0, []byte("kept\n")); err != nil {
		t.Fatal(err)
	}
	free := testdisk.Fill(t, root)
	if err := d.Append(ctx, k, "a.cast", 5, make([]byte, 64<<10)); err == nil {
		t.Fatal("an append to a full disk succeeded")
	}
	free()
	if got, err := os.ReadFile(filepath.Join(root, "flt_1", "ses_1", "a.cast")); err != nil || string(got) != "kept\n" {
		t.Fatalf("after the failed append: %q, %v", got, err)
	}
}
