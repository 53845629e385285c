package bench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	mrand "math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for the run's schema and the sessions' spread
)

// Cluster is the measurement of many interactive sessions at once on a
// deployment of two server nodes sharing one PostgreSQL database (issue
// 14): node 1 with the roles api, relay and broker, node 2 a relay only
// that reaches node 1's broker (broker.node), each relay advertising its
// own TLS port. It is not part of the default run: -only cluster asks for
// it.
const Cluster = "cluster"

// DefaultClusterPostgres is the database the cluster measurement makes a
// schema of its own in (and drops at its end): the local PostgreSQL with
// trust authentication that scripts/setup.sh starts, as the tests use it.
const DefaultClusterPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Timings of the cluster measurement's sessions.
const (
	clusterOpenTimeout = 3 * time.Minute        // for a session to reach its prompt
	clusterEchoTimeout = 10 * time.Second       // for one keystroke to come back
	clusterTypingGap   = 100 * time.Millisecond // between one session's keystrokes: a fast typist
	clusterWarmup      = 2                      // keystrokes per session not counted
)

// ClusterResult is the cluster measurement: Sessions interactive sessions
// opened at once, spread over Devices devices, each then typing Keystrokes
// keystrokes (all sessions at once, one every clusterTypingGap), through
// Porthole's two nodes and through ssh to the run's own sshd.
type ClusterResult struct {
	Sessions, Devices, Keystrokes int
	Cases                         []ClusterCase
	// Nodes are Porthole's server nodes: where its sessions were placed
	// and the CPU each spent while they ran.
	Nodes []ClusterNode
}

// ClusterCase is one client's sessions.
type ClusterCase struct {
	Tool string
	// Open is the time from the first session's start to the last
	// successful one's prompt; Ready, each successful session's time to
	// its prompt.
	Open  time.Duration
	Ready Durations
	// RTT is every counted keystroke's round trip, over all sessions.
	RTT Durations
	// Typing is how long the keystrokes took, all sessions at once;
	// HangUp, from hanging up every terminal to the last client's exit.
	Typing, HangUp time.Duration
	Opened         int // sessions that reached their prompt
	Failed         int // sessions that did not, or whose keystroke did not come back
	Errors         map[string]int
	// ServerCPU is what the server side spent from the first start to the
	// last session's end: Porthole's two nodes together, or sshd with
	// every connection's process and the shells it reaped (which are the
	// device's side). DeviceCPU is Porthole's agents with their shells.
	ServerCPU, DeviceCPU time.Duration
	// Typed is the keystrokes typed, warm-up ones included, and TypingCPU
	// the CPU time spent while they were: by the clients, the relays
	// (Porthole's nodes; none for OpenSSH) and the device's side
	// (Porthole's agents, or sshd, each with every process below it).
	Typed     int
	TypingCPU struct{ Client, Relay, Device time.Duration }
	// Killed counts clients that had not exited 10 s after their terminal
	// hung up.
	Killed int
}

// perKey is d per keystroke typed, in microseconds.
func (c ClusterCase) perKey(d time.Duration) float64 {
	return ratio(float64(d.Microseconds()), float64(c.Typed))
}

// PerSecond is the sessions opened per second, until the last one's prompt.
func (c ClusterCase) PerSecond() float64 { return ratio(float64(c.Opened), c.Open.Seconds()) }

// ClusterNode is one server node of the cluster measurement.
type ClusterNode struct {
	Name, Roles string
	Advertise   string        // relay.advertise, as sessions record it (relay_addr)
	Sessions    int           // sessions placed on its relay
	CPU         time.Duration // while the sessions ran
}

