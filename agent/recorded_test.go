package agent

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole/agent/agentlog"
	"github.com/porthole/porthole/agent/agentrecord"
	"github.com/porthole/porthole/agent/internal/agenttest"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/sessioncert"
)

// stubSessions is a SessionHandler at the edge of what this test runs: it
// records closes and ends and reports tunnel_down like Tunnels does.
type stubSessions struct {
	mu      sync.Mutex
	closed  []string
	ended   map[string]control.CloseReason
	reports map[string]Reporter
}

func (s *stubSessions) Open(_ context.Context, cmd *control.Command, report Reporter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reports == nil {
		s.reports = map[string]Reporter{}
	}
	s.reports[cmd.Session] = report
}

func (s *stubSessions) Close(_ context.Context, cmd *control.Command, report Reporter) {
	s.mu.Lock()
	s.closed = append(s.closed, cmd.Session)
	s.mu.Unlock()
	report(control.TunnelDown(cmd.Session, control.CloseOnCommand))
}

func (s *stubSessions) End(session string, reason control.CloseReason) bool {
	s.mu.Lock()
	report := s.reports[session]
	if s.ended == nil {
		s.ended = map[string]control.CloseReason{}
	}
	s.ended[session] = reason
	s.mu.Unlock()
	if report != nil {
		report(control.TunnelDown(session, reason))
	}
	return report != nil
}

// TestRecordSessions: the session's end reason reaches the recording, and
// a session that cannot be recorded is closed.
func TestRecordSessions(t *testing.T) {
	dir := t.TempDir()
	r, err := agentrecord.Open(agentrecord.Options{StateDir: dir, Log: agenttest.OpenLog(t, dir), Device: "dev1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	stub := &stubSessions{}
	h := recordSessions(r, stub)
	var reported []control.State
	report := func(s control.State) { reported = append(reported, s) }
	ctx := context.Background()
	now := time.Now()
	ann := sessioncert.Claims{Session: "ses_1", Fleet: "acme", Device: "dev1", DeviceID: "dev_1",
		User: "ann@example.com", ValidAfter: now.Add(-time.Minute), ValidBefore: now.Add(time.Hour)}

	h.Open(ctx, &control.Command{Type: control.TypeOpen, Session: "ses_1"}, report)
	r.Connected("ses_1", ann)
	// Tunnels reports through the reporter Open was given.
	stub.reports["ses_1"](control.TunnelDown("ses_1", control.CloseMaxDuration))
	if s, err := agentrecord.FindSession(dir, "ses_1"); err != nil || s.Reason != string(control.CloseMaxDuration) {
		t.Errorf("recorded %+v, %v; want reason %q", s, err, control.CloseMaxDuration)
	}
	if len(reported) != 1 || reported[0].Reason != string(control.CloseMaxDuration) {
		t.Errorf("reported %+v; want the tunnel_down passed on", reported)
	}

	// An id that cannot name a directory cannot be recorded: ended by
	// the device as not_recorded, which the server must not read as the
	// engineer's close.
	h.Open(ctx, &control.Command{Type: control.TypeOpen, Session: ".."}, report)
	r.Connected("..", ann)
	if stub.ended[".."] != control.CloseNotRecorded || len(stub.closed) != 0 {
		t.Errorf("ended %v, closed %v; want the unrecordable session ended as not_recorded", stub.ended, stub.closed)
	}
	if last := reported[len(reported)-1]; last.Session != ".." || last.Reason != string(control.CloseNotRecorded) {
		t.Errorf("reported %+v; want tunnel_down .. not_recorded", last)
	}
	entries, _, err := agentlog.Read(dir, time.Time{})
	if err != nil || len(entries) == 0 || entries[len(entries)-1].Event != "recording_failed" {
		t.Errorf("agent.log: %+v, %v; want it to end with recording_failed", entries, err)
	}
	if _, err := os.Stat(filepath.Join(dir, agentrecord.SessionsDir, "..", agentrecord.SessionMetaFile)); err == nil {
		t.Error("a recording was written outside the sessions directory")
	}
}
