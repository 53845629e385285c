package agentlog_test

import (
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/porthole/porthole/agent/agentlog"
	"github.com/porthole/porthole/internal/testdisk"
)

// TestEventLogDiskFull: with the disk already full to the last byte, the
// event log still takes the lines that say so (it keeps a reserve it gives
// up then), and fails, closed, only when that is spent.
func TestEventLogDiskFull(t *testing.T) {
	disk := testdisk.Tiny(t, "256k")
	l, err := agentlog.Open(filepath.Join(disk, agentlog.File))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	testdisk.Fill(t, disk)
	ev := agentlog.Event{Event: "recording_failed", Detail: strings.Repeat("d", 200)}
	if err := l.Write(ev); err != nil {
		t.Fatalf("the first line on a full disk: %v", err)
	}
	var err2 error
	for i := 0; i < 10000 && err2 == nil; i++ {
		err2 = l.Write(ev)
	}
	if !errors.Is(err2, syscall.ENOSPC) {
		t.Fatalf("writing on past the reserve: %v; want no space left", err2)
	}
}

// TestDiskFullNoTornLine: once the reserve is spent, a write the full disk
// cuts short must not leave half a line that the next event, written when
// there is room again, is glued to (and skipped with).
func TestDiskFullNoTornLine(t *testing.T) {
	dir := testdisk.Tiny(t, "256k")
	l, err := agentlog.Open(filepath.Join(dir, agentlog.File))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	free := testdisk.Fill(t, dir)
	pad := strings.Repeat("x", 300)
	for i, fails := 0, 0; i < 100000 && fails < 2; i++ {
		if l.Write(agentlog.Event{Time: time.Now(), Event: "filler", Detail: pad}) != nil {
			fails++
		}
	}
	free()
	if err := l.Write(agentlog.Event{Time: time.Now(), Event: "command_accepted", Session: "s1"}); err != nil {
		t.Fatal(err)
	}
	entries, skipped, err := agentlog.Read(dir, time.Time{})
	if err != nil || skipped != 0 || entries[len(entries)-1].Event != "command_accepted" {
		t.Fatalf("after the disk filled and had room again: %d skipped, last %q, %v; want the new event read and none skipped",
			skipped, entries[len(entries)-1].Event, err)
	}
}