// cluster starts the two-node deployment on dsn's database, enrolls
// devices, and opens sessions interactive sessions over them at once, then
// the same number through ssh to the run's sshd.
func cluster(ctx context.Context, b *benchRun, sessions, devices, keystrokes int, dsn string) (*ClusterResult, error) {
	b.log.Info("cluster: starting two server nodes on PostgreSQL", "devices", devices)
	c, err := startCluster(ctx, b.log, filepath.Join(b.dir, "cluster"), b.porthole.bins, dsn, devices)
	if c != nil {
		defer c.close()
	}
	if err != nil {
		return nil, err
	}
	res := &ClusterResult{Sessions: sessions, Devices: devices, Keystrokes: keystrokes}

	before, err := c.spread(ctx)
	if err != nil {
		return nil, err
	}
	cpu0, agents0 := c.nodeCPU(), c.agentCPU()
	b.log.Info("cluster: porthole sessions", "sessions", sessions, "devices", devices, "keystrokes each", keystrokes)
	var nodePIDs, agentPIDs []int
	for _, n := range c.nodes {
		nodePIDs = append(nodePIDs, n.proc.pid())
	}
	for _, a := range c.agents {
		agentPIDs = append(agentPIDs, a.pid())
	}
	pc := runSessions(ctx, toolPorthole, sessions, keystrokes, func(i int) *exec.Cmd {
		return c.p.cmd("ssh", "-t", c.devices[i%len(c.devices)], "--", echoRemote)
	}, nodePIDs, agentPIDs)
	b.log.Info("cluster: porthole sessions done", "opened", pc.Opened, "failed", pc.Failed, "all at the prompt", pc.Open, "typing", pc.Typing, "hang-up", pc.HangUp)
	cpu1, agents1 := c.nodeCPU(), c.agentCPU()
	after, err := c.spread(ctx)
	if err != nil {
		return nil, err
	}
	for i, n := range c.nodes {
		node := ClusterNode{Name: n.name, Roles: n.roles, Advertise: n.advertise,
			Sessions: after[n.advertise] - before[n.advertise], CPU: cpu1[i] - cpu0[i]}
		pc.ServerCPU += node.CPU
		res.Nodes = append(res.Nodes, node)
	}
	pc.DeviceCPU = agents1 - agents0
	res.Cases = append(res.Cases, pc)
	if err := ctx.Err(); err != nil {
		return res, err
	}

	b.openssh.settle()
	b.log.Info("cluster: OpenSSH sessions", "sessions", sessions)
	sshd0, err := b.openssh.cpu()
	if err != nil {
		return res, err
	}
	oc := runSessions(ctx, toolOpenSSH, sessions, keystrokes, func(int) *exec.Cmd {
		return b.openssh.ssh([]string{"-t"}, echoRemote)
	}, nil, []int{b.openssh.sshd.pid()})
	b.log.Info("cluster: OpenSSH sessions done", "opened", oc.Opened, "failed", oc.Failed, "all at the prompt", oc.Open, "typing", oc.Typing, "hang-up", oc.HangUp)
	b.openssh.settle()
	sshd1, err := b.openssh.cpu()
	if err != nil {
		return res, err
	}
	oc.ServerCPU = sshd1 - sshd0
	res.Cases = append(res.Cases, oc)
	return res, ctx.Err()
}

// runSessions starts n interactive sessions at once, each mk(i) on a
// terminal of its own running echoRemote, waits until each is at its
// prompt (or failed), then has every open session type keystrokes bytes,
// all sessions at once, each a keystroke every clusterTypingGap from a
// random start, timing each round trip; then it hangs up every terminal.
// The CPU time spent while they type is read from the clients, the relay
// processes and the device's side's processes (each with every process
// below it).
func runSessions(ctx context.Context, tool string, n, keystrokes int, mk func(i int) *exec.Cmd, relay, device []int) ClusterCase {
	c := ClusterCase{Tool: tool, Errors: map[string]int{}}
	var mu sync.Mutex
	fail := func(words string) {
		mu.Lock()
		defer mu.Unlock()
		c.Failed++
		c.Errors[words]++
	}
	open := make([]*ptySession, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			t0 := time.Now()
			s, err := startPTY(mk(i))
			if err != nil {
				fail("starting the client: " + err.Error())
				return
			}
			if err := s.waitFor([]byte("BENCH-READY"), clusterOpenTimeout); err != nil {
				fail(sessionWords(s, err))
				s.close()
				return
			}
			mu.Lock()
			defer mu.Unlock()
			c.Ready = append(c.Ready, time.Since(t0))
			c.Open = max(c.Open, time.Since(start))
			c.Opened++
			open[i] = s
		})
	}
	wg.Wait()

	var clients []int
	for _, s := range open {
		if s != nil {
			clients = append(clients, s.cmd.Process.Pid)
			c.Typed += clusterWarmup + keystrokes
		}
	}
	cpu0 := [3]time.Duration{treeCPU(clients), treeCPU(relay), treeCPU(device)}
	t0 := time.Now()
	for i, s := range open {
		if s == nil || ctx.Err() != nil {
			continue
		}
		wg.Go(func() {
			// A random start spreads the sessions' keystrokes over the gap.
			time.Sleep(mrand.N(clusterTypingGap))
			var rtts Durations
			for k := range clusterWarmup + keystrokes {
				rtt, err := s.echo(byte('a'+(i+k)%26), clusterEchoTimeout)
				if err != nil {
					fail("echo: " + err.Error())
					return
				}
				if k >= clusterWarmup {
					rtts = append(rtts, rtt)
				}
				time.Sleep(clusterTypingGap - min(rtt, clusterTypingGap))
			}
			mu.Lock()
			defer mu.Unlock()
			c.RTT = append(c.RTT, rtts...)
		})
	}
	wg.Wait()
	c.Typing = time.Since(t0)
	c.TypingCPU.Client = treeCPU(clients) - cpu0[0]
	c.TypingCPU.Relay = treeCPU(relay) - cpu0[1]
	c.TypingCPU.Device = treeCPU(device) - cpu0[2]
	t0 = time.Now()
	for _, s := range open {
		if s != nil {
			wg.Go(func() {
				if s.hangUp() {
					mu.Lock()
					defer mu.Unlock()
					c.Killed++
				}
			})
		}
	}
	wg.Wait()
	c.HangUp = time.Since(t0)
	return c
}

