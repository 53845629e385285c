package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/porthole/porthole/apiclient"
)

// IdleResult is what idle devices cost the server, against what idle
// reverse-tunnel clients cost an OpenSSH pivot.
type IdleResult struct {
	Devices int
	// Enroll and Connect are how long enrolling the simulated devices
	// through the API, and connecting them for the first time (at most
	// connectParallel at once), took.
	Enroll, Connect time.Duration
	// RSSBefore and RSSAfter are portholed's resident memory with only the
	// real device connected and with every simulated one connected too;
	// Heap, Stack and Goroutines are the growth of what its Go runtime
	// reports (/metrics).
	RSSBefore, RSSAfter int64
	Heap, Stack         int64
	Goroutines          int64

	// Restart: portholed stopped (Stop, with every device recorded offline)
	// and started again (Start, until /healthz answers); Back is from the
	// moment the stop began until the last device was connected and
	// subscribed again, BackAfterStart from the new process's start.
	// StoreOnline is when the API showed them all online again (zero if
	// not checked). Failures are connection attempts refused or failed
	// during the storm. RSSRestart is portholed's memory afterwards.
	Stop, Start, Back, BackAfterStart, StoreOnline time.Duration
	BackCount                                      int
	Failures                                       int64
	FailureKinds                                   map[string]int64
	RSSRestart                                     int64

	// The OpenSSH pivot: SSHClients idle `ssh -N -R` clients, and the
	// growth of sshd's memory (PSS of all its processes) they caused.
	SSHClients          int
	SSHBefore, SSHAfter int64
	// AgentRSS and SSHClientRSS are what the device side costs: an idle
	// porthole-agent against one idle ssh -N -R client.
	AgentRSS, SSHClientRSS int64
	// AgentAnon and AgentFile split AgentRSS: the agent's own memory, and
	// the pages of its binary that are mapped in (clean, shared and
	// reclaimable, but counted).
	AgentAnon, AgentFile int64
	// AgentARM64 is the size of porthole-agent for linux/arm64 as `make
	// build` makes it (stripped), what a small device stores.
	AgentARM64 int64
}

// PerDevice is portholed's resident memory growth per idle device.
func (r IdleResult) PerDevice() float64 {
	return ratio(float64(r.RSSAfter-r.RSSBefore), float64(r.Devices))
}

// PerSSHClient is sshd's memory growth per idle reverse-tunnel client.
func (r IdleResult) PerSSHClient() float64 {
	return ratio(float64(r.SSHAfter-r.SSHBefore), float64(r.SSHClients))
}

// connectParallel bounds the first connections of the simulated devices;
// after a restart they come back on their own backoff, unbounded.
const connectParallel = 32

