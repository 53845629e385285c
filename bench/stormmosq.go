package bench

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/porthole/porthole/control"
)

// StormMosquitto is the reconnect storm on an external broker (issue 14:
// ≤ 15 s for 10,000 devices "the same on Mosquitto"): a deployment of its
// own whose portholed uses a Mosquitto (deploy/mosquitto's configuration)
// as broker.url, Options.Devices simulated devices idling on that
// Mosquitto with a password each, then Mosquitto killed and started again,
// and portholed restarted while the devices stay on Mosquitto. It is not
// part of the default run: -only storm-mosquitto asks for it.
const StormMosquitto = "storm-mosquitto"

// MosquittoStormResult is the storm-mosquitto measurement.
type MosquittoStormResult struct {
	Devices int
	// HashIterations is the PBKDF2-SHA512 iteration count of the hashes
	// mosquitto_passwd -U made in devices.passwd, and Hash how long it
	// took to hash every device's password: about what Mosquitto spends
	// checking the passwords of a storm, one per login.
	HashIterations int
	Hash           time.Duration
	// Enroll is enrolling the devices through the API; Connect, their
	// first connections to Mosquitto (connectParallel at a time);
	// FirstOnline, from the first connection's start until the API
	// showed every device online (zero if it did not within a minute;
	// OnlineCount is how many it showed).
	Enroll, Connect, FirstOnline time.Duration
	OnlineCount                  int
	// MosqRSSBefore and MosqRSSAfter are Mosquitto's resident memory
	// with no device and with every device connected; PortholedRSS is
	// portholed's then.
	MosqRSSBefore, MosqRSSAfter, PortholedRSS int64

	Mosquitto MosquittoRestart
	Portholed PortholedRestart
}

// MosquittoRestart is Mosquitto stopped and started again at once on the
// same configuration: killed (SIGKILL, no goodbye to anyone) without
// persistence, so that it forgets every session and retained message; or,
// Persistent, stopped cleanly (SIGINT, which saves its database, as
// `systemctl restart mosquitto` does) with persistence on, as Debian's
// mosquitto.conf has it. The devices and portholed reconnect on their own
// backoff.
type MosquittoRestart struct {
	Persistent bool
	Load       string // the load average when it began
	// Down is from the kill (or SIGINT) until the new Mosquitto listened on both
	// listeners; Back, until the last device was connected and subscribed
	// again (BackCount devices were, within 5 min), and BackP50 and
	// BackP90 until half and nine tenths of them were.
	Down, Back, BackP50, BackP90 time.Duration
	BackCount                    int
	// Failures are connection attempts that failed during the storm.
	Failures     int64
	FailureKinds map[string]int64
	// The CPU time spent from the kill until every device was back: by
	// the new Mosquitto (one thread), by the simulated devices (the
	// benchmark's own process) and by portholed.
	MosqCPU, DevicesCPU, PortholedCPU time.Duration
	// MosqWait is how long Mosquitto's thread was ready to run but
	// waited for a CPU (/proc/PID/schedstat) over the same time: a busy
	// machine's share of the storm.
	MosqWait time.Duration
	// ListenOverflows and SynRetrans are the machine's TCP counters
	// (/proc/net/netstat: connections dropped because a listener's accept
	// queue was full, SYNs sent again) over the storm; on loopback during
	// the storm they are the devices' connections to Mosquitto.
	ListenOverflows, SynRetrans int64
	// Snapshot is when portholed logged reading the retained states after
	// it reconnected, and SnapshotMessages how many it read; Online, when
	// the API showed every device online (zero if not within a minute of
	// the devices' return; OnlineCount is how many it showed).
	Snapshot, Online              time.Duration
	SnapshotMessages, OnlineCount int
	MosqRSS                       int64 // after the storm
}

// PortholedRestart is portholed stopped (SIGINT) and started again while
// the devices stay connected to Mosquitto.
type PortholedRestart struct {
	Stop, Start time.Duration
	// Snapshot is from the stop until the new portholed logged reading
	// every device's retained state (SnapshotMessages of them); Online,
	// until the API showed every device online (zero if not within a
	// minute; OnlineCount is how many it showed).
	Snapshot, Online              time.Duration
	SnapshotMessages, OnlineCount int
	// Reconnects counts devices that connected again, and Failures their
	// failed attempts, from the stop until the end: none is the goal.
	Reconnects int
	Failures   int64
}

