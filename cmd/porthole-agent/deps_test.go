package main

import (
	"slices"
	"testing"

	"github.com/porthole/porthole/internal/testdeps"
)

// TestDeps keeps the agent small and free of the server: besides the
// standard library it may link only the packages below, as its static
// Linux build does. A package that is not here (the server's API, store,
// daemon, broker, relay, session, presence or brokerclient, say, or their
// heavy dependencies) needs a reason to be added.
func TestDeps(t *testing.T) {
	const module = "github.com/porthole/porthole/"
	deps := testdeps.Deps(t, ".", []string{"GOOS=linux", "CGO_ENABLED=0"},
		// The agent's own packages and those it shares with the server
		// and the CLI.
		module+"cmd/porthole-agent",
		module+"agent", // and its own packages: agentcmd, agentstate, agentlog, agentrecord, agentupload, agentconsent, agentowner, agentretry
		module+"agentssh",
		module+"apiclient",
		module+"apitype",
		module+"asciicast",
		module+"control",
		module+"humanize",
		module+"internal/atomicfile",
		module+"internal/pageheaders", // the owner's page's headers, as every page's
		module+"keyfile",
		module+"proxydial",
		module+"relay/relayproto", // the relay's wire format is the agent's to speak, as control's is
		module+"sessioncert",
		module+"sshalgo",
		module+"tcprto", // a dead link is found in seconds, not after TCP's fifteen minutes
		module+"version",
		module+"yamlconf",

		// Others' modules.
		"github.com/coder/websocket",
		"github.com/creack/pty",
		"github.com/eclipse/paho.golang",
		"github.com/gorilla/websocket", // paho.golang's, for MQTT over WebSocket
		"github.com/hashicorp/yamux",
		"github.com/kr/fs", // pkg/sftp's
		"github.com/pkg/sftp",
		"go.yaml.in/yaml/v3",
		"golang.org/x/crypto",
		"golang.org/x/net", // autopaho's, for SOCKS proxies
		"golang.org/x/sys",
		"golang.org/x/term",
	)
	// Of the standard library, these weigh most for what they give the
	// agent: text/template (and html/template over it) calls methods by
	// name through reflection, which makes the linker keep every exported
	// method of every type the agent links, a fifth of its size
	// (bench/README.md, "The agent's footprint").
	for _, heavy := range []string{"text/template", "html/template"} {
		if slices.Contains(deps, heavy) {
			t.Errorf("the agent links %s; see bench/README.md, \"The agent's footprint\"", heavy)
		}
	}
	// A vacuous list would pass; make sure it is the agent's.
	for _, want := range []string{module + "agent", module + "apiclient"} {
		if !slices.Contains(deps, want) {
			t.Errorf("go list -deps does not show %s; the test is not looking at the agent", want)
		}
	}
}
