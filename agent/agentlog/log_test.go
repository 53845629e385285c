package agentlog_test

import (
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

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