// idleCost enrolls and connects n simulated devices, measures portholed's
// memory, restarts portholed and times the reconnection storm; then it
// measures m idle `ssh -N -R` clients on the OpenSSH side.
func idleCost(ctx context.Context, b *benchRun, n, m int, settle time.Duration) (*IdleResult, error) {
	p := b.porthole
	r := &IdleResult{Devices: n, SSHClients: m}
	var err error
	if r.AgentRSS, err = rss(p.agent.pid()); err != nil {
		return nil, err
	}
	status := fmt.Sprintf("/proc/%d/status", p.agent.pid())
	if r.AgentAnon, err = memField(status, "RssAnon"); err != nil {
		return nil, err
	}
	if r.AgentFile, err = memField(status, "RssFile"); err != nil {
		return nil, err
	}
	if r.AgentARM64, err = agentSizeARM64(ctx, b.dir); err != nil {
		return nil, err
	}
	idle, err := b.idleDevices(ctx, "sim", n, settle)
	if err != nil {
		return nil, err
	}
	defer idle.close()
	fleet := idle.fleet
	r.Enroll, r.Connect = idle.enroll, idle.connect
	r.RSSBefore, r.RSSAfter = idle.before.rss, idle.after.rss
	r.Heap, r.Stack = idle.after.heap-idle.before.heap, idle.after.stack-idle.before.stack
	r.Goroutines = idle.after.goroutines - idle.before.goroutines

	b.log.Info("idle devices: restarting portholed", "devices", n)
	failures0, kinds0 := fleet.failures.Load(), fleet.failureKinds()
	stopAt := time.Now()
	stopTook, startedAt, err := p.restartServer(ctx)
	if err != nil {
		return nil, err
	}
	readyAt := time.Now()
	r.Stop, r.Start = stopTook, readyAt.Sub(startedAt)
	deadline := readyAt.Add(5 * time.Minute)
	for {
		count, last := fleet.backSince(stopAt)
		r.BackCount = count
		if count == n {
			r.Back, r.BackAfterStart = last.Sub(stopAt), last.Sub(startedAt)
			break
		}
		if time.Now().After(deadline) {
			b.log.Warn("not every device came back within 5 min", "back", count, "of", n)
			break
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return nil, err
		}
	}
	r.Failures = fleet.failures.Load() - failures0
	r.FailureKinds = fleet.failureKinds()
	for k, n := range kinds0 {
		r.FailureKinds[k] -= n
	}
	if r.BackCount == n {
		if d, err := p.waitAllOnline(ctx, n+1, stopAt, time.Minute); err == nil {
			r.StoreOnline = d
		} else {
			b.log.Warn("the server's device list", "err", err)
		}
	}
	if err := sleepCtx(ctx, settle); err != nil {
		return nil, err
	}
	if r.RSSRestart, err = rss(p.server.pid()); err != nil {
		return nil, err
	}
	idle.close()

	if m > 0 {
		b.log.Info("idle reverse tunnels on OpenSSH", "clients", m)
		if err := b.openssh.idleTunnels(ctx, m, settle, r); err != nil {
			r.SSHClients = 0 // what Porthole's side measured stands
			return r, fmt.Errorf("idle reverse tunnels on OpenSSH: %w", err)
		}
	}
	return r, nil
}

// idleRun is a crowd of simulated devices connected to portholed, with
// its memory before and after they came.
type idleRun struct {
	fleet           *simFleet
	stop            context.CancelFunc
	enroll, connect time.Duration
	before, after   memStat
}

