// Package recstoretest checks a recstore.Store against what every Store
// must do, so that the local directory and the object store behave alike:
// files that grow by appends and read back whole or in ranges, meta.json
// replaced whole, keys and names that could reach outside a recording
// refused, a session's files deleted together and no other's, and a lock
// that lets one upload at a time through.
package recstoretest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole/recstore"
)

// Run checks s. Its subtests run in parallel, each on sessions of its own
// in a fleet of its own, so s may hold other recordings.
func Run(t *testing.T, s recstore.Store) {
	for _, tt := range []struct {
		name string
		fn   func(*testing.T, recstore.Store)
	}{
		{"Files", testFiles},
		{"Refused", testRefused},
		{"Ranges", testRanges},
		{"Replace", testReplace},
		{"Delete", testDelete},
		{"Lock", testLock},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, s)
		})
	}
}

// NewKey is a key no other test uses: a fleet and session ID of their own.
func NewKey() recstore.Key {
	return recstore.Key{Fleet: "flt_" + randomHex(), Session: "ses_" + randomHex()}
}

func randomHex() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// testFiles: a file grows by appends and reads back; meta.json is
// replaced whole; an empty append makes no file.
func testFiles(t *testing.T, s recstore.Store) {
	ctx := t.Context()
	k := NewKey()
	if n, err := s.Size(ctx, k, "events.jsonl"); n != 0 || err != nil {
		t.Fatalf("Size of a missing file = %d, %v", n, err)
	}
	if _, err := s.Open(ctx, k, "events.jsonl"); !errors.Is(err, recstore.ErrNotExist) {
		t.Fatalf("Open of a missing file: %v; want ErrNotExist", err)
	}
	if err := s.Append(ctx, k, "events.jsonl", 0, nil); err != nil {
		t.Fatalf("an empty Append: %v", err)
	}
	if _, err := s.Open(ctx, k, "events.jsonl"); !errors.Is(err, recstore.ErrNotExist) {
		t.Fatalf("Open after an empty Append: %v; want ErrNotExist", err)
	}
	for _, chunk := range []struct {
		off  int64
		data string
	}{{0, "one\n"}, {4, "two\n"}} {
		if err := s.Append(ctx, k, "events.jsonl", chunk.off, []byte(chunk.data)); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.Size(ctx, k, "events.jsonl"); n != 8 || err != nil {
		t.Fatalf("Size = %d, %v; want 8", n, err)
	}
	buf := make([]byte, 3)
	if err := s.ReadAt(ctx, k, "events.jsonl", buf, 4); err != nil || string(buf) != "two" {
		t.Fatalf("ReadAt = %q, %v", buf, err)
	}
	if err := s.ReadAt(ctx, k, "events.jsonl", make([]byte, 4), 6); err == nil {
		t.Error("ReadAt past the end succeeded")
	}
	// A name that begins with another is another file.
	if err := s.Append(ctx, k, "events.jsonl.1", 0, []byte("other\n")); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, k, "events.jsonl"); got != "one\ntwo\n" {
		t.Fatalf("events.jsonl = %q after another file was written", got)
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
	if string(got) != "{}" || time.Since(f.ModTime()) > time.Hour || time.Until(f.ModTime()) > time.Hour {
		t.Fatalf("meta.json = %q (modified %v); want {} modified now", got, f.ModTime())
	}
	if n, err := s.Size(ctx, k, "meta.json"); n != 2 || err != nil {
		t.Fatalf("Size of meta.json = %d, %v; want 2", n, err)
	}
}

// testRefused: keys and names that could reach outside a recording are
// refused by every method.
func testRefused(t *testing.T, s recstore.Store) {
	ctx := t.Context()
	k := NewKey()
	long := string(bytes.Repeat([]byte("a"), 65))
	for _, bad := range []struct {
		k    recstore.Key
		name string
	}{
		{recstore.Key{Fleet: "..", Session: "ses_1"}, "x"}, {recstore.Key{Fleet: "flt_1", Session: "a/b"}, "x"},
		{recstore.Key{Fleet: "", Session: "s"}, "x"}, {recstore.Key{Fleet: "f", Session: long}, "x"},
		{recstore.Key{Fleet: "f.1", Session: "s"}, "x"}, {recstore.Key{Fleet: "f", Session: "s\x00"}, "x"},
		{k, "../x"}, {k, ".."}, {k, "."}, {k, ""}, {k, `a\b`}, {k, "a/b"},
	} {
		if err := s.Append(ctx, bad.k, bad.name, 0, []byte("x")); err == nil {
			t.Errorf("Append to %+v %q was taken", bad.k, bad.name)
		}
		if err := s.Replace(ctx, bad.k, bad.name, []byte("x")); err == nil {
			t.Errorf("Replace of %+v %q was taken", bad.k, bad.name)
		}
		if _, err := s.Size(ctx, bad.k, bad.name); err == nil {
			t.Errorf("Size of %+v %q answered", bad.k, bad.name)
		}
		if err := s.ReadAt(ctx, bad.k, bad.name, make([]byte, 1), 0); err == nil {
			t.Errorf("ReadAt of %+v %q answered", bad.k, bad.name)
		}
		if f, err := s.Open(ctx, bad.k, bad.name); err == nil || errors.Is(err, recstore.ErrNotExist) {
			if f != nil {
				f.Close()
			}
			t.Errorf("Open of %+v %q: %v; want a refusal", bad.k, bad.name, err)
		}
		if bad.k != k {
			if err := s.Delete(ctx, bad.k); err == nil {
				t.Errorf("Delete of %+v was taken", bad.k)
			}
			if unlock, err := s.Lock(ctx, bad.k); err == nil {
				unlock()
				t.Errorf("Lock of %+v was taken", bad.k)
			}
		}
	}
}

// testRanges: a file of many appends reads back whole, with Seek, with
// ReadAt across the appends' seams, and as an HTTP answer to a Range.
func testRanges(t *testing.T, s recstore.Store) {
	ctx := t.Context()
	k := NewKey()
	var want []byte
	for i, n := range []int{1, 100, 4096, 3, 70000, 1, 513} {
		chunk := bytes.Repeat([]byte{byte('a' + i)}, n)
		chunk[0] = byte('0' + i)
		if err := s.Append(ctx, k, "0001-pty.cast", int64(len(want)), chunk); err != nil {
			t.Fatal(err)
		}
		want = append(want, chunk...)
	}
	size := int64(len(want))
	if n, err := s.Size(ctx, k, "0001-pty.cast"); n != size || err != nil {
		t.Fatalf("Size = %d, %v; want %d", n, err, size)
	}
	if got := readAll(t, s, k, "0001-pty.cast"); got != string(want) {
		t.Fatalf("the file reads back as %d bytes, not the %d appended", len(got), size)
	}
	for _, r := range []struct{ off, n int64 }{{0, 1}, {0, 2}, {99, 4}, {101, 4096}, {4190, 10}, {4199, 70002}, {size - 1, 1}, {50, size - 50}} {
		buf := make([]byte, r.n)
		if err := s.ReadAt(ctx, k, "0001-pty.cast", buf, r.off); err != nil || !bytes.Equal(buf, want[r.off:r.off+r.n]) {
			t.Errorf("ReadAt(%d bytes at %d): %v, or other bytes", r.n, r.off, err)
		}
	}

	f, err := s.Open(ctx, k, "0001-pty.cast")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if end, err := f.Seek(0, io.SeekEnd); end != size || err != nil {
		t.Fatalf("Seek to the end = %d, %v; want %d", end, err, size)
	}
	if n, err := f.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("Read at the end = %d, %v; want 0, EOF", n, err)
	}
	for _, r := range []struct {
		off    int64
		whence int
		pos    int64
		n      int
	}{{4190, io.SeekStart, 4190, 20}, {-30, io.SeekCurrent, 4180, 100}, {-514, io.SeekEnd, size - 514, 514}, {3, io.SeekStart, 3, 100000}} {
		pos, err := f.Seek(r.off, r.whence)
		if pos != r.pos || err != nil {
			t.Fatalf("Seek(%d, %d) = %d, %v; want %d", r.off, r.whence, pos, err, r.pos)
		}
		buf := make([]byte, r.n)
		n, err := io.ReadFull(f, buf)
		if wantN := min(int64(r.n), size-pos); int64(n) != wantN || !bytes.Equal(buf[:n], want[pos:pos+wantN]) || err != nil && int64(n) == int64(r.n) {
			t.Errorf("%d bytes at %d: read %d, %v, or other bytes", r.n, pos, n, err)
		}
	}
	if _, err := f.Seek(-1, io.SeekStart); err == nil {
		t.Error("Seek before the start succeeded")
	}

	// http.ServeContent, as the API answers with it.
	f2, err := s.Open(ctx, k, "0001-pty.cast")
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	req := httptest.NewRequest("GET", "/x", nil)
	req.Header.Set("Range", "bytes=95-4200")
	w := httptest.NewRecorder()
	http.ServeContent(w, req, "0001-pty.cast", f2.ModTime(), f2)
	if w.Code != http.StatusPartialContent || !bytes.Equal(w.Body.Bytes(), want[95:4201]) {
		t.Errorf("a Range answer: %d with %d bytes; want 206 with bytes 95 to 4200", w.Code, w.Body.Len())
	}
}