// sessionWords are a session's failure in few words, to be counted: the
// client's last line if it exited, else what went wrong.
func sessionWords(s *ptySession, err error) string {
	if s.cmd.ProcessState != nil || strings.Contains(err.Error(), "exited before") {
		if words := lastLine(string(s.seen)); words != "" {
			return "exited: " + words
		}
		return "exited without a word"
	}
	return fmt.Sprintf("no prompt within %v", clusterOpenTimeout)
}

// treeCPU is the CPU time of the processes roots and every live process
// below them, each with the children it has reaped: a process that exits
// in between moves from one count to its parent's.
func treeCPU(roots []int) time.Duration {
	if len(roots) == 0 {
		return 0
	}
	children := processChildren()
	var total time.Duration
	queue := slices.Clone(roots)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if t, err := cpuTime(p); err == nil {
			total += t
		}
		queue = append(queue, children[p]...)
	}
	return total
}

// clusterDeploy is the cluster measurement's deployment.
type clusterDeploy struct {
	log     *slog.Logger
	p       *porthole // node 1's API and the CLI logged in there
	nodes   []*clusterNodeProc
	agents  []*proc
	devices []string // their names

	db     *sql.DB // the base database, for the run's schema
	schema string
	store  *sql.DB // the run's schema, as the nodes see it
}

// clusterNodeProc is one running portholed of the deployment.
type clusterNodeProc struct {
	name, roles, advertise string
	proc                   *proc
}

