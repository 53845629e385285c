package agentconsent

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/agent/agentlog"
	"github.com/porthole/porthole/agent/internal/agenttest"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/internal/testwait"
)

func TestStricter(t *testing.T) {
	for _, tt := range []struct {
		owner Mode
		floor string
		want  Mode
	}{
		{Auto, "", Auto},
		{Auto, "approve", Approve},
		{Auto, "manual", Manual},
		{Approve, "", Approve},
		{Approve, "approve", Approve},
		{Approve, "manual", Manual},
		{Manual, "", Manual},
		{Manual, "approve", Manual}, // the owner's stricter mode wins
		{Manual, "manual", Manual},
		{Approve, "auto", Approve}, // a floor never loosens
		{Auto, "strict", Manual},   // a floor this agent does not know: the strictest
	} {
		if got := Stricter(tt.owner, tt.floor); got != tt.want {
			t.Errorf("Stricter(%s, %q) = %s; want %s", tt.owner, tt.floor, got, tt.want)
		}
	}
}

// floorCmd is an open command carrying a fleet's consent floor.
func floorCmd(session, floor string) *control.Command {
	cmd := agenttest.OpenCmd(session)
	cmd.Policy = &control.Policy{ConsentFloor: floor, RequestedBy: "alice@example.com"}
	return cmd
}

// logDetails are the owner's log's lines of event, as "session: detail".
func logDetails(t *testing.T, dir, event string) []string {
	t.Helper()
	entries, _, err := agentlog.Read(dir, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.Event == event {
			d, _ := e.Fields["detail"].(string)
			s, _ := e.Fields["session"].(string)
			out = append(out, s+": "+d)
		}
	}
	return out
}

// TestFloorRaisesAuto: a fleet's floor of approve makes a device whose
// owner chose auto ask its owner, and the owner's log says why.
func TestFloorRaisesAuto(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c, _ := newTestConsent(t, Auto, func(o *Options) { o.Log = agenttest.OpenLog(t, dir) })
	var st agenttest.States
	done := make(chan control.CloseReason, 1)
	go func() {
		_, reason := c.Admit(t.Context(), floorCmd("s1", control.FloorApprove), st.Report)
		done <- reason
	}()
	testwait.For(t, 5*time.Second, "the session to wait for the owner, and say so", func() bool {
		got := st.List()
		return len(c.Status().Pending) == 1 && len(got) == 1 && got[0] == control.State{Kind: control.StateWaitingConsent, Session: "s1"}
	})
	if got, err := c.Answer("s1", true); err != nil || got != "s1" {
		t.Fatalf("Answer = %q, %v", got, err)
	}
	if reason := <-done; reason != "" {
		t.Fatalf("approved, yet refused: %s", reason)
	}
	// The line saying who asks (from the server, on its own goroutine)
	// may come before or after the one saying why the owner is asked.
	asked := logDetails(t, dir, eventApprovalAsked)
	if !slices.ContainsFunc(asked, func(l string) bool {
		return strings.Contains(l, "fleet policy: consent floor approve (stricter than the owner's auto); requested by alice@example.com")
	}) {
		t.Errorf("approval_asked lines %q; want the floor and why", asked)
	}

	// Without a floor the owner's auto applies, as before.
	if g, reason := c.Admit(t.Context(), agenttest.OpenCmd("s2"), func(control.State) {}); g == nil || reason != "" {
		t.Errorf("auto without a floor = %v, %q", g, reason)
	}
}

// TestFloorManual: a floor of manual needs the owner's support window and
// code on a device whose owner chose auto or approve; an owner's manual
// stays manual under a floor of approve (the owner's stricter mode wins).
func TestFloorManual(t *testing.T) {
	t.Parallel()
	for _, owner := range []Mode{Auto, Approve, Manual} {
		t.Run(string(owner), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			c, srv := newTestConsent(t, owner, func(o *Options) { o.Log = agenttest.OpenLog(t, dir) })
			floor := control.FloorManual
			if owner == Manual {
				floor = control.FloorApprove
			}
			var st agenttest.States
			if g, reason := c.Admit(t.Context(), floorCmd("s1", floor), st.Report); g != nil || reason != control.CloseNoConsent {
				t.Fatalf("admit without a window = %v, %q; want refused, no_consent", g, reason)
			}
			if len(st.List()) != 0 || len(srv.posted) != 0 {
				t.Errorf("the owner was asked to approve (%v, %v): manual needs the window, not an answer", st.List(), srv.posted)
			}
			refused := logDetails(t, dir, eventSessionRefused)
			if len(refused) != 1 || !strings.Contains(refused[0], "consent floor "+floor) {
				t.Errorf("session_refused lines %q", refused)
			}
			if _, _, err := c.Request("help", time.Hour); err != nil {
				t.Fatal(err)
			}
			g, reason := c.Admit(t.Context(), floorCmd("s2", floor), st.Report)
			if g == nil || !g.InWindow() || reason != "" {
				t.Fatalf("admit in a window = %v, %q; want a grant that needs the code", g, reason)
			}
		})
	}
}

// TestPolicyNamesBoth: the owner's log names the engineer who asked and
// the one who approved a four-eyes session, and the ports the fleet
// allows.
func TestPolicyNamesBoth(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c, _ := newTestConsent(t, Auto, func(o *Options) { o.Log = agenttest.OpenLog(t, dir) })
	cmd := agenttest.OpenCmd("s1")
	cmd.Policy = &control.Policy{Ports: []int{22, 8080}, RequestedBy: "alice@example.com", ApprovedBy: "bob@example.com"}
	if g, reason := c.Admit(t.Context(), cmd, func(control.State) {}); g == nil || reason != "" {
		t.Fatalf("admit = %v, %q", g, reason)
	}
	admitted := logDetails(t, dir, eventSessionAdmitted)
	want := "s1: auto; fleet policy: ports 22, 8080 (within the owner's allow_ports); requested by alice@example.com, approved by bob@example.com (four-eyes)"
	if len(admitted) != 1 || admitted[0] != want {
		t.Errorf("session_admitted lines %q; want %q", admitted, want)
	}
}
