package agent

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/porthole/porthole/agent/agentlog"
	"github.com/porthole/porthole/agent/agentretry"
	"github.com/porthole/porthole/agent/agentstate"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/control"
)

func TestRunOnlineAndCommands(t *testing.T) {
	t.Parallel()
	d := enrollDevice(t, "dev1", nil)
	a := d.start(t)
	a.status.WaitFor(t, "connected to "+d.broker.URL()+" as lab/dev1")

	open := d.command("s1")
	d.broker.Publish(t, d.cmdTopic(), d.sign(t, open))
	d.states.Expect(t, "tunnel_down s1 unsupported")
	closeCmd := d.command("s1")
	closeCmd.Type, closeCmd.Relay = control.TypeClose, ""
	d.broker.Publish(t, d.cmdTopic(), d.sign(t, closeCmd))
	d.states.Expect(t, "tunnel_down s1 unsupported")

	a.stop(t)
	d.states.Expect(t, "offline")
	a.status.WaitFor(t, "disconnected from "+d.broker.URL())

	events := readEvents(t, d.Dir)
	if len(events) != 2 || events[0].Event != eventCommandAccepted || events[0].Type != "open" || events[0].Session != "s1" ||
		events[1].Type != "close" {
		t.Errorf("agent.log = %+v; want open s1 and close s1 accepted", events)
	}
}

// TestRunRejects sends commands that must not be obeyed, through the real
// broker, and checks each is answered "rejected <reason>" and recorded.
func TestRunRejects(t *testing.T) {
	t.Parallel()
	d := enrollDevice(t, "dev1", nil)
	d.start(t)

	accepted := d.sign(t, d.command("s1"))
	d.broker.Publish(t, d.cmdTopic(), accepted)
	d.states.Expect(t, "tunnel_down s1 unsupported")

	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	edit := func(f func(*control.Command)) []byte {
		cmd := d.command("s2")
		f(&cmd)
		return d.sign(t, cmd)
	}
	for _, tt := range []struct {
		name     string
		envelope []byte
		reason   string
	}{
		{"forged", signWith(t, otherKey, d.command("s2")), control.ReasonBadSignature},
		{"other device", edit(func(c *control.Command) { c.Device = "dev2" }), control.ReasonWrongDevice},
		{"other fleet", edit(func(c *control.Command) { c.Fleet = "other" }), control.ReasonWrongFleet},
		{"expired", edit(func(c *control.Command) { c.NotAfter = d.clock.Now().Add(-2 * control.ClockSkew).Unix() }), control.ReasonExpired},
		{"too far ahead", edit(func(c *control.Command) { c.NotAfter = d.clock.Now().Add(time.Hour).Unix() }), control.ReasonTooFarAhead},
		{"oversized", []byte(`{"payload":"` + strings.Repeat("A", control.MaxEnvelopeSize) + `","sig":""}`), control.ReasonTooLarge},
		{"not an envelope", []byte("open s2 please"), control.ReasonMalformed},
		{"replayed", accepted, control.ReasonReplayed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d.broker.Publish(t, d.cmdTopic(), tt.envelope)
			d.states.Expect(t, "rejected "+tt.reason)
		})
	}

	events := readEvents(t, d.Dir)
	var reasons []string
	for _, e := range events[1:] {
		if e.Event != eventCommandRejected || e.Session != "" || e.Size == 0 {
			t.Errorf("event %+v; want a rejection without a session, with the size", e)
		}
		reasons = append(reasons, e.Reason)
	}
	want := "bad_signature wrong_device wrong_fleet expired too_far_ahead too_large malformed replayed"
	if got := strings.Join(reasons, " "); got != want {
		t.Errorf("agent.log rejections = %s; want %s", got, want)
	}
	if fi, err := os.Stat(filepath.Join(d.Dir, agentlog.File)); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("agent.log: %v, mode %v; want 0640, readable by the owner's group", err, fi.Mode().Perm())
	}
}

