package session

import (
	"context"
	"testing"
	"time"

	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/store"
)

// TestEngineerCloseWaitsForDevice: an engineer's close of a session its online device
// holds waits for the device's word, which decides the reason: the
// device's own when it ended the session first (its idle timeout, its
// owner's revoke: issue 11, finding 9), engineer_closed by the engineer
// when it closed the session because it was told to, or when it says
// nothing within CloseGrace; and at once for an offline device.
func TestEngineerCloseWaitsForDevice(t *testing.T) {
	for _, tt := range []struct {
		name    string
		offline bool
		up      string // what the device said of the session before: tunnel_up (default) or waiting_consent
		answer  string // the device's tunnel_down reason; "" none
		want    string
		events  []audit.Kind
		byAnn   bool
	}{
		{"device revoked first", false, "", "revoked", "revoked", []audit.Kind{audit.ConsentDenied, audit.SessionClosed}, false},
		{"device idled first", false, "", "idle_timeout", "idle_timeout", []audit.Kind{audit.SessionClosed}, false},
		{"owner denied first", false, control.StateWaitingConsent, "denied", "denied", []audit.Kind{audit.ConsentDenied, audit.SessionClosed}, false},
		{"device obeyed", false, "", "closed", "engineer_closed", []audit.Kind{audit.SessionClosed}, true},
		{"device silent", false, "", "", "engineer_closed", []audit.Kind{audit.SessionClosed}, true},
		{"device offline", true, "", "", "engineer_closed", []audit.Kind{audit.SessionClosed}, true},
		{"device not heard from yet", false, "none", "", "engineer_closed", []audit.Kind{audit.SessionClosed}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const grace = 300 * time.Millisecond
			fx := newFixture(t, func(c *Config) { c.CloseGrace = grace })
			if err := fx.st.SetDevicePresence(t.Context(), store.DevicePresence{DeviceID: fx.dev.ID, Online: !tt.offline, At: time.Now()}); err != nil {
				t.Fatal(err)
			}
			ann := audit.User(fx.user.ID, fx.user.Email)
			dev := audit.Device(fx.dev.ID, "acme", "dev1")
			id := fx.open(t, nil).Session.ID
			fx.cmd(t) // open
			switch tt.up {
			case "":
				fx.m.HandleState("acme", "dev1", control.State{Kind: control.StateTunnelUp, Session: id})
			case control.StateWaitingConsent:
				fx.m.HandleState("acme", "dev1", control.State{Kind: control.StateWaitingConsent, Session: id})
			}

			type result struct {
				ses *store.Session
				err error
				d   time.Duration
			}
			done := make(chan result, 1)
			start := time.Now()
			go func() {
				ses, err := fx.m.EngineerClose(audit.WithActor(context.Background(), ann), id)
				done <- result{ses, err, time.Since(start)}
			}()
			if tt.answer != "" {
				if c := fx.cmd(t); c.Type != control.TypeClose || c.Session != id {
					t.Fatalf("the device was sent %+v; want a close of %s", c, id)
				}
				fx.m.HandleState("acme", "dev1", control.State{Kind: control.StateTunnelDown, Session: id, Reason: tt.answer})
			}
			r := <-done
			if r.err != nil || r.ses.State != store.SessionClosed || r.ses.CloseReason != tt.want {
				t.Fatalf("EngineerClose = %+v, %v; want closed as %s", r.ses, r.err, tt.want)
			}
			switch {
			case tt.answer == "" && !tt.offline && tt.up != "none" && r.d < grace:
				t.Errorf("closed after %v without the device's word; want it waited for CloseGrace (%v)", r.d, grace)
			case (tt.answer != "" || tt.offline || tt.up == "none") && r.d >= grace:
				t.Errorf("closed after %v; want at once", r.d)
			}
			var got []audit.Kind
			for _, e := range fx.sessionEvents(t, id) {
				switch e.Kind {
				case audit.SessionClosed, audit.ConsentDenied:
					got = append(got, e.Kind)
					want := dev
					if tt.byAnn {
						want = ann
					}
					if e.Actor != want || (e.Kind == audit.SessionClosed && e.Detail["reason"] != tt.want) {
						t.Errorf("%s by %+v for %q; want by %+v for %q", e.Kind, e.Actor, e.Detail["reason"], want, tt.want)
					}
				}
			}
			if len(got) != len(tt.events) || (len(got) > 0 && got[len(got)-1] != audit.SessionClosed) {
				t.Errorf("audit events %v; want %v", got, tt.events)
			}
		})
	}
}

// TestEngineerCloseCallerGivesUp: a caller that stops waiting (porthole
// proxy gives its close 2 s, less than CloseGrace) still has its session
// closed, as engineer_closed, when the device says nothing.
func TestEngineerCloseCallerGivesUp(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, func(c *Config) { c.CloseGrace = 300 * time.Millisecond })
	if err := fx.st.SetDevicePresence(t.Context(), store.DevicePresence{DeviceID: fx.dev.ID, Online: true, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	id := fx.open(t, nil).Session.ID
	fx.cmd(t) // open
	fx.m.HandleState("acme", "dev1", control.State{Kind: control.StateTunnelUp, Session: id})
	ctx, cancel := context.WithTimeout(audit.WithActor(context.Background(), audit.User(fx.user.ID, fx.user.Email)), 50*time.Millisecond)
	defer cancel()
	ses, err := fx.m.EngineerClose(ctx, id)
	if err != nil || ses.State != store.SessionClosed || ses.CloseReason != string(control.CloseEngineer) {
		t.Fatalf("EngineerClose with a caller gone = %+v, %v; want closed as %s", ses, err, control.CloseEngineer)
	}
}
