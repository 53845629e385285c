package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/apiclient"
)

// TestAgentInfo: the real agent reports its version and its owner's
// consent mode and allowed ports as it starts, and engineers read them in
// the API (which the console's device page shows) and `porthole devices`.
func TestAgentInfo(t *testing.T) {
	t.Parallel()
	srv := newPresenceServer(t, sessionConfig(t, "15m"))
	srv.consentDevice(t, "dev1", "consent: approve\nallow_ports: [8080, 22]\n")
	fields := strings.Fields(MustRun(t, srv.env, "", bins.Agent, "version").Stdout)
	if len(fields) < 2 {
		t.Fatalf("porthole-agent version printed %q", fields)
	}
	version := fields[1]

	eng := newEngineer(t, srv)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ds, err := eng.api.Devices(t.Context(), apiclient.DeviceFilter{Name: "dev1"})
		if err != nil || len(ds) != 1 {
			t.Fatalf("finding dev1: %v %v", ds, err)
		}
		if a := ds[0].Agent; a != nil {
			if a.Version != version || a.Consent != "approve" || !slices.Equal(a.AllowPorts, []int{22, 8080}) ||
				!slices.Contains(a.Capabilities, "policy") {
				t.Fatalf("dev1's agent as the API shows it: %+v; want %s, approve, [22 8080], policy", a, version)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("dev1's agent did not report within 20 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	out := MustRun(t, srv.env, "", bins.CLI, "devices").Stdout
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "dev1 ") {
			if !strings.Contains(line, " "+version+" ") || !strings.Contains(line, " approve ") {
				t.Errorf("porthole devices: %q; want %s and approve", line, version)
			}
			return
		}
	}
	t.Errorf("porthole devices has no dev1:\n%s", out)
}