// TestRunRemembersNoncesAcrossRestarts replays, to a restarted agent, a
// command the first run accepted.
func TestRunRemembersNoncesAcrossRestarts(t *testing.T) {
	t.Parallel()
	d := enrollDevice(t, "dev1", nil)
	a := d.start(t)
	env := d.sign(t, d.command("s1"))
	d.broker.Publish(t, d.cmdTopic(), env)
	d.states.Expect(t, "tunnel_down s1 unsupported")
	a.stop(t)
	d.states.Expect(t, "offline")

	d.start(t)
	d.broker.Publish(t, d.cmdTopic(), env)
	d.states.Expect(t, "rejected replayed")
}

// TestRunComesBack restarts the broker with the device's clock 30 minutes
// on: the agent must come back by itself with a password minted for the new
// time (one made at the first connection would be refused).
func TestRunComesBack(t *testing.T) {
	t.Parallel()
	d := enrollDevice(t, "dev1", nil)
	a := d.start(t)

	d.broker.Stop(t)
	a.status.WaitFor(t, "lost the broker (it is shutting down); reconnecting")
	a.status.WaitFor(t, "cannot connect to "+d.broker.URL()+": dial tcp "+d.broker.Addr)
	d.clock.Advance(30 * time.Minute)
	d.broker.Start(t)
	// The old broker may have published the last will as it closed.
	d.states.ExpectEventually(t, "online")
	if n := strings.Count(a.status.String(), "connected to "+d.broker.URL()); n != 2 {
		t.Errorf("connected %d times; want 2", n)
	}

	d.broker.Publish(t, d.cmdTopic(), d.sign(t, d.command("s2")))
	d.states.Expect(t, "tunnel_down s2 unsupported")
}

// reportingSessions is a SessionHandler that hands each Open's Reporter to
// the test, which reports for the session when it likes.
type reportingSessions struct{ reports chan Reporter }

func (h reportingSessions) Open(_ context.Context, _ *control.Command, report Reporter) {
	h.reports <- report
}

func (reportingSessions) Close(context.Context, *control.Command, Reporter) {}

// TestRunReportsEndAfterReconnect: a session that ends while the broker is
// away (the server restarting: its relay connection dropped with the
// broker) is reported ended once the agent is connected again, so that the
// server, which knows nothing of the dropped relay connection, does not
// keep it open until its idle timeout.
func TestRunReportsEndAfterReconnect(t *testing.T) {
	t.Parallel()
	d := enrollDevice(t, "dev1", nil)
	h := reportingSessions{reports: make(chan Reporter, 1)}
	opts := d.options(t)
	opts.Sessions = h
	a := startAgent(t, opts)
	d.states.Expect(t, "online")
	d.broker.Publish(t, d.cmdTopic(), d.sign(t, d.command("s1")))
	report := <-h.reports
	report(control.State{Kind: control.StateTunnelUp, Session: "s1"})
	d.states.Expect(t, "tunnel_up s1")

	d.broker.Stop(t)
	a.status.WaitFor(t, "lost the broker")
	report(control.State{Kind: control.StateTunnelDown, Session: "s1", Reason: "relay_disconnected"})
	d.broker.Start(t)
	d.states.ExpectEventually(t, "online")
	d.states.Expect(t, "tunnel_down s1 relay_disconnected")
}

// TestRunLastWill cuts the agent's connection: the broker publishes its
// last will, and the agent comes back. Cut again at once, it comes back
// after a wait.
func TestRunLastWill(t *testing.T) {
	t.Parallel()
	d := enrollDevice(t, "dev1", nil)
	a := d.start(t)
	d.clock.Advance(time.Hour) // a stable connection
	d.broker.Disconnect(t, "lab", "dev1")
	d.states.Expect(t, "offline")
	d.states.Expect(t, "online")
	a.status.WaitFor(t, "lost the broker (the server disconnected this device; was it deleted?); reconnecting")
	if strings.Contains(a.status.String(), "keeps dropping") {
		t.Errorf("status = %q; the drop of a stable connection is not a flap", a.status.String())
	}

	d.broker.Disconnect(t, "lab", "dev1")
	d.states.Expect(t, "offline")
	d.states.Expect(t, "online")
	a.status.WaitFor(t, "the connection to "+d.broker.URL()+" keeps dropping soon after it is made; reconnecting in")
}

