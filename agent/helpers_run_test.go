package agent

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/porthole/porthole/agent/agentretry"
	"github.com/porthole/porthole/agent/agentstate"
	"github.com/porthole/porthole/agent/internal/agenttest"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/control"
)

// fastBackoff keeps reconnects in tests to milliseconds.
var fastBackoff = agentretry.Backoff{First: 20 * time.Millisecond, Max: 200 * time.Millisecond}

// testDevice is a device enrolled (through the fake API) with a server
// whose embedded broker runs in the test.
type testDevice struct {
	*agentstate.State
	api    *agenttest.API
	broker *agenttest.Broker
	clock  *agenttest.Clock // the device's and the broker's clock
	states *agenttest.StateLog
}

// enrollDevice enrolls a device named name whose broker is a fresh embedded
// broker; tamper may change the enrollment answer further.
func enrollDevice(t *testing.T, name string, tamper func(*apitype.EnrollResponse)) *testDevice {
	t.Helper()
	api := agenttest.NewAPI(t)
	clock := agenttest.NewClock()
	brk := agenttest.NewBroker(t, api.Keys, clock.Now)
	api.Tamper(func(r *apitype.EnrollResponse) {
		r.BrokerURL = brk.URL()
		r.TLSFingerprint = api.Keys.TLSFingerprint()
		if tamper != nil {
			tamper(r)
		}
	})
	st, err := Enroll(context.Background(), enrollOpts(api, stateDir(t), name))
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	brk.AddDevice(st.Enrollment.Fleet, name, st.PrivateKey.Public().(ed25519.PublicKey))
	d := &testDevice{State: st, api: api, broker: brk, clock: clock}
	d.states = brk.StateLog(d.stateTopic())
	return d
}

func (d *testDevice) cmdTopic() string {
	topic, _ := control.CmdTopic(d.Enrollment.Fleet, d.Enrollment.Name)
	return topic
}

func (d *testDevice) stateTopic() string {
	topic, _ := control.StateTopic(d.Enrollment.Fleet, d.Enrollment.Name)
	return topic
}

// command is a valid open command for the device, for 5 minutes.
func (d *testDevice) command(session string) control.Command {
	return control.Command{
		Type: control.TypeOpen, Session: session, Fleet: d.Enrollment.Fleet, Device: d.Enrollment.Name,
		Relay: "relay.example.com:2222", NotAfter: d.clock.Now().Add(control.DefaultValidity).Unix(),
	}
}

// sign signs cmd with the server's control key.
func (d *testDevice) sign(t *testing.T, cmd control.Command) []byte {
	t.Helper()
	return signWith(t, d.api.Keys.Control, cmd)
}

func signWith(t *testing.T, key ed25519.PrivateKey, cmd control.Command) []byte {
	t.Helper()
	env, err := control.Sign(key, cmd)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return env
}

// refusingSessions is the SessionHandler of Run's tests, which look at the
// control channel alone: it answers every open and close with
// "tunnel_down <session> unsupported" at once, which tells the test the
// command was accepted and handed on.
type refusingSessions struct{}

var _ SessionHandler = refusingSessions{}

func (refusingSessions) Open(_ context.Context, cmd *control.Command, report Reporter) {
	report(control.TunnelDown(cmd.Session, control.CloseUnsupported))
}

func (refusingSessions) Close(_ context.Context, cmd *control.Command, report Reporter) {
	report(control.TunnelDown(cmd.Session, control.CloseUnsupported))
}

// options are the RunOptions of the device's agent in tests.
func (d *testDevice) options(t *testing.T) RunOptions {
	return RunOptions{State: d.State, Log: agenttest.OpenLog(t, d.Dir), Sessions: refusingSessions{}, Logger: agenttest.Logger(t), Backoff: fastBackoff, Now: d.clock.Now}
}

// runningAgent is Run on its own goroutine.
type runningAgent struct {
	status *agenttest.SyncWriter
	cancel context.CancelFunc
	done   chan error
}

// startAgent runs the agent until stop or the end of the test.
func startAgent(t *testing.T, opts RunOptions) *runningAgent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a := &runningAgent{status: &agenttest.SyncWriter{}, cancel: cancel, done: make(chan error, 1)}
	opts.Status = a.status
	go func() { a.done <- Run(ctx, opts) }()
	t.Cleanup(func() { a.stop(t) })
	return a
}

// stop ends the agent and checks that Run returned nil.
func (a *runningAgent) stop(t *testing.T) {
	t.Helper()
	a.cancel()
	select {
	case err := <-a.done:
		if err != nil {
			t.Errorf("Run = %v; want nil after cancel", err)
		}
		a.done <- nil // a later stop returns at once
	case <-time.After(agenttest.WaitTimeout):
		t.Fatal("Run did not return after cancel")
	}
}

// start runs the device's agent with its test options and waits until it
// says online.
func (d *testDevice) start(t *testing.T) *runningAgent {
	t.Helper()
	a := startAgent(t, d.options(t))
	d.states.Expect(t, "online")
	return a
}

// uniqueName is a device name no other test run uses, for brokers shared
// between runs.
func uniqueName(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}
