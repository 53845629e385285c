package agentrecord

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/porthole/porthole/agent/agentlog"
	"github.com/porthole/porthole/internal/testdisk"
	"golang.org/x/crypto/ssh"
)

// TestRecordDiskFull: the device's disk fills while an engineer's shell
// prints. The recording fails closed: the printing stops, nothing new
// starts, the engineer reads why and the owner's log says it.
func TestRecordDiskFull(t *testing.T) {
	disk := testdisk.Tiny(t, "512k")
	rec := openRecordings(t, Config{}, func(o *Options) { o.StateDir = disk })
	d := newSSHDevice(t, rec)
	c := d.login(t)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	// On a terminal (a command without one may finish its output, counted
	// and not kept, as past a cap; the agent then ends the session).
	if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	const flood = 3_000_000
	out, _ := s.CombinedOutput("head -c " + strconv.Itoa(flood) + " /dev/zero | tr '\\0' x; echo done")
	if len(out) >= flood {
		t.Errorf("the engineer got all %d bytes printed after the disk was full", len(out))
	}
	errOut, err := refusedCommand(t, c, "echo after")
	if err == nil || !strings.Contains(errOut, "this session's recording failed (the device's disk is full)") {
		t.Errorf("a command after the disk filled: %q, %v; want it refused, saying why", errOut, err)
	}
	entries := logEvents(t, disk)
	if i := slices.IndexFunc(entries, func(e agentlog.Entry) bool { return e.Event == eventRecordingFailed }); i < 0 ||
		!strings.Contains(entries[i].Fields["detail"].(string), "no space left on device") {
		t.Errorf("agent.log: %s; want recording_failed saying the disk is full", logKinds(entries))
	}
}