func TestRunWrongPin(t *testing.T) {
	t.Parallel()
	wrong := "sha256:" + strings.Repeat("ab", 32)
	d := enrollDevice(t, "dev1", func(r *apitype.EnrollResponse) { r.TLSFingerprint = wrong })
	a := startAgent(t, d.options(t))
	a.status.WaitFor(t, "cannot connect to "+d.broker.URL()+": the broker at "+d.broker.Addr+
		" presented the certificate "+d.api.Keys.TLSFingerprint()+", not "+wrong+" that this device enrolled with")
	a.status.WaitFor(t, "retrying in")
	a.stop(t)
	if s := a.status.String(); strings.Contains(s, "connected to") {
		t.Errorf("status = %q; the agent connected to a broker with the wrong certificate", s)
	}
	if got := d.broker.States(d.stateTopic()); len(got) != 0 {
		t.Errorf("state messages %q; want none", got)
	}
}

// TestRunRefusedLogin: a device whose clock is an hour off mints passwords
// the broker refuses; the owner is told what to check.
func TestRunRefusedLogin(t *testing.T) {
	t.Parallel()
	d := enrollDevice(t, "dev1", nil)
	opts := d.options(t)
	opts.Now = func() time.Time { return d.clock.Now().Add(time.Hour) }
	a := startAgent(t, opts)
	a.status.WaitFor(t, "cannot connect to "+d.broker.URL()+": the broker refused the login (reason code 0x86")
	a.status.WaitFor(t, "check that this device's clock is right, and that it is still enrolled (porthole devices); retrying in")
}

// TestRunExternalBrokerTLS points the agent at the same broker as an
// external one: the enrollment's pin no longer applies, so the certificate
// must be vouched for by broker.ca_file.
func TestRunExternalBrokerTLS(t *testing.T) {
	t.Parallel()
	d := enrollDevice(t, "dev1", nil)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d.api.Keys.TLS.Certificate[0]})
	if err := os.WriteFile(caFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("untrusted", func(t *testing.T) {
		opts := d.options(t)
		opts.Config.Broker.URL = d.broker.URL()
		a := startAgent(t, opts)
		a.status.WaitFor(t, "its certificate is not trusted (x509: certificate signed by unknown authority); set broker.ca_file")
	})
	t.Run("ca_file", func(t *testing.T) {
		opts := d.options(t)
		opts.Config.Broker = BrokerConfig{URL: d.broker.URL(), CAFile: caFile}
		startAgent(t, opts)
		d.states.Expect(t, "online")
	})
}

func TestRunRefusesSecondAgent(t *testing.T) {
	t.Parallel()
	d := enrollDevice(t, "dev1", nil)
	d.start(t)
	err := Run(t.Context(), d.options(t))
	if !errors.Is(err, agentstate.ErrAlreadyRunning) || !strings.Contains(err.Error(), d.Dir) {
		t.Errorf("second Run = %v; want agentstate.ErrAlreadyRunning naming %s", err, d.Dir)
	}
}

func TestRunChecksOptions(t *testing.T) {
	t.Parallel()
	d := enrollDevice(t, "dev1", nil)
	for _, tt := range []struct {
		name   string
		edit   func(*RunOptions)
		errHas string
	}{
		{"no state", func(o *RunOptions) { o.State = nil }, "needs a loaded State"},
		{"bad config", func(o *RunOptions) { o.Config.LogLevel = "loud" }, `log_level "loud"`},
		{"bad backoff", func(o *RunOptions) { o.Backoff = agentretry.Backoff{First: time.Minute, Max: time.Second} }, "backoff"},
		{"bad broker URL", func(o *RunOptions) { o.Config.Broker.URL = "ws://x" }, "must start with mqtts://"},
		{"missing ca_file", func(o *RunOptions) {
			o.Config.Broker = BrokerConfig{URL: "mqtts://x", CAFile: filepath.Join(d.Dir, "nope.pem")}
		}, "reading broker.ca_file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := d.options(t)
			tt.edit(&opts)
			if err := Run(t.Context(), opts); err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("Run = %v; want an error containing %q", err, tt.errHas)
			}
		})
	}
	// Nothing was started: the lock is free for the next run.
	d.start(t)
}

// readEvents reads the event log of state directory dir.
func readEvents(t *testing.T, dir string) []agentlog.Event {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, agentlog.File))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var events []agentlog.Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e agentlog.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("agent.log line %q: %v", sc.Text(), err)
		}
		if e.Time.IsZero() {
			t.Errorf("agent.log line %q has no time", sc.Text())
		}
		events = append(events, e)
	}
	return events
}