// startCluster creates a schema of the run's own in base's database,
// initialises a server there with its data directory in dir (which both
// nodes share: the keys), starts node 1 (api, relay, broker) and node 2
// (relay, reaching node 1's broker), waits for both relays to register,
// logs in and enrolls devices with real agents. The deployment returned,
// also with an error, is the caller's to close.
func startCluster(ctx context.Context, log *slog.Logger, dir string, bins binaries, base string, devices int) (_ *clusterDeploy, err error) {
	c := &clusterDeploy{log: log}
	db, err := sql.Open("pgx", base)
	if err != nil {
		return nil, fmt.Errorf("-cluster-pg %q: %w", base, err)
	}
	c.db = db
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		return c, fmt.Errorf("PostgreSQL at %s does not answer (scripts/setup.sh starts one; -cluster-pg names another): %w", base, err)
	}
	schema := "porthole_bench_" + randomHex(8)
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		return c, fmt.Errorf("creating schema %s: %w", schema, err)
	}
	c.schema = schema
	dsn, err := withSearchPath(base, schema)
	if err != nil {
		return c, err
	}
	if c.store, err = sql.Open("pgx", dsn); err != nil {
		return c, err
	}

	var api1, broker1, relay1, api2, relay2 int
	for _, port := range []*int{&api1, &broker1, &relay1, &api2, &relay2} {
		if *port, err = freePort(); err != nil {
			return c, err
		}
	}
	p := &porthole{log: log, dir: dir, bins: bins, dataDir: filepath.Join(dir, "data"),
		apiPort: api1, brokerPort: broker1, relayPort: relay1}
	p.url = fmt.Sprintf("https://127.0.0.1:%d", api1)
	p.publicURL = p.url
	c.p = p
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return c, err
	}
	out, err := runOutput(ctx, baseEnv(dir), adminPassword+"\n", bins.server, "init", "--data", p.dataDir,
		"--admin-email", adminEmail, "--password-stdin", "--public-url", p.url, "--database", dsn,
		"--broker-listen", fmt.Sprintf("127.0.0.1:%d", broker1), "--relay-listen", fmt.Sprintf("127.0.0.1:%d", relay1))
	if err != nil {
		return c, err
	}
	secret := regexp.MustCompile(`secret=([A-Z2-7]+)`).FindStringSubmatch(out)
	fp := regexp.MustCompile(`fingerprint: (sha256:[0-9a-f]+)`).FindStringSubmatch(out)
	if secret == nil || fp == nil {
		return c, fmt.Errorf("portholed init printed no TOTP secret or TLS fingerprint:\n%s", out)
	}
	p.fp = fp[1]

	// Both nodes share the data directory (the keys) and the database;
	// each has its own config and ports. Node 2 serves the relay on its
	// own TLS port (listen), which it advertises; it answers the API
	// with 404.
	start := func(name, roles, config string, advertisePort int) (*clusterNodeProc, error) {
		path := filepath.Join(p.dataDir, name+".yaml")
		if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
			return nil, err
		}
		n := &clusterNodeProc{name: name, roles: roles, advertise: fmt.Sprintf("127.0.0.1:%d", advertisePort)}
		n.proc, err = startProc("portholed "+name, filepath.Join(dir, name+".log"), baseEnv(dir), bins.server, "serve", "--config", path)
		if err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, n)
		return n, nil
	}
	node1, err := start("node1", "api, relay, broker", fmt.Sprintf(`data_dir: .
database: %s
listen: 127.0.0.1:%d
public_url: %s
roles: [api, relay, broker]
broker:
  listen: 127.0.0.1:%d
relay:
  listen: 127.0.0.1:%d
  advertise: 127.0.0.1:%d
log:
  level: warn
`, dsn, api1, p.url, broker1, relay1, api1), api1)
	if err != nil {
		return c, err
	}
	p.server = node1.proc
	if err := p.waitHealthy(ctx, 60*time.Second); err != nil {
		return c, err
	}
	node2, err := start("node2", "relay", fmt.Sprintf(`data_dir: .
database: %s
listen: 127.0.0.1:%d
public_url: %s
roles: [relay]
broker:
  node: mqtts://127.0.0.1:%d
relay:
  listen: 127.0.0.1:%d
  advertise: 127.0.0.1:%d
log:
  level: warn
`, dsn, api2, p.url, broker1, relay2, api2), api2)
	if err != nil {
		return c, err
	}
	if err := c.waitRelays(ctx, node2.proc, 60*time.Second); err != nil {
		return c, err
	}

	if err := p.login(ctx, secret[1], adminPassword); err != nil {
		return c, err
	}
	log.Info("cluster: enrolling devices", "devices", devices)
	c.agents, err = p.addDevices(ctx, devices)
	if err != nil {
		return c, err
	}
	for i := range devices {
		c.devices = append(c.devices, loadDevice(i+1))
	}
	return c, nil
}

