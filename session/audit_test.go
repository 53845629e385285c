package session

import (
	"errors"
	"testing"
	"time"

	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/store"
)

// sessionEvents returns the audit log of one session, checking that the
// chain verifies.
func (fx *fixture) sessionEvents(t *testing.T, id string) []audit.Event {
	t.Helper()
	evs, err := fx.st.ListAudit(t.Context(), store.AuditFilter{Session: id})
	if err != nil {
		t.Fatal(err)
	}
	r, err := audit.Verify(t.Context(), fx.st, audit.Head{})
	if err != nil || !r.OK() {
		t.Fatalf("the audit chain does not verify: %+v %v", r, err)
	}
	return evs
}

type wantEvent struct {
	kind   audit.Kind
	actor  audit.Actor
	reason string
}

func checkEvents(t *testing.T, got []audit.Event, want []wantEvent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d events %v; want %d", len(got), got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Kind != w.kind || g.Actor != w.actor || g.Detail["reason"] != w.reason || g.Fleet != "acme" || g.Device != "dev1" {
			t.Errorf("event %d: %s by %+v reason %q on %s/%s; want %s by %+v reason %q on acme/dev1",
				i, g.Kind, g.Actor, g.Detail["reason"], g.Fleet, g.Device, w.kind, w.actor, w.reason)
		}
	}
}

// TestAuditLifecycle: a session's life is in the audit log, each step by
// whoever took it: requested by the engineer, active by the device, closed
// by the closer the context names. Repeated reports and closes add nothing.
func TestAuditLifecycle(t *testing.T) {
	fx := newFixture(t, nil)
	ann := audit.User(fx.user.ID, fx.user.Email)
	dev := audit.Device(fx.dev.ID, "acme", "dev1")
	o := fx.open(t, nil)
	id := o.Session.ID
	fx.m.HandleState("acme", "dev1", control.State{Kind: control.StateTunnelUp, Session: id})
	fx.m.HandleState("acme", "dev1", control.State{Kind: control.StateTunnelUp, Session: id}) // retained, again
	// Another device's word is ignored, and not recorded as the session's.
	fx.m.HandleState("acme", "dev2", control.State{Kind: control.StateTunnelDown, Session: id, Reason: "x"})
	byAnn := audit.WithActor(t.Context(), ann)
	if _, err := fx.m.CloseSession(byAnn, id, control.CloseEngineer); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.m.CloseSession(byAnn, id, "again"); err != nil {
		t.Fatal(err)
	}
	evs := fx.sessionEvents(t, id)
	checkEvents(t, evs, []wantEvent{
		{audit.SessionRequested, ann, "ticket 7"},
		{audit.SessionActive, dev, ""},
		{audit.SessionClosed, ann, "engineer_closed"},
	})
	if evs[0].Detail["ports"] != "22" || evs[0].Detail["key"] == "" || evs[0].DeviceID != fx.dev.ID {
		t.Errorf("requested event %+v", evs[0])
	}
}

func TestAuditClosedByDeviceAndSystem(t *testing.T) {
	t.Run("device", func(t *testing.T) {
		t.Parallel()
		fx := newFixture(t, nil)
		o := fx.open(t, nil)
		fx.m.HandleState("acme", "dev1", control.State{Kind: control.StateTunnelDown, Session: o.Session.ID, Reason: "revoked"})
		fx.waitClosed(t, o.Session.ID)
		// The owner's revoke is a consent event too.
		checkEvents(t, fx.sessionEvents(t, o.Session.ID), []wantEvent{
			{audit.SessionRequested, audit.User(fx.user.ID, fx.user.Email), "ticket 7"},
			{audit.ConsentDenied, audit.Device(fx.dev.ID, "acme", "dev1"), "revoked"},
			{audit.SessionClosed, audit.Device(fx.dev.ID, "acme", "dev1"), "revoked"},
		})
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		fx := newFixture(t, func(c *Config) { c.ConnectTimeout = 50 * time.Millisecond })
		o := fx.open(t, nil)
		fx.waitClosed(t, o.Session.ID)
		checkEvents(t, fx.sessionEvents(t, o.Session.ID), []wantEvent{
			{audit.SessionRequested, audit.User(fx.user.ID, fx.user.Email), "ticket 7"},
			{audit.SessionClosed, audit.System, "device_unreachable"},
		})
	})
	t.Run("control channel down", func(t *testing.T) {
		t.Parallel()
		fx := newFixture(t, nil)
		fx.failSend = errors.New("broker down")
		// The engineer's context names them; the close is still the system's.
		ctx := audit.WithActor(t.Context(), audit.User(fx.user.ID, fx.user.Email))
		if _, err := fx.m.Open(ctx, Request{Device: fx.dev, User: fx.user, PublicKey: newSigner(t).PublicKey(), Reason: "ticket 7"}); err == nil {
			t.Fatal("Open with the broker down succeeded")
		}
		ss, _ := fx.st.ListSessions(t.Context(), store.SessionFilter{})
		checkEvents(t, fx.sessionEvents(t, ss[0].ID), []wantEvent{
			{audit.SessionRequested, audit.User(fx.user.ID, fx.user.Email), "ticket 7"},
			{audit.SessionClosed, audit.System, "control_unavailable"},
		})
	})
}

