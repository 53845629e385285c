package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the agent small and free of the server: it must never link
// the server's packages (API handlers, store, daemon, broker, relay, the
// server's key and password code) nor their heavy dependencies.
func TestDeps(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command to list the agent's dependencies with: %v", err)
	}
	cmd := exec.Command(gobin, "list", "-deps", ".")
	// The agent ships static for Linux: list what that build links.
	cmd.Env = append(os.Environ(), "GOOS=linux", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	const module = "github.com/porthole/porthole/"
	forbidden := []string{
		module + "api", module + "store", module + "daemon", module + "broker",
		module + "relay", module + "audit", module + "cli", module + "web",
		module + "ca", module + "auth",
		"github.com/prometheus/", "github.com/jackc/pgx", "modernc.org/",
		"github.com/mochi-mqtt/server", "github.com/pressly/goose",
	}
	// The relay's wire format is the agent's to speak, as control's is.
	allowed := map[string]bool{module + "relay/relayproto": true}
	deps := strings.Fields(string(out))
	linked := map[string]bool{}
	for _, dep := range deps {
		linked[dep] = true
		if allowed[dep] {
			continue
		}
		for _, bad := range forbidden {
			// A forbidden path matches itself and what lies below it,
			// not a sibling that shares its prefix (apiclient is fine).
			if dep == bad || strings.HasPrefix(dep, strings.TrimSuffix(bad, "/")+"/") {
				t.Errorf("porthole-agent links %s", dep)
			}
		}
	}
	// A vacuous list would pass; make sure it is the agent's.
	for _, want := range []string{module + "agent", module + "apiclient"} {
		if !linked[want] {
			t.Errorf("go list -deps does not show %s; the test is not looking at the agent", want)
		}
	}
}
