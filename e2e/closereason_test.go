package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/apitype"
)

// TestDeviceReasonWins: when the device ends a session while the engineer
// is on it with porthole (the owner's revoke, the device's own idle
// timeout, the owner's denial), the server records the device's reason,
// its audit log says so with the device as the one who closed it (and the
// owner's refusal as consent_denied), and both match what the device wrote
// in its own log. The CLI closes the session as soon as its connection
// ends, before the device's word can reach the server: that DELETE must
// not turn the device's reason into engineer_closed (issue 11, finding 9).
func TestDeviceReasonWins(t *testing.T) {
	t.Parallel()
	srv := newPresenceServer(t, sessionConfig(t, "15m"))
	manualSock, _, manualState := srv.consentDevice(t, "amp", "consent: manual\n")
	_, _, idleState := srv.consentDevice(t, "cam", "consent: auto\nidle_timeout: 2s\n")
	approveSock, _, approveState := srv.consentDevice(t, "lab", "consent: approve\n")

	// The owner's revoke, mid-command.
	code := strings.TrimSpace(owner(t, srv, manualSock, "request").Stdout)
	p := Start(t, srv.env, bins.CLI, "ssh", "amp", "--code", code, "--", "sleep", "60")
	WaitFor(t, 20*time.Second, "the engineer's command to run on amp", func() bool {
		if p.Exited() {
			t.Fatalf("porthole ssh ended:\n%s", p.Stderr())
		}
		return strings.Contains(owner(t, srv, manualSock, "status").Stdout, "ops@example.com connected since")
	})
	owner(t, srv, manualSock, "revoke")
	WaitFor(t, 10*time.Second, "porthole ssh to end after revoke", p.Exited)
	checkDeviceReason(t, srv, "amp", manualState, "revoked", true, `"event":"session_ended","session":"%s","reason":"revoked"`)

	// The device's idle timeout (2 s), shorter than the server's (15 min):
	// a command that waits on input that never comes.
	start := time.Now()
	r := Run(t, srv.env, "", bins.CLI, "ssh", "cam", "--", "sleep", "60")
	if r.Err == nil || time.Since(start) > 30*time.Second {
		t.Errorf("porthole ssh to an idle device: %v after %v\n%s", r.Err, time.Since(start), r.Stderr)
	}
	checkDeviceReason(t, srv, "cam", idleState, "idle_timeout", false, `"event":"session_ended","session":"%s","reason":"idle_timeout"`)

	// The owner's denial.
	p = Start(t, srv.env, bins.CLI, "ssh", "lab", "--", "true")
	WaitFor(t, 20*time.Second, "the owner to be asked", func() bool {
		var st struct{ Pending []struct{ Session string } }
		return json.Unmarshal([]byte(owner(t, srv, approveSock, "status", "--json").Stdout), &st) == nil && len(st.Pending) == 1
	})
	owner(t, srv, approveSock, "deny")
	WaitFor(t, 10*time.Second, "porthole ssh to end after the denial", p.Exited)
	if !strings.Contains(p.Stderr(), "the owner denied the request") {
		t.Errorf("porthole ssh after a denial said:\n%s", p.Stderr())
	}
	checkDeviceReason(t, srv, "lab", approveState, "denied", true, `"event":"session_denied","session":"%s"`)
}

// checkDeviceReason checks that device's one session closed for reason on
// the server, in the session and in the audit log (by the device, with a
// consent_denied event if consent), and that the device's own log has the
// line deviceLog says (%s for the session's id).
func checkDeviceReason(t *testing.T, srv *presenceServer, device, state, reason string, consent bool, deviceLog string) {
	t.Helper()
	var ses apitype.Session
	WaitFor(t, 10*time.Second, device+"'s session to be closed on the server", func() bool {
		var all []apitype.Session
		r := MustRun(t, srv.env, "", bins.CLI, "sessions", "--json", "--device", device)
		if err := json.Unmarshal([]byte(r.Stdout), &all); err != nil {
			t.Fatalf("porthole sessions --json: %v\n%s", err, r.Stdout)
		}
		if len(all) != 1 {
			t.Fatalf("%d sessions on %s; want one", len(all), device)
		}
		ses = all[0]
		return ses.State == apitype.SessionClosed
	})
	if ses.CloseReason != reason {
		t.Errorf("%s: the server closed the session as %q; want the device's %q", device, ses.CloseReason, reason)
	}
	var evs []apitype.AuditEvent
	r := MustRun(t, srv.env, "", bins.CLI, "audit", "--json", "--session", ses.ID)
	if err := json.Unmarshal([]byte(r.Stdout), &evs); err != nil {
		t.Fatalf("porthole audit --json: %v\n%s", err, r.Stdout)
	}
	var closed, denied int
	for _, e := range evs {
		switch e.Kind {
		case "session_closed":
			closed++
			if e.Detail["reason"] != reason || e.Actor.Kind != "device" {
				t.Errorf("%s: the audit log's session_closed: by %s %s for %q; want by the device for %q", device, e.Actor.Kind, e.Actor.Name, e.Detail["reason"], reason)
			}
		case "consent_denied":
			denied++
			if e.Detail["reason"] != reason {
				t.Errorf("%s: consent_denied for %q; want %q", device, e.Detail["reason"], reason)
			}
		}
	}
	if closed != 1 || (consent && denied != 1) || (!consent && denied != 0) {
		t.Errorf("%s: %d session_closed and %d consent_denied events; want 1 and %v:\n%s", device, closed, denied, consent, r.Stdout)
	}
	WaitFor(t, 10*time.Second, device+"'s own log to record the session's end", func() bool {
		return strings.Contains(readFile(t, filepath.Join(state, "agent.log")), fmt.Sprintf(deviceLog, ses.ID))
	})
}