// TestAuditConsent: an owner's approval (a session going on from
// waiting_consent) and five wrong codes are consent events of their own.
func TestAuditConsent(t *testing.T) {
	fx := newFixture(t, nil)
	dev := audit.Device(fx.dev.ID, "acme", "dev1")
	approved := fx.open(t, nil)
	fx.m.HandleState("acme", "dev1", control.State{Kind: control.StateWaitingConsent, Session: approved.Session.ID})
	fx.m.HandleState("acme", "dev1", control.State{Kind: control.StateTunnelUp, Session: approved.Session.ID})
	wrong := fx.open(t, nil)
	fx.m.HandleState("acme", "dev1", control.State{Kind: control.StateTunnelDown, Session: wrong.Session.ID, Reason: "wrong_codes"})
	fx.waitClosed(t, wrong.Session.ID)
	user := audit.User(fx.user.ID, fx.user.Email)
	checkEvents(t, fx.sessionEvents(t, approved.Session.ID), []wantEvent{
		{audit.SessionRequested, user, "ticket 7"},
		{audit.SessionActive, dev, ""},
		{audit.ConsentGranted, dev, ""},
	})
	checkEvents(t, fx.sessionEvents(t, wrong.Session.ID), []wantEvent{
		{audit.SessionRequested, user, "ticket 7"},
		{audit.WrongCode, dev, "wrong_codes"},
		{audit.SessionClosed, dev, "wrong_codes"},
	})
}

// TestAuditDeviceReasons: a device's reason is recorded as it gives it,
// one this server does not know too, with a consent event only for what
// the owner decided (or wrong codes).
func TestAuditDeviceReasons(t *testing.T) {
	for _, tt := range []struct {
		reason  string
		consent audit.Kind // "" for none
	}{
		{"no_consent", audit.ConsentDenied},
		{"denied", audit.ConsentDenied},
		{"consent_timeout", audit.ConsentDenied},
		{"revoked", audit.ConsentDenied},
		{"wrong_codes", audit.WrongCode},
		{"consent_expired", ""},
		{"idle_timeout", ""},
		{"relay_disconnected", ""},
		{"a_newer_agents_reason", ""},
	} {
		t.Run(tt.reason, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t, nil)
			dev := audit.Device(fx.dev.ID, "acme", "dev1")
			id := fx.open(t, nil).Session.ID
			fx.m.HandleState("acme", "dev1", control.State{Kind: control.StateTunnelDown, Session: id, Reason: tt.reason})
			if ses := fx.waitClosed(t, id); ses.CloseReason != tt.reason {
				t.Errorf("closed for %q; want %q", ses.CloseReason, tt.reason)
			}
			want := []wantEvent{{audit.SessionRequested, audit.User(fx.user.ID, fx.user.Email), "ticket 7"}}
			if tt.consent != "" {
				want = append(want, wantEvent{tt.consent, dev, tt.reason})
			}
			checkEvents(t, fx.sessionEvents(t, id), append(want, wantEvent{audit.SessionClosed, dev, tt.reason}))
		})
	}
}
