package agentcmd

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/agent"
	"github.com/porthole/porthole/agent/internal/agenttest"
	"github.com/porthole/porthole/apitype"
)

// enrolled enrolls dev1 with a fake API whose broker is a real embedded one,
// and returns the state directory.
func enrolled(t *testing.T) (dir string, brk *agenttest.Broker) {
	t.Helper()
	api := agenttest.NewAPI(t)
	brk = agenttest.NewBroker(t, api.Keys, nil)
	api.Tamper(func(r *apitype.EnrollResponse) {
		r.BrokerURL, r.TLSFingerprint = brk.URL(), api.Keys.TLSFingerprint()
	})
	dir = filepath.Join(t.TempDir(), "state")
	st, err := agent.Enroll(context.Background(), agent.EnrollOptions{
		Server: api.URL, Token: "phe_x", Name: "dev1", StateDir: dir, Fingerprint: api.Fingerprint(),
	})
	if err != nil {
		t.Fatal(err)
	}
	brk.AddDevice(st.Enrollment.Fleet, "dev1", st.PrivateKey.Public().(ed25519.PublicKey))
	return dir, brk
}

// writeConfig writes an owner's config file, 0600.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRunCommand(t *testing.T) {
	t.Parallel()
	dir, brk := enrolled(t)
	states := brk.StateLog("porthole/v1/lab/dev1/state")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &agenttest.SyncWriter{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"run", "--state", dir, "--config", writeConfig(t, "log_level: warn\nsocket: "+socketPath(t)+"\n")},
			IO{In: strings.NewReader(""), Out: &strings.Builder{}, Err: stderr})
	}()
	stderr.WaitFor(t, "connected to "+brk.URL()+" as lab/dev1\n")
	states.Expect(t, "online")

	cancel() // as SIGTERM does
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run = %v; want nil after the signal", err)
		}
	case <-time.After(agenttest.WaitTimeout):
		t.Fatal("run did not stop")
	}
	states.Expect(t, "offline")
	if s := stderr.String(); !strings.HasSuffix(s, "disconnected from "+brk.URL()+"\n") {
		t.Errorf("stderr = %q; want it to end saying it disconnected", s)
	}
}

func TestRunCommandErrors(t *testing.T) {
	t.Parallel()
	dir, _ := enrolled(t)
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	for _, tt := range []struct {
		name   string
		args   []string
		errHas string
	}{
		{"missing config", []string{"--state", dir, "--config", missing}, "the config file " + missing + " does not exist"},
		{"unknown key", []string{"--state", dir, "--config", writeConfig(t, "consnet: auto\n")}, `line 1: unknown key "consnet"`},
		{"bad value", []string{"--state", dir, "--config", writeConfig(t, "broker: {url: 'http://x'}\n")}, "must start with mqtts://"},
		{"not enrolled", []string{"--state", t.TempDir(), "--config", writeConfig(t, "")}, "run porthole-agent enroll first"},
		{"stray argument", []string{"--state", dir, "now"}, "unknown command"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := run(t, nil, append([]string{"run"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("run %v = %v; want an error containing %q", tt.args, err, tt.errHas)
			}
		})
	}
}

func TestLoadConfigDefault(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "agent.yaml")
	if cfg, err := loadConfig(missing, false); err != nil || !reflect.DeepEqual(*cfg, agent.Config{}) {
		t.Errorf("loadConfig(missing default) = %+v, %v; want the defaults", cfg, err)
	}
	if _, err := loadConfig(missing, true); err == nil {
		t.Error("loadConfig(missing, given by name) succeeded")
	}
}
