package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/internal/testmosquitto"
	"github.com/porthole/porthole/internal/tests3"
	"github.com/porthole/porthole/internal/testwait"
	"github.com/porthole/porthole/store/storetest"
)

// cluster is Porthole scaled out on this machine: API nodes behind a real
// HAProxy (TLS passed through, so that ALPN routing still works at the
// nodes), relay nodes each reached at its own address, PostgreSQL, and
// Mosquitto as the external broker.
type cluster struct {
	env      Env
	url      string // the load balancer's
	tmp      string
	apis     []*clusterNode
	relays   []*clusterNode
	mosq     *testmosquitto.Broker
	devicePW string
}

type clusterNode struct {
	name   string
	config string
	url    string // its own TLS port
	proc   *Proc
}

// newCluster starts it, with an administrator logged in through the load
// balancer and a fleet "acme".
func newCluster(t *testing.T, apis, relays int) *cluster {
	t.Helper()
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("CI") == "true" || os.Getenv("PORTHOLE_REQUIRE_PG") == "1" {
			t.Fatal("needs haproxy, which scripts/setup.sh installs")
		}
		t.Skip("needs haproxy (scripts/setup.sh installs it)")
	}
	const serverPW = "server-password"
	c := &cluster{tmp: t.TempDir(), devicePW: "dev1-password"}
	// Recordings go to object storage that every API node shares.
	s3 := tests3.Start(t)
	bucket := s3.Bucket(t)
	c.env = Env{"HOME": c.tmp, "XDG_CONFIG_HOME": filepath.Join(c.tmp, "config")}
	c.mosq = testmosquitto.Start(t, testmosquitto.Shipped(t, map[string]string{"acme/dev1": c.devicePW}, map[string]string{"portholed": serverPW}))
	lb := FreePort(t)
	c.url = fmt.Sprintf("https://127.0.0.1:%d", lb)
	data := filepath.Join(c.tmp, "data")
	dsn := storetest.PostgresDSN(t)
	const email, password = "ops@example.com", "correct horse battery staple"
	r := MustRun(t, c.env, password+"\n", bins.Server, "init", "--data", data, "--admin-email", email, "--password-stdin",
		"--public-url", c.url, "--database", dsn)
	secret := regexp.MustCompile(`secret=([A-Z2-7]+)`).FindStringSubmatch(r.Stdout)
	if secret == nil {
		t.Fatalf("init printed no TOTP secret:\n%s", r.Stdout)
	}
	if err := os.WriteFile(filepath.Join(data, "broker.pw"), []byte(serverPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The API nodes share the data directory (the signing keys) and every
	// node the database; each has its own ports and config. A relay node
	// gets a data directory of its own, made on an API node's as an
	// operator would: public keys, the TLS identity, the node secret and
	// its relay's host certificate, no signing key.
	node := func(name, roles string) *clusterNode {
		port := FreePort(t)
		dir := data
		if roles != "api" {
			dir = filepath.Join(c.tmp, name)
			MustRun(t, c.env, "", bins.Server, "init-node", "--from", data, "--data", dir, "--relay-host", "127.0.0.1")
			for _, key := range []string{"control_key", "user_ca", "host_ca"} {
				if _, err := os.Stat(filepath.Join(dir, key)); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("the data dir init-node made for %s holds %s (%v)", name, key, err)
				}
			}
			if err := os.WriteFile(filepath.Join(dir, "broker.pw"), []byte(serverPW+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		n := &clusterNode{name: name, config: filepath.Join(dir, name+".yaml"), url: fmt.Sprintf("https://127.0.0.1:%d", port)}
		cfg := fmt.Sprintf(`data_dir: .
database: %s
listen: 127.0.0.1:%d
public_url: %s
roles: [%s]
broker:
  url: %s
  public_url: %s
  username: portholed
  password_file: broker.pw
  share_group: cluster
relay:
  listen: 127.0.0.1:%d
  advertise: 127.0.0.1:%d
recordings: s3://%s/cluster
recordings_s3:
  endpoint: %s
  region: %s
  access_key_id: %s
log:
  level: debug
`, dsn, port, c.url, roles, c.mosq.URL(testmosquitto.ServerListener), c.mosq.URL(testmosquitto.DeviceListener), FreePort(t), port,
			bucket, s3.Endpoint, tests3.Region, tests3.AccessKey)
		if err := os.WriteFile(n.config, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		n.proc = Start(t, c.env.With("AWS_SECRET_ACCESS_KEY="+tests3.SecretKey), bins.Server, "serve", "--config", n.config)
		waitHealthy(t, n.proc, n.url)
		return n
	}
	for i := range apis {
		c.apis = append(c.apis, node(fmt.Sprintf("api%d", i+1), "api"))
	}
	for i := range relays {
		c.relays = append(c.relays, node(fmt.Sprintf("relay%d", i+1), "relay"))
	}

	// HAProxy passes TCP through; a node that refuses connections is
	// taken out at once, and a connection it refused is sent to another.
	var servers strings.Builder
	for _, n := range c.apis {
		fmt.Fprintf(&servers, "  server %s %s check inter 300ms fall 1 rise 2\n", n.name, strings.TrimPrefix(n.url, "https://"))
	}
	lbConfig := filepath.Join(c.tmp, "haproxy.cfg")
	if err := os.WriteFile(lbConfig, fmt.Appendf(nil, `global
  maxconn 1000
defaults
  mode tcp
  timeout connect 1s
  timeout client 1h
  timeout server 1h
  retries 3
  option redispatch
frontend porthole
  bind 127.0.0.1:%d
  default_backend api
backend api
  balance roundrobin
%s`, lb, servers.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	lbProc := Start(t, c.env, haproxy, "-f", lbConfig, "-db")
	waitHealthy(t, lbProc, c.url)

	code, err := totp.GenerateCode(secret[1], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	MustRun(t, c.env, email+"\n"+password+"\n"+code+"\n", bins.CLI, "login", c.url)
	MustRun(t, c.env, "", bins.CLI, "fleets", "create", "acme")
	return c
}

// enroll enrolls name through the load balancer and starts its agent,
// which idles on Mosquitto.
func (c *cluster) enroll(t *testing.T, name string) *Proc {
	t.Helper()
	r := MustRun(t, c.env, "", bins.CLI, "enroll-token", "create", "--fleet", "acme", "--uses", "1", "--ttl", "1h")
	out := r.Stdout + r.Stderr
	token := regexp.MustCompile(`--token (\S+)`).FindStringSubmatch(out)
	fp := regexp.MustCompile(`--fingerprint (sha256:[0-9a-f]+)`).FindStringSubmatch(out)
	if token == nil || fp == nil {
		t.Fatalf("enroll-token create printed no enroll command:\n%s", out)
	}
	state := filepath.Join(c.tmp, name)
	MustRun(t, c.env, "", bins.Agent, "enroll", "--server", c.url, "--token", token[1], "--fingerprint", fp[1], "--name", name, "--state", state)
	config := filepath.Join(c.tmp, name+".yaml")
	content := fmt.Sprintf("consent: auto\nsocket: %s\nbroker:\n  url: %s\n  password: %s\n",
		filepath.Join(c.tmp, name+".sock"), c.mosq.URL(testmosquitto.DeviceListener), c.devicePW)
	if err := os.WriteFile(config, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return Start(t, c.env, bins.Agent, "run", "--state", state, "--config", config)
}

// reach runs `porthole ssh device -- echo ok` until it works and returns
// how long that took from since.
func (c *cluster) reach(t *testing.T, device string, since time.Time, what string) time.Duration {
	t.Helper()
	var last Result
	WaitFor(t, 30*time.Second, device+" to run a command "+what, func() bool {
		last = Run(t, c.env, "", bins.CLI, "ssh", device, "--", "echo ok")
		return last.Stdout == "ok\n"
	})
	return time.Since(since)
}

// TestClusterNodeDeaths: two API nodes behind HAProxy and two relay nodes
// on one PostgreSQL database, Mosquitto and an S3 server. Each kind of
// node is killed (SIGKILL, as a crash would) in the middle of the work:
// engineers reach the device again within 5 s, a session on the relay
// that died ends with words the engineer reads, the device stays online,
// every session's recording ends complete in the bucket after the agent's
// retries, and the audit log still verifies.
func TestClusterNodeDeaths(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, 2)
	agent := c.enroll(t, "dev1")
	c.reach(t, "dev1", time.Now(), "once the cluster is up")

	// An API node dies: HAProxy sends the next connections to the other.
	killed := time.Now()
	kill(t, c.apis[0].proc)
	back := c.reach(t, "dev1", killed, "after an API node died")
	t.Logf("an engineer reached dev1 %v after an API node died", back.Round(time.Millisecond))
	if back > 5*time.Second {
		t.Errorf("an engineer reached dev1 only %v after an API node died; want within 5 s", back.Round(time.Millisecond))
	}

	// A relay node dies under a running session: the session ends with
	// the device's words, and the next one is placed on the live relay.
	during := longCommand(t, c.env, "dev1")
	started := regexp.MustCompile(`session=(ses_\w+) .*command="echo started`).FindAllStringSubmatch(agent.Stderr(), -1)
	if len(started) == 0 {
		t.Fatalf("the agent's log shows no long command:\n%s", agent.Stderr())
	}
	id := started[len(started)-1][1]
	// Every node logs what it hears of the session (its states come to
	// any node's shared subscription): the carrier is the relay where the
	// device registered it.
	registered := regexp.MustCompile(`msg="session registered" component=relay .*session=` + id + `\b`)
	var carrier *clusterNode
	WaitFor(t, 10*time.Second, "a relay node to carry session "+id, func() bool {
		for _, n := range c.relays {
			if registered.MatchString(n.proc.Stderr()) {
				carrier = n
				return true
			}
		}
		return false
	})
	killed = time.Now()
	kill(t, carrier.proc)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("porthole ssh whose relay died said:\n%s\nthe agent's log:\n%s\nthe live relay's log:\n%s", during.Stderr(), tail(agent.Stderr(), 4000),
				tail(c.relays[0].proc.Stderr()+c.relays[1].proc.Stderr(), 4000))
		}
	})
	WaitFor(t, 30*time.Second, "the session on the dead relay to end", during.Exited)
	if words := regexp.MustCompile(`dev1 lost its connection to the relay|dev1 dropped off the relay|lost the connection to the relay`); !words.MatchString(during.Stderr()) {
		t.Errorf("porthole ssh whose relay node died said:\n%s\nwant words matching %q", during.Stderr(), words)
	}
	back = c.reach(t, "dev1", killed, "after its relay node died")
	t.Logf("an engineer reached dev1 again %v after the relay node carrying its session died", back.Round(time.Millisecond))
	if back > 5*time.Second {
		t.Errorf("an engineer reached dev1 only %v after a relay node died; want within 5 s", back.Round(time.Millisecond))
	}

	// The device stayed online, and nothing the nodes wrote was lost.
	out := MustRun(t, c.env, "", bins.CLI, "devices").Stdout
	if !regexp.MustCompile(`(?m)^dev1\s+\S+\s+online`).MatchString(out) {
		t.Errorf("dev1 is not online after the deaths:\n%s", out)
	}
	MustRun(t, c.env, "", bins.CLI, "audit", "--verify")
	eng := newEngineer(t, &presenceServer{env: c.env, url: c.url})
	sessions, err := eng.api.Sessions(t.Context(), apiclient.SessionFilter{Fleet: "acme", Device: "dev1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sessions {
		if s.ActiveAt.IsZero() {
			continue // never reached the device: nothing recorded
		}
		testwait.ForEvery(t, 30*time.Second, 100*time.Millisecond, "the recording of "+s.ID+" complete in the bucket", func() bool {
			r, err := eng.api.Recording(t.Context(), s.ID)
			return err == nil && r.Complete
		})
	}
}