// waitRelays waits until every node's relay has registered in the store.
func (c *clusterDeploy) waitRelays(ctx context.Context, last *proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var addrs []string
		rows, err := c.store.QueryContext(ctx, "SELECT addr FROM relays")
		if err == nil {
			for rows.Next() {
				var a string
				if rows.Scan(&a) == nil {
					addrs = append(addrs, a)
				}
			}
			err = errors.Join(rows.Err(), rows.Close())
		}
		if !slices.ContainsFunc(c.nodes, func(n *clusterNodeProc) bool { return !slices.Contains(addrs, n.advertise) }) {
			return nil
		}
		for _, n := range c.nodes {
			if n.proc.exited() {
				return n.proc.failed("exited while starting")
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return last.failed(fmt.Sprintf("the relays registered within %v are %v (%v)", timeout, addrs, err))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// spread counts the sessions placed on each relay, by its advertised
// address, as the sessions record it.
func (c *clusterDeploy) spread(ctx context.Context) (map[string]int, error) {
	rows, err := c.store.QueryContext(ctx, "SELECT relay_addr, count(*) FROM sessions GROUP BY relay_addr")
	if err != nil {
		return nil, fmt.Errorf("counting sessions per relay: %w", err)
	}
	defer rows.Close()
	m := map[string]int{}
	for rows.Next() {
		var addr string
		var n int
		if err := rows.Scan(&addr, &n); err != nil {
			return nil, err
		}
		m[addr] = n
	}
	return m, rows.Err()
}

// nodeCPU is each node's CPU time so far, in c.nodes' order (0 for one
// that cannot be read).
func (c *clusterDeploy) nodeCPU() []time.Duration {
	cpu := make([]time.Duration, len(c.nodes))
	for i, n := range c.nodes {
		if t, err := cpuTime(n.proc.pid()); err == nil {
			cpu[i] = t
		} else {
			c.log.Warn("cluster: reading a node's CPU time", "node", n.name, "err", err)
		}
	}
	return cpu
}

// agentCPU is the CPU time of every agent so far, with the shells they
// reaped.
func (c *clusterDeploy) agentCPU() time.Duration {
	var total time.Duration
	for _, a := range c.agents {
		if t, err := cpuTime(a.pid()); err == nil {
			total += t
		}
	}
	return total
}

// close stops the agents and the nodes, and drops the run's schema.
func (c *clusterDeploy) close() {
	for _, a := range c.agents {
		if err := a.stop(10 * time.Second); err != nil {
			c.log.Warn("stopping a cluster device's agent", "err", err)
		}
	}
	for _, n := range slices.Backward(c.nodes) {
		if err := n.proc.stop(60 * time.Second); err != nil {
			c.log.Warn("stopping a cluster node", "node", n.name, "err", err)
		}
	}
	if c.store != nil {
		c.store.Close()
	}
	if c.schema != "" {
		if _, err := c.db.ExecContext(context.Background(), "DROP SCHEMA "+c.schema+" CASCADE"); err != nil {
			c.log.Warn("dropping the cluster's schema", "schema", c.schema, "err", err)
		}
	}
	if c.db != nil {
		c.db.Close()
	}
}

// withSearchPath adds search_path=schema to a postgres:// URL.
func withSearchPath(dsn, schema string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("-cluster-pg %q is not a postgres:// URL", dsn)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b)
}

// markdown writes the cluster tables.
func (r *ClusterResult) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "### Cluster: %d interactive sessions at once, 2 server nodes on PostgreSQL, %d devices, %d keystrokes per session\n\n",
		r.Sessions, r.Devices, r.Keystrokes)
	b.WriteString("| tool | sessions/s | all at the prompt | prompt, median | p99 | echo, median | p99 | vs OpenSSH direct (median / p99) | server CPU-s | device CPU-s | failed |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	var base ClusterCase
	for _, c := range r.Cases {
		if c.Tool == toolOpenSSH {
			base = c
		}
	}
	for _, c := range r.Cases {
		vs := fmt.Sprintf("%s / %s", fmtRatio(ratio(float64(c.RTT.Median()), float64(base.RTT.Median()))),
			fmtRatio(ratio(float64(c.RTT.P99()), float64(base.RTT.P99()))))
		device := fmt.Sprintf("%.1f", c.DeviceCPU.Seconds())
		if c.Tool == toolOpenSSH {
			device = "¹"
		}
		fmt.Fprintf(b, "| %s | %.1f | %s | %s | %s | %s | %s | %s | %.1f | %s | %d of %d |\n", c.Tool, c.PerSecond(),
			fmtDur(c.Open), fmtDur(c.Ready.Median()), fmtDur(c.Ready.P99()), fmtDur(c.RTT.Median()), fmtDur(c.RTT.P99()),
			vs, c.ServerCPU.Seconds(), device, c.Failed, r.Sessions)
	}
	b.WriteString("\n¹ sshd's column includes the shells it started, the device's side.\n")
	b.WriteString("\n| tool | keystrokes typed | CPU-µs per keystroke while typing: clients | relays | device side | all | clients killed 10 s after hang-up |\n|---|--:|--:|--:|--:|--:|--:|\n")
	for _, c := range r.Cases {
		relay := fmt.Sprintf("%.0f", c.perKey(c.TypingCPU.Relay))
		if c.Tool == toolOpenSSH {
			relay = "–"
		}
		fmt.Fprintf(b, "| %s | %d | %.0f | %s | %.0f | %.0f | %d |\n", c.Tool, c.Typed, c.perKey(c.TypingCPU.Client), relay,
			c.perKey(c.TypingCPU.Device), c.perKey(c.TypingCPU.Client+c.TypingCPU.Relay+c.TypingCPU.Device), c.Killed)
	}
	if len(r.Nodes) > 0 {
		b.WriteString("\n| Porthole node | roles | advertises | sessions placed | CPU-s while they ran |\n|---|---|---|--:|--:|\n")
		for _, n := range r.Nodes {
			fmt.Fprintf(b, "| %s | %s | %s | %d | %.1f |\n", n.Name, n.Roles, n.Advertise, n.Sessions, n.CPU.Seconds())
		}
	}
	for _, c := range r.Cases {
		for _, w := range slices.Sorted(maps.Keys(c.Errors)) {
			fmt.Fprintf(b, "\n%s failures (%d×): %s", c.Tool, c.Errors[w], w)
		}
	}
	b.WriteString("\n\n")
}