// idleDevices enrolls n simulated devices named PREFIX-NNNNNN, reads
// portholed's memory, connects them all (connectParallel at a time), waits
// settle and reads it again. The devices stay connected, reconnecting as
// agents do, until close.
func (b *benchRun) idleDevices(ctx context.Context, prefix string, n int, settle time.Duration) (_ *idleRun, err error) {
	p := b.porthole
	if limit := raiseFileLimit(uint64(2*n + 4096)); limit < uint64(n+1024) {
		return nil, fmt.Errorf("this process may open only %d files, too few for %d devices: raise `ulimit -n` (bench/run.sh does as far as it may)", limit, n)
	}
	b.log.Info("idle devices: enrolling", "devices", n)
	r := &idleRun{stop: func() {}}
	t0 := time.Now()
	if r.fleet, err = enrollSimDevices(ctx, p, prefix, n, 4); err != nil {
		return nil, err
	}
	r.enroll = time.Since(t0)
	if err := sleepCtx(ctx, settle); err != nil {
		return nil, err
	}
	if r.before, err = p.memory(ctx); err != nil {
		return nil, err
	}

	b.log.Info("idle devices: connecting", "devices", n)
	var simCtx context.Context
	simCtx, r.stop = context.WithCancel(ctx)
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	t0 = time.Now()
	if err := r.fleet.start(simCtx, connectParallel, 5*time.Minute); err != nil {
		return nil, fmt.Errorf("connecting the simulated devices: %w", err)
	}
	r.connect = time.Since(t0)
	if err := sleepCtx(ctx, settle); err != nil {
		return nil, err
	}
	if r.after, err = p.memory(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// close disconnects the simulated devices and waits for their goroutines.
// It is safe to call twice.
func (r *idleRun) close() {
	r.stop()
	r.fleet.wait()
}

// memStat is one reading of portholed's memory.
type memStat struct {
	rss, heap, stack, goroutines int64
}

// memory reads portholed's resident memory from /proc and its Go runtime's
// figures from /metrics.
func (p *porthole) memory(ctx context.Context) (memStat, error) {
	var m memStat
	var err error
	if m.rss, err = rss(p.server.pid()); err != nil {
		return m, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/metrics", nil)
	if err != nil {
		return m, err
	}
	resp, err := p.metricsClient().Do(req)
	if err != nil {
		return m, fmt.Errorf("reading /metrics: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_memstats_heap_inuse_bytes":
			m.heap = int64(v)
		case "go_memstats_stack_inuse_bytes":
			m.stack = int64(v)
		case "go_goroutines":
			m.goroutines = int64(v)
		}
	}
	return m, sc.Err()
}

// metricsClient is an HTTP client that trusts only the server's pinned
// certificate.
func (p *porthole) metricsClient() *http.Client {
	p.metricsOnce.Do(func() {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = newPinnedTLS(p.fp)
		p.metrics = &http.Client{Transport: t, Timeout: 30 * time.Second}
	})
	return p.metrics
}

// waitAllOnline polls the API until want devices of the bench fleet show
// online, and returns how long after since that was first seen.
func (p *porthole) waitAllOnline(ctx context.Context, want int, since time.Time, timeout time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(timeout)
	for {
		online, err := p.countOnline(ctx)
		if err != nil {
			return 0, err
		}
		if online >= want {
			return time.Since(since), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%d of %d devices online after %v", online, want, timeout)
		}
		if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

// countOnline is how many devices of the bench fleet the API shows online.
func (p *porthole) countOnline(ctx context.Context) (int, error) {
	ds, err := p.api.Devices(ctx, apiclient.DeviceFilter{Fleet: benchFleet})
	if err != nil {
		return 0, err
	}
	online := 0
	for _, d := range ds {
		if d.Online {
			online++
		}
	}
	return online, nil
}

// idleTunnels starts m idle reverse-tunnel clients (`ssh -N -R`, the
// classic design in which each device keeps a connection to a pivot) and
// measures what they cost sshd.
func (o *openSSH) idleTunnels(ctx context.Context, m int, settle time.Duration, r *IdleResult) error {
	o.settle()
	var err error
	if r.SSHBefore, err = pssTree(o.sshd.pid()); err != nil {
		return err
	}
	var clients []*exec.Cmd
	defer func() {
		for _, c := range clients {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
		o.settle()
	}()
	// One at a time, each up before the next: sshd drops connections at
	// random past MaxStartups (10) unauthenticated ones.
	for i := range m {
		// -R 0: sshd picks the port and ssh prints it, which tells this
		// loop that the tunnel is up.
		c := exec.Command("ssh", o.clientOptions([]string{"-N", "-o", "ExitOnForwardFailure=yes",
			"-R", "0:127.0.0.1:9", "-p", strconv.Itoa(o.port), "127.0.0.1"})...)
		c.Env = o.env
		stderr, err := c.StderrPipe()
		if err != nil {
			return err
		}
		if err := c.Start(); err != nil {
			return err
		}
		clients = append(clients, c)
		up := make(chan error, 1)
		go func() {
			var said []string
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "Allocated port") {
					up <- nil
					_, _ = io.Copy(io.Discard, stderr)
					return
				}
				said = append(said, sc.Text())
			}
			up <- fmt.Errorf("ssh -N -R client %d ended before its tunnel was up: %s", i+1, strings.Join(said, "; "))
		}()
		select {
		case err := <-up:
			if err != nil {
				return err
			}
		case <-time.After(30 * time.Second):
			return fmt.Errorf("ssh -N -R client %d had no tunnel after 30 s", i+1)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := sleepCtx(ctx, settle); err != nil {
		return err
	}
	if r.SSHAfter, err = pssTree(o.sshd.pid()); err != nil {
		return err
	}
	r.SSHClientRSS, err = rss(clients[0].Process.Pid)
	return err
}

// sleepCtx waits for d or the end of ctx.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
