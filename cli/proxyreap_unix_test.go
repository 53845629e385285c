//go:build unix

package cli

import (
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/porthole/porthole/apitype"
)

// TestProxyReaperCommand runs the hidden command for a process that has
// ended: it closes the session at once.
func TestProxyReaperCommand(t *testing.T) {
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"DELETE /api/v1/sessions/ses_1": answer(apitype.Session{ID: "ses_1", State: apitype.SessionClosed}),
	})
	done := exec.Command("true")
	if err := done.Run(); err != nil {
		t.Skip("no true(1) to make an ended process with:", err)
	}
	start := time.Now()
	mustRun(t, f.loggedIn(t), "", reaperCommand, strconv.Itoa(done.ProcessState.Pid()), "ses_1")
	if got := f.seen(); !slices.Contains(got, "DELETE /api/v1/sessions/ses_1") {
		t.Errorf("proxy-reaper made %v; want it to close ses_1", got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("proxy-reaper took %v for a process that had ended", d)
	}
	if r := runCLI(t, f.loggedIn(t), "", reaperCommand, "notapid", "ses_1"); r.err == nil {
		t.Error("proxy-reaper took a PID that is not a number")
	}
}