// mosqDeploy is the measurement's deployment: a Mosquitto and a portholed
// with broker.url naming it.
type mosqDeploy struct {
	p    *porthole
	mosq *mosquitto
}

func (d *mosqDeploy) close() {
	if d.p != nil {
		d.p.close()
	}
	if d.mosq != nil {
		d.mosq.kill()
	}
}

// stormMosquitto makes the storm-mosquitto measurement with n devices.
func stormMosquitto(ctx context.Context, b *benchRun, n int, persistent bool, settle time.Duration) (*MosquittoStormResult, error) {
	if limit := raiseFileLimit(uint64(2*n + 4096)); limit < uint64(n+1024) {
		return nil, fmt.Errorf("this process may open only %d files, too few for %d devices: raise `ulimit -n` (bench/run.sh does as far as it may)", limit, n)
	}
	r := &MosquittoStormResult{Devices: n, Mosquitto: MosquittoRestart{Persistent: persistent}}
	dir := filepath.Join(b.dir, "storm-mosquitto")
	b.log.Info("storm-mosquitto: starting Mosquitto and portholed with broker.url", "devices", n)
	d, secret, err := initMosqDeploy(ctx, b.log, dir, b.porthole.bins)
	if d != nil {
		defer d.close()
	}
	if err != nil {
		return nil, err
	}
	p := d.p

	// Every device's password, in Mosquitto's password file before it
	// starts, under the name it will be enrolled with.
	const prefix = "mq"
	devices := map[string]string{}
	passwords := make([]string, n)
	for i := range n {
		passwords[i] = randomHex(16)
		user, err := control.DeviceUsername(benchFleet, fmt.Sprintf("%s-%06d", prefix, i))
		if err != nil {
			return nil, err
		}
		devices[user] = passwords[i]
	}
	serverPassword := randomHex(16)
	pwFile := filepath.Join(p.dataDir, "broker.password")
	if err := os.WriteFile(pwFile, []byte(serverPassword+"\n"), 0o600); err != nil {
		return nil, err
	}
	d.mosq, r.Hash, err = newMosquitto(ctx, filepath.Join(dir, "mosquitto"), mosqConfig{
		CertFile: filepath.Join(p.dataDir, "tls.crt"), KeyFile: filepath.Join(p.dataDir, "tls.key"),
		Persistence: persistent,
	}, devices, map[string]string{mosqServerUser: serverPassword})
	if err != nil {
		return nil, err
	}
	r.HashIterations = passwdIterations(filepath.Join(d.mosq.dir, "devices.passwd"))
	if err := d.mosq.start(ctx); err != nil {
		return nil, err
	}
	if r.MosqRSSBefore, err = rss(d.mosq.proc.pid()); err != nil {
		return nil, err
	}
	if err := startMosqPortholed(ctx, p, d.mosq, pwFile, secret); err != nil {
		return nil, err
	}

	b.log.Info("storm-mosquitto: enrolling", "devices", n)
	t0 := time.Now()
	fleet, err := enrollSimDevices(ctx, p, prefix, n, 4)
	if err != nil {
		return nil, err
	}
	r.Enroll = time.Since(t0)
	fleet.addr = d.mosq.deviceAddr()
	for i, dev := range fleet.devices {
		dev.password = []byte(passwords[i])
	}

	b.log.Info("storm-mosquitto: connecting", "devices", n)
	simCtx, stopSims := context.WithCancel(ctx)
	defer fleet.wait()
	defer stopSims()
	t0 = time.Now()
	if err := fleet.start(simCtx, connectParallel, 5*time.Minute); err != nil {
		return nil, fmt.Errorf("connecting the simulated devices to Mosquitto: %w", err)
	}
	r.Connect = time.Since(t0)
	if r.FirstOnline, r.OnlineCount, err = p.waitOnlineCount(ctx, n, t0, time.Minute); err != nil {
		return nil, err
	}
	if err := sleepCtx(ctx, settle); err != nil {
		return nil, err
	}
	if r.MosqRSSAfter, err = rss(d.mosq.proc.pid()); err != nil {
		return nil, err
	}
	if r.PortholedRSS, err = rss(p.server.pid()); err != nil {
		return nil, err
	}

	b.log.Info("storm-mosquitto: stopping Mosquitto and starting it again", "devices", n, "persistent", persistent, "load", loadAvg())
	if err := mosqRestart(ctx, d, fleet, n, &r.Mosquitto); err != nil {
		return r, err
	}
	b.log.Info("storm-mosquitto: devices back", "back", r.Mosquitto.BackCount, "took", r.Mosquitto.Back)
	if err := sleepCtx(ctx, settle); err != nil {
		return r, err
	}
	if r.Mosquitto.MosqRSS, err = rss(d.mosq.proc.pid()); err != nil {
		return r, err
	}

	b.log.Info("storm-mosquitto: restarting portholed", "devices", n)
	if err := portholedRestart(ctx, p, fleet, n, &r.Portholed); err != nil {
		return r, err
	}
	return r, nil
}

