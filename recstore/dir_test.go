package recstore

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/porthole/porthole/internal/testdisk"
)

// testStore runs what every Store must do against s; the object-storage
// backend will run it too.
func testStore(t *testing.T, s Store) {
	ctx := context.Background()
	k := Key{Fleet: "flt_1", Session: "ses_1"}
	if n, err := s.Size(ctx, k, "events.jsonl"); n != 0 || err != nil {
		t.Fatalf("Size of a missing file = %d, %v", n, err)
	}
	if _, err := s.Open(ctx, k, "events.jsonl"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Open of a missing file: %v; want ErrNotExist", err)
	}
	for _, chunk := range []struct {
		off  int64
		data string
	}{{0, "one\n"}, {4, "two\n"}} {
		if err := s.Append(ctx, k, "events.jsonl", chunk.off, []byte(chunk.data)); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := s.Size(ctx, k, "events.jsonl"); n != 8 {
		t.Fatalf("Size = %d; want 8", n)
	}
	buf := make([]byte, 3)
	if err := s.ReadAt(ctx, k, "events.jsonl", buf, 4); err != nil || string(buf) != "two" {
		t.Fatalf("ReadAt = %q, %v", buf, err)
	}
	for _, meta := range []string{`{"a":1}`, `{}`} {
		if err := s.Replace(ctx, k, "meta.json", []byte(meta)); err != nil {
			t.Fatal(err)
		}
	}
	f, err := s.Open(ctx, k, "meta.json")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if string(got) != "{}" || f.ModTime().IsZero() {
		t.Fatalf("meta.json = %q (modified %v)", got, f.ModTime())
	}
	// Names and keys that could reach outside a recording.
	for _, bad := range []struct {
		k    Key
		name string
	}{{Key{"..", "ses_1"}, "x"}, {Key{"flt_1", "a/b"}, "x"}, {k, "../x"}, {k, ".."}, {k, ""}, {Key{"", "s"}, "x"}} {
		if err := s.Append(ctx, bad.k, bad.name, 0, []byte("x")); err == nil {
			t.Errorf("Append to %+v %q was taken", bad.k, bad.name)
		}
	}
	if err := s.Delete(ctx, k); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Size(ctx, k, "events.jsonl"); n != 0 {
		t.Fatalf("Size after Delete = %d", n)
	}

	// The lock lets one upload at a time through per session.
	var mu sync.Mutex
	in := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			unlock, err := s.Lock(ctx, k)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			if in++; in > 1 {
				t.Error("two holders of one session's lock")
			}
			mu.Unlock()
			mu.Lock()
			in--
			mu.Unlock()
			unlock()
		})
	}
	wg.Wait()
}

func TestDir(t *testing.T) {
	testStore(t, &Dir{Root: t.TempDir()})
}

// TestDirFull: an append that finds the disk full leaves the file as it
// was, with no torn chunk.
func TestDirFull(t *testing.T) {
	root := testdisk.Tiny(t, "256k")
	d := &Dir{Root: root}
	ctx := context.Background()
	k := Key{Fleet: "flt_1", Session: "ses_1"}
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
