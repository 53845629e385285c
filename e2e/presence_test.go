package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/porthole/porthole/internal/testmosquitto"
	"github.com/porthole/porthole/internal/testwait"
)

// presenceWait bounds each wait for a device's presence to change. Agents
// reconnect after 0-2 s, then 2-4 s, 4-8 s, ...: a server or broker that is
// back within a second or two sees them again well within it.
const presenceWait = 30 * time.Second

// TestPresenceEmbeddedBroker: with the embedded broker, presence follows the
// agent across a kill (SIGKILL: no goodbye) and a restart, and across a
// restart of the server on the same ports, with no manual step.
func TestPresenceEmbeddedBroker(t *testing.T) {
	t.Parallel()
	srv := newPresenceServer(t, nil)
	state := srv.enroll(t, "dev1")

	agent := srv.runAgent(t, state, "")
	srv.waitPresence(t, "dev1", true, "after the agent started")
	srv.tableSays(t, "dev1", "online")

	kill(t, agent)
	srv.waitPresence(t, "dev1", false, "after the agent was killed")
	srv.tableSays(t, "dev1", "offline")

	agent = srv.runAgent(t, state, "")
	srv.waitPresence(t, "dev1", true, "after the agent restarted")

	// The server restarts; the agent, left running, comes back by itself.
	srv.stop(t)
	restarted := time.Now()
	srv.start(t)
	d := srv.waitPresence(t, "dev1", true, "after the server restarted")
	if d.LastSeen.Before(restarted.Add(-time.Second)) {
		t.Errorf("dev1 is online with last seen %v, before the server restarted at %v: a stale state, not a new connection", d.LastSeen, restarted)
	}
	if agent.Exited() {
		t.Errorf("the agent exited while the server restarted:\n%s", agent.Stderr())
	}
}

