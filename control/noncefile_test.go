package control

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func remember(t *testing.T, s *FileNonceStore, nonce string, forgetAfter, now time.Time) bool {
	t.Helper()
	fresh, err := s.Remember(nonce, forgetAfter, now)
	if err != nil {
		t.Fatalf("Remember(%s): %v", nonce, err)
	}
	return fresh
}

func nonceN(i int) string { return fmt.Sprintf("nonce-%016d", i) }

func fileLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	return lines[:len(lines)-1] // the file ends with a newline
}

func reopen(t *testing.T, path string, now time.Time) *FileNonceStore {
	t.Helper()
	s, err := OpenFileNonceStore(path, now)
	if err != nil {
		t.Fatalf("OpenFileNonceStore: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestFileNonceStoreSurvivesRestart(t *testing.T) {
	s, path := openNonceFile(t)
	until := testNow.Add(MaxValidity)
	if !remember(t, s, nonceN(1), until, testNow) {
		t.Fatal("first Remember not fresh")
	}
	if remember(t, s, nonceN(1), until, testNow) {
		t.Fatal("second Remember fresh")
	}
	s.Close()

	s = reopen(t, path, testNow.Add(time.Minute))
	if remember(t, s, nonceN(1), until, testNow.Add(time.Minute)) {
		t.Error("Remember after reopen fresh; the replay window reopened")
	}
	if !remember(t, s, nonceN(2), until, testNow.Add(time.Minute)) {
		t.Error("new nonce after reopen not fresh")
	}
}

func TestFileNonceStoreOpenDropsExpired(t *testing.T) {
	s, path := openNonceFile(t)
	for i := range 10 {
		remember(t, s, nonceN(i), testNow.Add(time.Duration(i)*time.Minute), testNow)
	}
	s.Close()
	reopen(t, path, testNow.Add(5*time.Minute+time.Second))
	if got := fileLines(t, path); len(got) != 4 {
		t.Errorf("file after reopen = %q; want the 4 unexpired nonces", got)
	}
}

func TestFileNonceStoreMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nonces")
	if err := os.WriteFile(path, []byte(nonceN(1)+" 9999999999\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := reopen(t, path, testNow)
	remember(t, s, nonceN(2), testNow.Add(time.Minute), testNow)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v (%v); want 0600", fi.Mode().Perm(), err)
	}
}

// TestFileNonceStoreTornTail: half a line left by a crash mid-append must
// not swallow the next nonce (as "abcnonce-2 123" would).
func TestFileNonceStoreTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nonces")
	content := nonceN(1) + " 9999999999\n" + "nonce-00000000"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	s := reopen(t, path, testNow)
	remember(t, s, nonceN(2), testNow.Add(time.Minute), testNow)
	s.Close()
	s = reopen(t, path, testNow)
	for _, n := range []string{nonceN(1), nonceN(2)} {
		if remember(t, s, n, testNow.Add(time.Minute), testNow) {
			t.Errorf("%s fresh after the torn file was reopened", n)
		}
	}
}

func TestFileNonceStoreRejectsDamagedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nonces")
	if err := os.WriteFile(path, []byte(strings.Repeat("x", 4096)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := OpenFileNonceStore(path, testNow); err == nil {
		s.Close()
		t.Fatal("OpenFileNonceStore accepted a line no agent writes")
	}
}

// TestFileNonceStoreBounded: expired lines are rewritten away while the
// agent runs, and a store full of live nonces refuses more rather than
// forgetting any.
func TestFileNonceStoreBounded(t *testing.T) {
	s, path := openNonceFile(t)
	s.max, s.compactAt = 8, 16
	now := testNow
	for i := range 200 {
		now = now.Add(time.Second)
		remember(t, s, nonceN(i), now.Add(2*time.Second), now)
	}
	if n := len(fileLines(t, path)); n > 2*s.max+s.compactAt {
		t.Errorf("file holds %d lines; want at most %d", n, 2*s.max+s.compactAt)
	}
	if remember(t, s, nonceN(199), now, now) {
		t.Error("latest nonce forgotten by compaction")
	}

	for i := 1000; ; i++ {
		_, err := s.Remember(nonceN(i), now.Add(time.Hour), now)
		if err != nil {
			if i-1000 > s.max {
				t.Errorf("store took %d live nonces; want at most %d", i-1000, s.max)
			}
			break
		}
	}
	if remember(t, s, nonceN(1000), now, now) {
		t.Error("a full store forgot a live nonce")
	}
}

func TestFileNonceStoreClosed(t *testing.T) {
	s, _ := openNonceFile(t)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Remember(nonceN(1), testNow, testNow); !errors.Is(err, ErrClosed) {
		t.Errorf("Remember after Close = %v; want ErrClosed", err)
	}
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v; want ErrClosed", err)
	}
}

func TestFileNonceStoreRefusesBadNonce(t *testing.T) {
	s, _ := openNonceFile(t)
	for _, n := range []string{"", "short", "has space 0123456789", "new\nline-0123456789", strings.Repeat("a", 65)} {
		if _, err := s.Remember(n, testNow, testNow); err == nil {
			t.Errorf("Remember(%q) accepted", n)
		}
	}
}

func TestOpenFileNonceStoreMissingDir(t *testing.T) {
	if s, err := OpenFileNonceStore(filepath.Join(t.TempDir(), "no", "nonces"), testNow); err == nil {
		s.Close()
		t.Fatal("OpenFileNonceStore in a missing dir succeeded")
	}
}

// TestFileNonceStoreRecoversFromFailedAppend: after an append that may have
// written half a line, the next Remember rewrites the file first, so the
// half line cannot glue itself to the next nonce.
func TestFileNonceStoreRecoversFromFailedAppend(t *testing.T) {
	s, path := openNonceFile(t)
	until := testNow.Add(time.Minute)
	remember(t, s, nonceN(1), until, testNow)
	s.f.WriteString("nonce-0000") // the half line a failed append left
	s.torn = true
	remember(t, s, nonceN(2), until, testNow)
	s.Close()
	if got := fileLines(t, path); len(got) != 2 {
		t.Errorf("file = %q; want the two nonces only", got)
	}
	s = reopen(t, path, testNow)
	for _, n := range []string{nonceN(1), nonceN(2)} {
		if remember(t, s, n, until, testNow) {
			t.Errorf("%s fresh after recovery", n)
		}
	}
}