// TestRunClockOff: a device whose clock is twenty minutes off either way
// (too far for its MQTT password, and for every command) logs in and obeys
// the server's commands by the server's time, measured when it starts; and
// when its clock is then stepped (set right, or set wrong by a spoofed
// NTP), the server's time goes on by the monotonic clock: a command held
// back until it expired is refused.
func TestRunClockOff(t *testing.T) {
	t.Parallel()
	for _, off := range []time.Duration{20 * time.Minute, -20 * time.Minute} {
		t.Run(off.String(), func(t *testing.T) {
			t.Parallel()
			d := enrollDevice(t, "dev1", nil) // d.clock is the server's
			opts := d.options(t)
			var deviceOff atomic.Int64 // how far the device's clock is off
			deviceOff.Store(int64(off))
			opts.Now = func() time.Time { return d.clock.Now().Add(time.Duration(deviceOff.Load())) }
			opts.Clock = NewServerClock(opts.Now, func(context.Context) (time.Time, error) { return d.clock.Now(), nil }, opts.Logger)
			t0 := d.clock.Now()
			opts.Clock.Monotonic = func() time.Duration { return d.clock.Now().Sub(t0) }
			startAgent(t, opts)
			d.states.Expect(t, "online")
			d.broker.Publish(t, d.cmdTopic(), d.sign(t, d.command("s1")))
			d.states.Expect(t, "tunnel_down s1 unsupported")
			if got := opts.Clock.Offset(); got != -off {
				t.Errorf("offset %v; want %v", got, -off)
			}

			held := d.sign(t, d.command("s2")) // captured, never delivered
			deviceOff.Store(int64(-off))       // the device's clock stepped the other way
			d.clock.Advance(control.DefaultValidity + 2*control.ClockSkew)
			d.broker.Publish(t, d.cmdTopic(), held)
			d.states.Expect(t, "rejected "+control.ReasonExpired)
			d.broker.Publish(t, d.cmdTopic(), d.sign(t, d.command("s3")))
			d.states.Expect(t, "tunnel_down s3 unsupported")
		})
	}
}

// TestRunClockAheadRestart: a device whose clock runs ahead accepts a
// command, restarts, and is sent the same command again within its
// validity: it refuses it as replayed (its nonces are not forgotten by its
// own clock before the server's time is measured).
func TestRunClockAheadRestart(t *testing.T) {
	t.Parallel()
	d := enrollDevice(t, "dev1", nil)
	opts := func() RunOptions {
		o := d.options(t)
		o.Now = func() time.Time { return d.clock.Now().Add(20 * time.Minute) }
		o.Clock = NewServerClock(o.Now, func(context.Context) (time.Time, error) { return d.clock.Now(), nil }, o.Logger)
		return o
	}
	a := startAgent(t, opts())
	d.states.Expect(t, "online")
	env := d.sign(t, d.command("s1"))
	d.broker.Publish(t, d.cmdTopic(), env)
	d.states.Expect(t, "tunnel_down s1 unsupported")
	a.stop(t)
	d.states.Expect(t, "offline")
	startAgent(t, opts())
	d.states.Expect(t, "online")
	d.broker.Publish(t, d.cmdTopic(), env)
	d.states.Expect(t, "rejected "+control.ReasonReplayed)
}

// TestRunClockOffUnmeasured: without a way to measure the server's time, a
// command refused for its time says what the device's clock reads, in the
// owner's log.
func TestRunClockOffUnmeasured(t *testing.T) {
	t.Parallel()
	d := enrollDevice(t, "dev1", nil)
	opts := d.options(t)
	opts.Now = func() time.Time { return d.clock.Now().Add(8 * time.Minute) }
	startAgent(t, opts)
	d.states.Expect(t, "online")
	d.broker.Publish(t, d.cmdTopic(), d.sign(t, d.command("s1")))
	d.states.Expect(t, "rejected "+control.ReasonExpired)
	events := readEvents(t, d.Dir)
	if len(events) != 1 || !strings.Contains(events[0].Detail, "this device's clock reads") {
		t.Errorf("agent.log = %+v; want the rejection naming the device's clock", events)
	}
}