// TestPresenceMosquitto: with an external broker (Mosquitto, from the
// shipped example configuration and ACL), the server runs no broker of its
// own and presence follows the devices' state messages: online, offline by
// last will when the agent is killed, online again; the retained states
// bring presence back after a server restart; and after Mosquitto restarts
// (forgetting everything), the agent and the server both reconnect and
// presence follows the agent again.
func TestPresenceMosquitto(t *testing.T) {
	t.Parallel()
	const serverPW, devicePW = "server-password", "dev1-password"
	m := testmosquitto.Start(t, testmosquitto.Shipped(t, map[string]string{"acme/dev1": devicePW}, map[string]string{"portholed": serverPW}))
	deviceURL, serverURL := m.URL(testmosquitto.DeviceListener), m.URL(testmosquitto.ServerListener)
	srv := newPresenceServer(t, func(data string, apiPort int) string {
		pwFile := filepath.Join(data, "broker.pw")
		if err := os.WriteFile(pwFile, []byte(serverPW+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf(`data_dir: .
listen: 127.0.0.1:%d
public_url: https://127.0.0.1:%d
broker:
  url: %s
  public_url: %s
  username: portholed
  password_file: broker.pw
relay:
  listen: 127.0.0.1:%d
log:
  level: debug
`, apiPort, apiPort, serverURL, deviceURL, FreePort(t))
	})
	state := srv.enroll(t, "dev1")
	agentConfig := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(agentConfig, []byte("broker:\n  url: "+deviceURL+"\n  password: "+devicePW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	agent := srv.runAgent(t, state, agentConfig)
	srv.waitPresence(t, "dev1", true, "after the agent connected to Mosquitto")
	srv.tableSays(t, "dev1", "online")
	if !strings.Contains(srv.proc.Stderr(), "external_broker="+serverURL) {
		t.Errorf("the server does not say it uses the external broker:\n%s", srv.proc.Stderr())
	}

	kill(t, agent)
	srv.waitPresence(t, "dev1", false, "after the agent was killed (its last will)")
	agent = srv.runAgent(t, state, agentConfig)
	srv.waitPresence(t, "dev1", true, "after the agent restarted")

	// While the server is down the agent dies; the next server learns it
	// from the retained last will.
	srv.stop(t)
	kill(t, agent)
	srv.start(t)
	srv.waitPresence(t, "dev1", false, "after a server restart, from the retained last will")
	agent = srv.runAgent(t, state, agentConfig)
	srv.waitPresence(t, "dev1", true, "after the agent restarted behind the restarted server")

	// Mosquitto restarts, forgetting every retained state: both sides
	// reconnect by themselves.
	agentUps := strings.Count(agent.Stderr(), "connected to "+deviceURL)
	serverUps := strings.Count(srv.proc.Stderr(), "connected to the MQTT broker")
	m.Restart(t)
	testwait.ForEvery(t, presenceWait, 100*time.Millisecond, "the agent to reconnect to the restarted Mosquitto", func() bool {
		return strings.Count(agent.Stderr(), "connected to "+deviceURL) > agentUps
	})
	testwait.ForEvery(t, presenceWait, 100*time.Millisecond, "the server to reconnect to the restarted Mosquitto", func() bool {
		return strings.Count(srv.proc.Stderr(), "connected to the MQTT broker") > serverUps
	})
	srv.waitPresence(t, "dev1", true, "after Mosquitto restarted")
	kill(t, agent)
	srv.waitPresence(t, "dev1", false, "after the agent was killed behind the restarted Mosquitto")
	srv.runAgent(t, state, agentConfig)
	srv.waitPresence(t, "dev1", true, "after the agent restarted behind the restarted Mosquitto")
}

// presenceServer is a portholed made by init and run by serve, with an
// administrator logged in through the CLI, a fleet "acme" and an
// enrollment token for it. It can be stopped and started again on the same
// ports with the same data.
type presenceServer struct {
	env    Env
	url    string
	config string
	proc   *Proc
	token  string // enrollment token for acme
	fp     string // the server's certificate fingerprint
	tmp    string
}

// newPresenceServer runs `portholed init` and `serve`. With config, the server runs
// from the file it returns the text of (written in the data dir, so its
// relative paths are the data dir's) instead of init's.
func newPresenceServer(t *testing.T, config func(data string, apiPort int) string) *presenceServer {
	t.Helper()
	return newPresenceServerOn(t, "", config)
}

// newPresenceServerOn is newPresenceServer on database (init's --database:
// "sqlite", a PostgreSQL DSN, or "" for init's default), with env's
// "NAME=value" pairs in the environment of the server and of the programs
// the test runs.
func newPresenceServerOn(t *testing.T, database string, config func(data string, apiPort int) string, env ...string) *presenceServer {
	t.Helper()
	return newPresenceServerAt(t, "127.0.0.1", database, config, env...)
}

// newPresenceServerAt is newPresenceServerOn whose public URL names host
// (a loopback name or address), such as localhost, where browsers allow
// passkeys (not at an IP address).
func newPresenceServerAt(t *testing.T, host, database string, config func(data string, apiPort int) string, env ...string) *presenceServer {
	t.Helper()
	tmp := t.TempDir()
	data := filepath.Join(tmp, "data")
	port := FreePort(t)
	s := &presenceServer{
		env:    Env{"HOME": tmp, "XDG_CONFIG_HOME": filepath.Join(tmp, "config")}.With(env...),
		url:    fmt.Sprintf("https://%s:%d", host, port),
		config: filepath.Join(data, "portholed.yaml"),
		tmp:    tmp,
	}
	const email, password = "ops@example.com", "correct horse battery staple"
	args := []string{"init", "--data", data, "--admin-email", email, "--password-stdin", "--public-url", s.url,
		"--broker-listen", fmt.Sprintf("127.0.0.1:%d", FreePort(t)), "--relay-listen", fmt.Sprintf("127.0.0.1:%d", FreePort(t))}
	if database != "" {
		args = append(args, "--database", database)
	}
	r := MustRun(t, s.env, password+"\n", bins.Server, args...)
	secret := regexp.MustCompile(`secret=([A-Z2-7]+)`).FindStringSubmatch(r.Stdout)
	if secret == nil {
		t.Fatalf("init printed no TOTP secret:\n%s", r.Stdout)
	}
	if config != nil {
		s.config = filepath.Join(data, "test.yaml")
		if err := os.WriteFile(s.config, []byte(config(data, port)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s.start(t)
	code, err := totp.GenerateCode(secret[1], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	MustRun(t, s.env, email+"\n"+password+"\n"+code+"\n", bins.CLI, "login", s.url)
	MustRun(t, s.env, "", bins.CLI, "fleets", "create", "acme")
	r = MustRun(t, s.env, "", bins.CLI, "enroll-token", "create", "--fleet", "acme", "--uses", "5", "--ttl", "1h")
	out := r.Stdout + r.Stderr
	token := regexp.MustCompile(`--token (\S+)`).FindStringSubmatch(out)
	fp := regexp.MustCompile(`--fingerprint (sha256:[0-9a-f]+)`).FindStringSubmatch(out)
	if token == nil || fp == nil {
		t.Fatalf("enroll-token create did not print the enroll command with token and fingerprint:\n%s", out)
	}
	s.token, s.fp = token[1], fp[1]
	return s
}

// start runs `portholed serve` and waits until it answers.
func (s *presenceServer) start(t *testing.T) {
	t.Helper()
	s.proc = Start(t, s.env, bins.Server, "serve", "--config", s.config)
	waitHealthy(t, s.proc, s.url)
}

// stop interrupts the server and waits for it to exit.
func (s *presenceServer) stop(t *testing.T) {
	t.Helper()
	s.proc.Stop(t)
}

// enroll enrolls a device into acme with the real agent and returns its
// state directory.
func (s *presenceServer) enroll(t *testing.T, name string) string {
	t.Helper()
	state := filepath.Join(s.tmp, name)
	MustRun(t, s.env, "", bins.Agent, "enroll", "--server", s.url, "--token", s.token,
		"--fingerprint", s.fp, "--name", name, "--state", state)
	return state
}

// runAgent starts `porthole-agent run` for the device in state, with the
// owner's config file config (empty: none).
func (s *presenceServer) runAgent(t *testing.T, state, config string) *Proc {
	t.Helper()
	// Without a config, sessions need no owner (consent: auto): the
	// owner's consent has tests of its own (consent_test.go). Each agent
	// answers its owner on a socket of its own.
	content := []byte("consent: auto\n")
	if config != "" {
		var err error
		if content, err = os.ReadFile(config); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(string(content), "socket:") {
		content = fmt.Appendf(content, "\nsocket: %s\n", filepath.Join(t.TempDir(), "agent.sock"))
	}
	config = filepath.Join(t.TempDir(), "agent.yaml") // an explicit --config must exist
	if err := os.WriteFile(config, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return Start(t, s.env, bins.Agent, "run", "--state", state, "--config", config)
}

// listedDevice is a row of `porthole devices --json`.
type listedDevice struct {
	Name     string    `json:"name"`
	Fleet    string    `json:"fleet"`
	Online   bool      `json:"online"`
	LastSeen time.Time `json:"last_seen"`
}

// waitPresence polls `porthole devices --json` until the device is online
// (or offline), failing the test after presenceWait.
func (s *presenceServer) waitPresence(t *testing.T, name string, online bool, when string) listedDevice {
	t.Helper()
	deadline := time.Now().Add(presenceWait)
	for {
		r := Run(t, s.env, "", bins.CLI, "devices", "--json")
		if r.Err != nil {
			t.Fatalf("porthole devices --json: %v\n%s", r.Err, r.Stderr)
		}
		var ds []listedDevice
		if err := json.Unmarshal([]byte(r.Stdout), &ds); err != nil {
			t.Fatalf("devices --json is not a JSON array: %v\n%s", err, r.Stdout)
		}
		for _, d := range ds {
			if d.Name == name && d.Online == online {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not %s %s within %v; porthole devices --json:\n%s\nserver log:\n%s",
				name, map[bool]string{true: "online", false: "offline"}[online], when, presenceWait, r.Stdout, s.proc.Stderr())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tableSays checks that `porthole devices` shows the device's STATUS
// starting with status.
func (s *presenceServer) tableSays(t *testing.T, name, status string) {
	t.Helper()
	out := MustRun(t, s.env, "", bins.CLI, "devices").Stdout
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == name {
			if f[2] != status {
				t.Errorf("porthole devices shows %s as %q; want %q:\n%s", name, f[2], status, out)
			}
			return
		}
	}
	t.Errorf("porthole devices does not list %s:\n%s", name, out)
}

// kill ends a process with SIGKILL, as a crash or a power cut would: it
// says goodbye to nobody.
func kill(t *testing.T, p *Proc) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("killing %s: %v", p.cmd.Path, err)
	}
	<-p.done
}