// testReplace: replacing a file that was appended to leaves the new bytes
// only, and an append after it goes on from there.
func testReplace(t *testing.T, s recstore.Store) {
	ctx := t.Context()
	k := NewKey()
	for _, c := range []struct {
		off  int64
		data string
	}{{0, "first\n"}, {6, "second\n"}, {13, "third\n"}} {
		if err := s.Append(ctx, k, "meta.json", c.off, []byte(c.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Replace(ctx, k, "meta.json", []byte(`{"new":1}`)); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, k, "meta.json"); got != `{"new":1}` {
		t.Fatalf("after Replace: %q", got)
	}
	if err := s.Append(ctx, k, "meta.json", 9, []byte("\n")); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, k, "meta.json"); got != "{\"new\":1}\n" {
		t.Fatalf("after Replace and Append: %q", got)
	}
}

// testDelete: Delete removes every file of one session, and nothing of
// another, even one whose ID begins with the deleted one's.
func testDelete(t *testing.T, s recstore.Store) {
	ctx := t.Context()
	k := NewKey()
	near := recstore.Key{Fleet: k.Fleet, Session: k.Session + "0"}
	for _, key := range []recstore.Key{k, near} {
		for _, name := range []string{"meta.json", "events.jsonl", "0001-exec.cast"} {
			if err := s.Append(ctx, key, name, 0, []byte(name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Delete(ctx, k); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"meta.json", "events.jsonl", "0001-exec.cast"} {
		if n, err := s.Size(ctx, k, name); n != 0 || err != nil {
			t.Errorf("Size of %s after Delete = %d, %v", name, n, err)
		}
		if _, err := s.Open(ctx, k, name); !errors.Is(err, recstore.ErrNotExist) {
			t.Errorf("Open of %s after Delete: %v; want ErrNotExist", name, err)
		}
		if got := readAll(t, s, near, name); got != name {
			t.Errorf("%s of the other session = %q after Delete", name, got)
		}
	}
	if err := s.Delete(ctx, k); err != nil {
		t.Errorf("deleting again: %v", err)
	}
	if err := s.Append(ctx, k, "events.jsonl", 0, []byte("again\n")); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, k, "events.jsonl"); got != "again\n" {
		t.Errorf("a file written again after Delete = %q", got)
	}
}

// testLock: the lock lets one upload at a time through per session, and
// does not hold up another session's; a waiter gives up when its context
// ends.
func testLock(t *testing.T, s recstore.Store) {
	ctx := t.Context()
	k := NewKey()
	var mu sync.Mutex
	in := 0
	var wg sync.WaitGroup
	for range 6 {
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
			time.Sleep(time.Millisecond)
			mu.Lock()
			in--
			mu.Unlock()
			unlock()
		})
	}
	wg.Wait()

	unlock, err := s.Lock(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Lock(ctx, recstore.Key{Fleet: k.Fleet, Session: k.Session + "x"})
	if err != nil {
		t.Fatalf("another session's lock: %v", err)
	}
	other()
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if u, err := s.Lock(short, k); err == nil {
		u()
		t.Fatal("a second Lock of a held key returned")
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a second Lock gave up with %v; want context.DeadlineExceeded in its chain", err)
	}
	unlock()
	again, err := s.Lock(ctx, k)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	again()
}

// readAll is a file's bytes, read through Open.
func readAll(t *testing.T, s recstore.Store, k recstore.Key, name string) string {
	t.Helper()
	f, err := s.Open(t.Context(), k, name)
	if err != nil {
		t.Fatalf("Open %s: %v", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("reading %s: %v", name, err)
	}
	return string(b)
}
