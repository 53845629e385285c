package daemon

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/relay"
	"github.com/porthole/porthole/store"
)

// TestRejectionsRecordedOnce: a retained rejection delivered again is not
// recorded again; a new one, after another state or for another reason,
// is.
func TestRejectionsRecordedOnce(t *testing.T) {
	var (
		mu  sync.Mutex
		got []audit.Event
	)
	q := audit.NewQueue(audit.QueueConfig{Append: func(_ context.Context, evs ...audit.Event) error {
		mu.Lock()
		got = append(got, evs...)
		mu.Unlock()
		return nil
	}})
	r := newRejections(q)
	for _, st := range []control.State{
		{Kind: control.StateRejected, Reason: "bad_signature"},
		{Kind: control.StateRejected, Reason: "bad_signature"}, // the retained one, again
		{Kind: control.StateOnline},
		{Kind: control.StateRejected, Reason: "bad_signature"},
		{Kind: control.StateRejected, Reason: "expired"},
	} {
		r.onState("acme", "dev1", st)
	}
	r.onState("acme", "dev2", control.State{Kind: control.StateRejected, Reason: "expired"})
	q.Close()
	var reasons []string
	for _, e := range got {
		if e.Kind != audit.CommandRejected || e.Fleet != "acme" || e.Actor.Kind != audit.ActorDevice {
			t.Errorf("event %+v", e)
		}
		reasons = append(reasons, e.Device+":"+e.Detail["reason"])
	}
	want := []string{"dev1:bad_signature", "dev1:bad_signature", "dev1:expired", "dev2:expired"}
	if len(reasons) != len(want) {
		t.Fatalf("recorded %v; want %v", reasons, want)
	}
	for i := range want {
		if reasons[i] != want[i] {
			t.Errorf("recorded %v; want %v", reasons, want)
			break
		}
	}
	if len(r.last) != 2 {
		t.Errorf("remembers %d devices; want the 2 whose last state is a rejection", len(r.last))
	}
}

func TestRelayRefusalEvent(t *testing.T) {
	at := time.Now()
	for _, tt := range []struct {
		name string
		f    relay.Refusal
		want audit.Actor
	}{
		{"login", relay.Refusal{At: at, Role: relay.RoleDevice, User: "acme/ghost", Fleet: "acme", Device: "ghost", What: "login", Why: "no such device"},
			audit.Anonymous("acme/ghost")},
		{"device request", relay.Refusal{At: at, Role: relay.RoleDevice, User: "acme/dev1", Fleet: "acme", Device: "dev1", What: "channel session", Why: "no"},
			audit.Device("", "acme", "dev1")},
		{"engineer request", relay.Refusal{At: at, Role: relay.RoleEngineer, User: "ses_1", Engineer: "ann@example.com", Fleet: "acme", Device: "dev1",
			Session: "ses_1", What: "channel direct-tcpip", Why: "port 23 is not the session's"},
			audit.Actor{Kind: audit.ActorUser, Name: "ann@example.com"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := relayRefusal(tt.f)
			fleet, device, session := tt.f.Fleet, tt.f.Device, tt.f.Session
			if tt.f.What == "login" {
				// Anyone can claim any name: a refused login is the
				// server's, with the names it claimed in its detail.
				fleet, device, session = "", "", ""
				if e.Detail["claimed_device"] != tt.f.Fleet+"/"+tt.f.Device {
					t.Errorf("claimed_device = %q", e.Detail["claimed_device"])
				}
			}
			if e.Kind != audit.RelayRefused || e.Actor != tt.want || !e.Time.Equal(at) || e.Fleet != fleet || e.Device != device ||
				e.Session != session || e.Detail["what"] != tt.f.What || e.Detail["why"] != tt.f.Why {
				t.Errorf("event %+v; want actor %+v", e, tt.want)
			}
		})
	}
}

// TestServerAuditsRefusalsAndRejections: through a running server, a
// login refused at the relay and a command a device reports rejecting
// (twice, as a retained state is delivered) reach the audit log: the
// rejection in the fleet concerned, the refused login in the server's own
// (a stranger claiming acme's device names writes nothing in acme's log).
func TestServerAuditsRefusalsAndRejections(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	cfg := initConfig(t, dir)
	srv, err := Open(t.Context(), cfg, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	sshPub, _ := ssh.NewPublicKey(pub)
	dev := seedDevice(t, srv.Store(), "acme", "dev1", string(ssh.MarshalAuthorizedKey(sshPub)))
	brokerLn, relayLn := listen(t), listen(t)
	serve(t, srv, Listeners{API: listen(t), Broker: brokerLn, Relay: relayLn})

	// A stranger claims to be a device of acme at the relay.
	_, strangerKey, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(strangerKey)
	if c, err := ssh.Dial("tcp", relayLn.Addr().String(), &ssh.ClientConfig{User: "acme/ghost", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: waitTimeout}); err == nil {
		c.Close()
		t.Fatal("the relay let a stranger in")
	}

	// The device says it rejected a command; the broker delivers it again.
	d := &testDevice{fleet: "acme", name: "dev1", priv: priv, resp: &apitype.EnrollResponse{
		BrokerURL: "mqtts://" + brokerLn.Addr().String(), TLSFingerprint: srv.Keys().TLSFingerprint()}}
	mc, _, err := d.connect(t)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	topic := stateTopic(t, "acme", "dev1")
	for range 2 {
		if _, err := mc.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Retain: true, Payload: []byte("rejected bad_signature")}); err != nil {
			t.Fatal(err)
		}
	}
	// The queue appends within a second or so.
	deadline := time.Now().Add(waitTimeout)
	for {
		evs, err := srv.Store().ListAudit(t.Context(), store.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[audit.Kind]bool{}
		for _, e := range evs {
			kinds[e.Kind] = true
		}
		if kinds[audit.RelayRefused] && kinds[audit.CommandRejected] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("acme's audit log after %v: %+v", waitTimeout, evs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Closing the server appends whatever its queue still holds.
	srv.Close()
	st, err := OpenStore(t.Context(), cfg.Database, cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs, err := st.ListAudit(t.Context(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var refused, rejected int
	for _, e := range evs {
		switch e.Kind {
		case audit.RelayRefused:
			refused++
			if e.FleetID != "" || e.Device != "" || e.Actor != audit.Anonymous("acme/ghost") || e.Detail["what"] != "login" ||
				e.Detail["remote"] == "" || e.Detail["claimed_device"] != "acme/ghost" {
				t.Errorf("refusal event %+v; want the server's, claiming acme/ghost", e)
			}
		case audit.CommandRejected:
			rejected++
			if e.DeviceID != dev.ID || e.Detail["reason"] != "bad_signature" {
				t.Errorf("rejection event %+v", e)
			}
		}
	}
	// An SSH client offers its key (one refusal) and then signs with it
	// (another); both are refusals of the login.
	if refused == 0 || rejected != 1 {
		t.Errorf("%d refusals and %d rejections in the log; want some and 1: %+v", refused, rejected, evs)
	}
	r, err := audit.Verify(t.Context(), st, audit.Head{})
	if err != nil || !r.OK() {
		t.Errorf("the chain does not verify: %+v %v", r, err)
	}
}