// mosqRestart stops Mosquitto (a kill, or SIGINT if c.Persistent), starts
// it again and times the devices' return.
func mosqRestart(ctx context.Context, d *mosqDeploy, fleet *simFleet, n int, c *MosquittoRestart) error {
	p := d.p
	c.Load = loadAvg()
	failures0, kinds0 := fleet.failures.Load(), fleet.failureKinds()
	logAt, err := fileSize(p.server.logPath)
	if err != nil {
		return err
	}
	devCPU0, err := selfCPU()
	if err != nil {
		return err
	}
	pdCPU0, err := cpuTime(p.server.pid())
	if err != nil {
		return err
	}
	tcp0 := tcpCounters()
	stopAt := time.Now()
	if c.Persistent {
		if err := d.mosq.proc.stop(time.Minute); err != nil {
			return err
		}
	} else {
		d.mosq.kill()
	}
	if err := d.mosq.start(ctx); err != nil {
		return fmt.Errorf("starting Mosquitto again: %w", err)
	}
	c.Down = time.Since(stopAt)
	deadline := time.Now().Add(5 * time.Minute)
	for {
		count, last := fleet.backSince(stopAt)
		c.BackCount = count
		if count == n {
			c.Back = last.Sub(stopAt)
			break
		}
		if time.Now().After(deadline) {
			break
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	// The CPU spent until the last device was back, read as soon after as
	// the poll above allows.
	if c.MosqCPU, err = cpuTime(d.mosq.proc.pid()); err != nil {
		return err
	}
	c.MosqWait = runQueueWait(d.mosq.proc.pid())
	tcp := tcpCounters()
	c.ListenOverflows, c.SynRetrans = tcp["ListenOverflows"]-tcp0["ListenOverflows"], tcp["TCPSynRetrans"]-tcp0["TCPSynRetrans"]
	devCPU, err := selfCPU()
	if err != nil {
		return err
	}
	pdCPU, err := cpuTime(p.server.pid())
	if err != nil {
		return err
	}
	c.DevicesCPU, c.PortholedCPU = devCPU-devCPU0, pdCPU-pdCPU0
	backs := fleet.backTimes(stopAt)
	c.BackP50, c.BackP90 = backs.Quantile(0.5), backs.Quantile(0.9)
	c.Failures = fleet.failures.Load() - failures0
	c.FailureKinds = fleet.failureKinds()
	for k, v := range kinds0 {
		c.FailureKinds[k] -= v
		if c.FailureKinds[k] == 0 {
			delete(c.FailureKinds, k)
		}
	}
	if c.BackCount < n {
		return fmt.Errorf("only %d of %d devices were back on Mosquitto 5 min after it was killed (%d failed attempts)", c.BackCount, n, c.Failures)
	}
	if c.Online, c.OnlineCount, err = p.waitOnlineCount(ctx, n, stopAt, time.Minute); err != nil {
		return err
	}
	// portholed's snapshot ends once Mosquitto has been quiet for a
	// moment, which may be after the last device came back.
	deadline = time.Now().Add(30 * time.Second)
	for {
		c.Snapshot, c.SnapshotMessages = snapshotLogged(p.server.logPath, logAt, stopAt, 0, 0)
		if c.Snapshot > 0 || time.Now().After(deadline) {
			return nil
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// portholedRestart restarts portholed while the devices stay on Mosquitto,
// and times its return to knowing every device's state.
func portholedRestart(ctx context.Context, p *porthole, fleet *simFleet, n int, r *PortholedRestart) error {
	failures0 := fleet.failures.Load()
	logAt, err := fileSize(p.server.logPath)
	if err != nil {
		return err
	}
	stopAt := time.Now()
	stopTook, startedAt, err := p.restartServer(ctx)
	if err != nil {
		return err
	}
	r.Stop, r.Start = stopTook, time.Since(startedAt)
	deadline := time.Now().Add(time.Minute)
	for {
		r.Snapshot, r.SnapshotMessages = snapshotLogged(p.server.logPath, logAt, stopAt, n, r.SnapshotMessages)
		if r.Snapshot > 0 || time.Now().After(deadline) {
			break
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	if r.Online, r.OnlineCount, err = p.waitOnlineCount(ctx, n, stopAt, time.Minute); err != nil {
		return err
	}
	r.Reconnects, _ = fleet.backSince(stopAt)
	r.Failures = fleet.failures.Load() - failures0
	return nil
}

// initMosqDeploy initialises the measurement's portholed in dir (not
// started: Mosquitto needs its certificate first) and returns the
// deployment and the admin's TOTP secret.
func initMosqDeploy(ctx context.Context, log *slog.Logger, dir string, bins binaries) (*mosqDeploy, string, error) {
	p := &porthole{log: log, dir: dir, bins: bins, dataDir: filepath.Join(dir, "server")}
	d := &mosqDeploy{p: p}
	var err error
	for _, port := range []*int{&p.apiPort, &p.relayPort} {
		if *port, err = freePort(); err != nil {
			return d, "", err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return d, "", err
	}
	p.url = fmt.Sprintf("https://127.0.0.1:%d", p.apiPort)
	p.publicURL = p.url
	out, err := runOutput(ctx, baseEnv(dir), adminPassword+"\n", bins.server, "init", "--data", p.dataDir,
		"--admin-email", adminEmail, "--password-stdin", "--public-url", p.url,
		"--relay-listen", fmt.Sprintf("127.0.0.1:%d", p.relayPort))
	if err != nil {
		return d, "", err
	}
	secret := regexp.MustCompile(`secret=([A-Z2-7]+)`).FindStringSubmatch(out)
	fp := regexp.MustCompile(`fingerprint: (sha256:[0-9a-f]+)`).FindStringSubmatch(out)
	if secret == nil || fp == nil {
		return d, "", fmt.Errorf("portholed init printed no TOTP secret or TLS fingerprint:\n%s", out)
	}
	p.fp = fp[1]
	return d, secret[1], nil
}

// startMosqPortholed writes the config of a portholed whose broker is
// mosq (the server nodes' listener, as user portholed with the password in
// pwFile; devices told of the devices' listener), starts it and logs in.
// It logs as JSON at info, so that the snapshots of retained states it
// takes can be read from its log (snapshotLogged).
func startMosqPortholed(ctx context.Context, p *porthole, mosq *mosquitto, pwFile, secret string) error {
	p.config = filepath.Join(p.dataDir, "bench.yaml")
	config := fmt.Sprintf(`data_dir: .
listen: 127.0.0.1:%d
public_url: %s
broker:
  url: %s
  username: %s
  password_file: %s
  public_url: mqtts://%s
relay:
  listen: 127.0.0.1:%d
log:
  level: info
  format: json
`, p.apiPort, p.url, mosq.serverURL(), mosqServerUser, pwFile, mosq.deviceAddr(), p.relayPort)
	if err := os.WriteFile(p.config, []byte(config), 0o600); err != nil {
		return err
	}
	if err := p.startServer(ctx); err != nil {
		return err
	}
	return p.login(ctx, secret, adminPassword)
}

// waitOnlineCount polls the API until want devices of the bench fleet show
// online, and returns how long after since that was first seen; after
// timeout it returns zero and how many it saw online last.
func (p *porthole) waitOnlineCount(ctx context.Context, want int, since time.Time, timeout time.Duration) (time.Duration, int, error) {
	deadline := time.Now().Add(timeout)
	for {
		online, err := p.countOnline(ctx)
		if err != nil {
			return 0, 0, err
		}
		if online >= want {
			return time.Since(since), online, nil
		}
		if time.Now().After(deadline) {
			return 0, online, nil
		}
		if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
			return 0, 0, err
		}
	}
}

// snapshotLogged reads portholed's JSON log from offset for the first
// "read the devices' retained states" with at least want messages (any
// number, for want 0), and returns when it was logged, after since, and
// how many messages it read; zero and the most messages seen in such a
// line (or seen, if more) when there is none yet.
func snapshotLogged(path string, offset int64, since time.Time, want, seen int) (time.Duration, int) {
	f, err := os.Open(path)
	if err != nil {
		return 0, seen
	}
	defer f.Close()
	if _, err := f.Seek(offset, 0); err != nil {
		return 0, seen
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if !strings.Contains(sc.Text(), "read the devices' retained states") {
			continue
		}
		var line struct {
			Time     time.Time `json:"time"`
			Messages int       `json:"messages"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		seen = max(seen, line.Messages)
		if line.Messages >= want {
			return line.Time.Sub(since), line.Messages
		}
	}
	return 0, seen
}

// fileSize is the size of the file at path.
func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// selfCPU is the CPU time (user + system) this process has used, without
// the children it reaped.
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// backTimes are the times after t at which the devices that connected
// after t did, sorted.
func (f *simFleet) backTimes(t time.Time) Durations {
	since := t.UnixNano()
	var ds Durations
	for _, d := range f.devices {
		if up := d.lastUp.Load(); up > since {
			ds = append(ds, time.Duration(up-since))
		}
	}
	slices.Sort(ds)
	return ds
}

// markdown writes the storm-mosquitto table.
func (r *MosquittoStormResult) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "### Reconnect storm on Mosquitto: %d simulated devices, deploy/mosquitto's configuration, TLS on the devices' listener\n\n", r.Devices)
	b.WriteString("| figure | value |\n|---|--:|\n")
	row := func(k, v string) { fmt.Fprintf(b, "| %s | %s |\n", k, v) }
	secs := func(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
	ofCore := func(cpu, wall time.Duration) string {
		return fmt.Sprintf("%.1f s (%.0f%% of a core)", cpu.Seconds(), 100*ratio(cpu.Seconds(), wall.Seconds()))
	}
	n := float64(r.Devices)
	row(fmt.Sprintf("Mosquitto's password hashes: PBKDF2-SHA512, %d iterations (mosquitto_passwd -U)", r.HashIterations),
		fmt.Sprintf("%.0f µs per password (%s for all)", ratio(float64(r.Hash.Microseconds()), n), secs(r.Hash)))
	row("enrolling them through the API", fmt.Sprintf("%s (%.0f/s)", secs(r.Enroll), ratio(n, r.Enroll.Seconds())))
	row(fmt.Sprintf("first connection, %d at a time", connectParallel), fmt.Sprintf("%s (%.0f/s)", secs(r.Connect), ratio(n, r.Connect.Seconds())))
	if r.FirstOnline > 0 {
		row("the API shows every device online", secs(r.FirstOnline)+" after the first connection began")
	} else {
		row("**the API shows devices online, a minute after they connected**", fmt.Sprintf("**%d of %d**", r.OnlineCount, r.Devices))
	}
	row("Mosquitto RSS, no device / all connected", fmt.Sprintf("%s / %s (%s per device)", fmtBytes(float64(r.MosqRSSBefore)),
		fmtBytes(float64(r.MosqRSSAfter)), fmtBytes(ratio(float64(r.MosqRSSAfter-r.MosqRSSBefore), n))))
	row("portholed RSS, all connected", fmtBytes(float64(r.PortholedRSS)))

	c := r.Mosquitto
	stop := "the kill"
	if c.Persistent {
		stop = "the stop"
		row(fmt.Sprintf("**Mosquitto stopped (SIGINT, its database saved) and started again, persistence on**, load average %s", orDash(c.Load)), "")
	} else {
		row(fmt.Sprintf("**Mosquitto killed (SIGKILL) and started again, no persistence**, load average %s", orDash(c.Load)), "")
	}
	row("Mosquitto listening again", fmt.Sprintf("%.2f s after %s", c.Down.Seconds(), stop))
	if c.BackCount == r.Devices {
		row("**every device connected and subscribed again**", fmt.Sprintf("**%s** after %s (half by %s, 90%% by %s)",
			secs(c.Back), stop, secs(c.BackP50), secs(c.BackP90)))
		row("CPU until then: Mosquitto", ofCore(c.MosqCPU, c.Back))
		row("Mosquitto's thread ready but waiting for a CPU (the machine's other load)", fmt.Sprintf("%.1f s", c.MosqWait.Seconds()))
		row("CPU until then: the simulated devices (TLS and MQTT clients) / portholed", fmt.Sprintf("%s / %s",
			ofCore(c.DevicesCPU, c.Back), ofCore(c.PortholedCPU, c.Back)))
	} else {
		row("**devices back within 5 min**", fmt.Sprintf("**%d of %d**", c.BackCount, r.Devices))
	}
	row("failed connection attempts during the storm", fmt.Sprint(c.Failures))
	for _, k := range sortedKinds(c.FailureKinds) {
		row("&nbsp;&nbsp;"+k, fmt.Sprint(c.FailureKinds[k]))
	}
	row("TCP: connections dropped by a full accept queue / SYNs sent again (the machine's counters)", fmt.Sprintf("%d / %d", c.ListenOverflows, c.SynRetrans))
	if c.Snapshot > 0 {
		row("portholed reconnected and read the retained states", fmt.Sprintf("%d, %s after %s", c.SnapshotMessages, secs(c.Snapshot), stop))
	}
	if c.Online > 0 {
		row("the API shows every device online", secs(c.Online)+" after "+stop)
	} else {
		row("**the API shows devices online, a minute after they were back**", fmt.Sprintf("**%d of %d**", c.OnlineCount, r.Devices))
	}
	row("Mosquitto RSS after the storm", fmtBytes(float64(c.MosqRSS)))

	p := r.Portholed
	row("**portholed restarted (SIGINT), devices staying on Mosquitto**", "")
	row("stopping portholed / starting it until /healthz answers", fmt.Sprintf("%.2f s / %.2f s", p.Stop.Seconds(), p.Start.Seconds()))
	if p.Snapshot > 0 {
		row("**portholed has read every device's retained state**", fmt.Sprintf("**%s** after the stop began (%d messages)", secs(p.Snapshot), p.SnapshotMessages))
	} else {
		row("**portholed's snapshot of retained states within a minute**", fmt.Sprintf("**%d of %d**", p.SnapshotMessages, r.Devices))
	}
	if p.Online > 0 {
		row("the API shows every device online", secs(p.Online)+" after the stop began")
	} else {
		row("**the API shows devices online, a minute after the stop**", fmt.Sprintf("**%d of %d**", p.OnlineCount, r.Devices))
	}
	row("devices that reconnected / their failed attempts", fmt.Sprintf("%d / %d", p.Reconnects, p.Failures))
	b.WriteString("\n")
}

// sortedKinds are the keys of kinds, the most frequent first.
func sortedKinds(kinds map[string]int64) []string {
	ks := slices.Sorted(maps.Keys(kinds))
	slices.SortStableFunc(ks, func(a, b string) int { return cmp.Compare(kinds[b], kinds[a]) })
	return ks
}

// tcpCounters are the TcpExt counters of /proc/net/netstat, by name (none
// if it cannot be read).
func tcpCounters() map[string]int64 {
	data, err := os.ReadFile("/proc/net/netstat")
	if err != nil {
		return nil
	}
	lines := strings.Split(string(data), "\n")
	m := map[string]int64{}
	for i := 0; i+1 < len(lines); i++ {
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) == 0 || names[0] != "TcpExt:" || len(values) != len(names) || values[0] != "TcpExt:" {
			continue
		}
		for j := 1; j < len(names); j++ {
			if v, err := strconv.ParseInt(values[j], 10, 64); err == nil {
				m[names[j]] = v
			}
		}
	}
	return m
}

// runQueueWait is how long the threads of process pid have waited for a
// CPU while ready to run (the second field of each thread's schedstat), 0
// if unknown.
func runQueueWait(pid int) time.Duration {
	dirs, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0
	}
	var total time.Duration
	for _, d := range dirs {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, d.Name()))
		if err != nil {
			continue
		}
		if f := strings.Fields(string(data)); len(f) >= 2 {
			if ns, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				total += time.Duration(ns)
			}
		}
	}
	return total
}
