package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The measurements Options.Only may name.
const (
	Throughput  = "throughput"
	Files       = "files"
	TimeToShell = "shell"
	Echo        = "echo"
	WAN         = "wan"
	Idle        = "idle"
)

// Measurements are the default run's measurements, in the order Run makes
// them (idle last, since it restarts the server); Extra ones (load, cluster,
// storm-mosquitto) come before idle when asked for.
var Measurements = []string{Throughput, Files, TimeToShell, Echo, WAN, Idle}

// Options sets what Run measures and how much. The zero value is the
// default run.
type Options struct {
	// Only names the measurements to make. Empty: all of Measurements.
	Only []string
	// Size is the bytes of each transfer. Zero: 64 MiB.
	Size int64
	// Reps is how many times each tool does each transfer. Zero: 3.
	Reps int
	// ShellRuns is how many times each tool opens a shell. Zero: 20.
	ShellRuns int
	// EchoCount is how many keystrokes each tool echoes. Zero: 200.
	EchoCount int
	// Devices is how many simulated devices idle on the broker (the
	// embedded one for idle, Mosquitto for storm-mosquitto). Zero:
	// 10,000.
	Devices int
	// Tunnels is how many idle `ssh -N -R` clients load the OpenSSH side.
	// Zero: 50.
	Tunnels int
	// RTT is the round trip of every link in the WAN measurement: time to
	// shell and echo again, with the CLI and the agent reaching the server
	// and ssh reaching sshd through delaying proxies. Zero: 40 ms.
	RTT time.Duration
	// WANRuns is how many shells each tool opens in the WAN measurement;
	// it echoes five times as many keystrokes. Zero: 10.
	WANRuns int
	// Settle is how long to wait before each memory reading, so that a
	// burst of connections has been digested. Zero: 5 s.
	Settle time.Duration
	// Dir is the work directory, kept afterwards (logs, configs). Empty: a
	// temporary one, removed at the end.
	Dir string
	// Revision names the source measured, for the report. Empty: `git
	// describe --always --dirty` of the module, if it is a checkout.
	Revision string
	// WaitQuiet, on a shared machine, waits up to this long before the
	// measurements for the 1-minute load average to fall below the number
	// of cores. Zero: no wait.
	WaitQuiet time.Duration
	// LoadSessions is how many sessions the load measurement starts at
	// once. Zero: 50.
	LoadSessions int
	// LoadDevices is how many devices the load measurement spreads them
	// over in its second case (the first puts them all on one). Zero: 10.
	LoadDevices int
	// LoadRounds is how many bursts of each case the load measurement
	// times. Zero: 3.
	LoadRounds int
	// ClusterSessions is how many interactive sessions the cluster
	// measurement opens at once. Zero: 200.
	ClusterSessions int
	// ClusterDevices is how many devices (real agents) it spreads them
	// over. Zero: 10.
	ClusterDevices int
	// ClusterKeystrokes is how many keystrokes each of its sessions
	// types and times. Zero: 20.
	ClusterKeystrokes int
	// MosquittoPersistence, for storm-mosquitto, runs Mosquitto with
	// persistence on (as Debian's mosquitto.conf does) and restarts it
	// cleanly (SIGINT, as systemctl restart does) instead of killing it.
	MosquittoPersistence bool
	// ClusterPostgres is the PostgreSQL database (a postgres:// URL) the
	// cluster measurement's nodes share, in a schema of the run's own that
	// is dropped at its end. Empty: DefaultClusterPostgres.
	ClusterPostgres string
}

// Validate fills in defaults and checks the values.
func (o *Options) Validate() error {
	if len(o.Only) == 0 {
		o.Only = slices.Clone(Measurements)
	}
	for _, m := range o.Only {
		if !slices.Contains(Measurements, m) && !slices.Contains(Extra, m) {
			return fmt.Errorf("unknown measurement %q: choose from %s", m, strings.Join(append(slices.Clone(Measurements), Extra...), ", "))
		}
	}
	defaults := []struct {
		v   *int
		def int
	}{{&o.Reps, 3}, {&o.ShellRuns, 20}, {&o.EchoCount, 200}, {&o.Devices, 10000}, {&o.Tunnels, 50}, {&o.WANRuns, 10},
		{&o.LoadSessions, 50}, {&o.LoadDevices, 10}, {&o.LoadRounds, 3},
		{&o.ClusterSessions, 200}, {&o.ClusterDevices, 10}, {&o.ClusterKeystrokes, 20}}
	for _, d := range defaults {
		if *d.v == 0 {
			*d.v = d.def
		}
		if *d.v < 0 {
			return errors.New("counts must be positive")
		}
	}
	if o.ClusterPostgres == "" {
		o.ClusterPostgres = DefaultClusterPostgres
	}
	if o.Size == 0 {
		o.Size = 64 << 20
	}
	if o.Size < 0 {
		return errors.New("the transfer size must be positive")
	}
	if o.RTT == 0 {
		o.RTT = 40 * time.Millisecond
	}
	if o.RTT < 0 {
		return errors.New("the round trip time must be positive")
	}
	if o.Settle == 0 {
		o.Settle = 5 * time.Second
	}
	return nil
}

func (o *Options) wants(m string) bool { return slices.Contains(o.Only, m) }

// Results are one run's figures.
type Results struct {
	Date     time.Time
	Machine  Machine
	Options  Options
	Revision string

	Throughput []XferResult
	Files      []XferResult // scp -r of many small files
	Shell      []ShellResult
	Echo       []EchoResult
	WAN        *WANResult
	Load       *LoadResult
	Cluster    *ClusterResult
	Idle       *IdleResult
	// MosquittoStorm is the storm-mosquitto measurement.
	MosquittoStorm *MosquittoStormResult
}

// Machine describes where the figures were taken.
type Machine struct {
	CPU, Kernel, Go, OpenSSH string
	Cores                    int
	LoadBefore, LoadAfter    string // /proc/loadavg's first three fields
}

// benchRun is what the measurements share.
type benchRun struct {
	log      *slog.Logger
	dir      string
	porthole *porthole
	openssh  *openSSH
}

// Run builds the binaries, starts Porthole and the OpenSSH baseline, makes
// the measurements opts asks for, and stops everything it started. Progress
// goes to log. When a measurement fails, the results of those made before
// it are returned with the error.
func Run(ctx context.Context, opts Options, log *slog.Logger) (*Results, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	res := &Results{Date: time.Now().UTC(), Options: opts, Machine: describeMachine(ctx)}
	res.Revision = opts.Revision
	if res.Revision == "" {
		res.Revision = gitDescribe(ctx)
	}
	dir := opts.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "porthole-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	b, err := setup(ctx, log, dir)
	if err != nil {
		return nil, err
	}
	defer b.close()

	if opts.WaitQuiet > 0 {
		waitQuiet(ctx, log, opts.WaitQuiet)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	res.Machine.LoadBefore = loadAvg()
	if opts.wants(Throughput) {
		if res.Throughput, err = throughput(ctx, b, opts.Size, opts.Reps); err != nil {
			return res, err
		}
	}
	if opts.wants(Files) {
		if res.Files, err = smallFiles(ctx, b, opts.Reps); err != nil {
			return res, err
		}
	}
	if opts.wants(TimeToShell) {
		if res.Shell, err = timeToShell(ctx, b, opts.ShellRuns); err != nil {
			return res, err
		}
	}
	if opts.wants(Echo) {
		if res.Echo, err = echo(ctx, b, opts.EchoCount); err != nil {
			return res, err
		}
	}
	if opts.wants(WAN) {
		if res.WAN, err = wan(ctx, b, opts.RTT, opts.WANRuns); err != nil {
			return res, err
		}
	}
	if opts.wants(Load) {
		if res.Load, err = load(ctx, b, opts.LoadSessions, opts.LoadDevices, opts.LoadRounds); err != nil {
			return res, err
		}
	}
	if opts.wants(Cluster) {
		if res.Cluster, err = cluster(ctx, b, opts.ClusterSessions, opts.ClusterDevices, opts.ClusterKeystrokes, opts.ClusterPostgres); err != nil {
			return res, err
		}
	}
	if opts.wants(StormMosquitto) {
		if res.MosquittoStorm, err = stormMosquitto(ctx, b, opts.Devices, opts.MosquittoPersistence, opts.Settle); err != nil {
			return res, err
		}
	}
	if opts.wants(Idle) {
		if res.Idle, err = idleCost(ctx, b, opts.Devices, opts.Tunnels, opts.Settle); err != nil {
			return res, err
		}
	}
	res.Machine.LoadAfter = loadAvg()
	return res, nil
}

// setup builds the binaries into dir/bin, starts Porthole (a server and
// one device) and the OpenSSH baseline.
func setup(ctx context.Context, log *slog.Logger, dir string) (_ *benchRun, err error) {
	b := &benchRun{log: log, dir: dir}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	log.Info("building portholed, porthole-agent and porthole", "dir", dir)
	bins, err := buildBinaries(ctx, filepath.Join(dir, "bin"))
	if err != nil {
		return nil, err
	}
	log.Info("starting portholed and a device")
	if b.porthole, err = startPorthole(ctx, log, filepath.Join(dir, "porthole"), bins, 0); err != nil {
		return nil, err
	}
	log.Info("starting an sshd of this run's own")
	if b.openssh, err = startOpenSSH(ctx, log, filepath.Join(dir, "openssh")); err != nil {
		return nil, err
	}
	return b, nil
}

// close stops everything setup started.
func (b *benchRun) close() {
	if b.openssh != nil {
		b.openssh.close()
	}
	if b.porthole != nil {
		b.porthole.close()
	}
}

// describeMachine reads the CPU model, cores, kernel, and the versions of
// Go and OpenSSH.
func describeMachine(ctx context.Context) Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), LoadBefore: loadAvg()}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	if out, err := exec.CommandContext(ctx, "ssh", "-V").CombinedOutput(); err == nil {
		m.OpenSSH = strings.TrimSpace(string(out))
	}
	return m
}

// waitQuiet waits up to max for the 1-minute load average to fall below
// the number of cores.
func waitQuiet(ctx context.Context, log *slog.Logger, max time.Duration) {
	deadline := time.Now().Add(max)
	for {
		f := strings.Fields(loadAvg())
		if len(f) == 0 {
			return
		}
		load, err := strconv.ParseFloat(f[0], 64)
		if err != nil || load < float64(runtime.NumCPU()) {
			return
		}
		if time.Now().After(deadline) {
			log.Warn("the machine is still busy; measuring anyway", "load", load)
			return
		}
		log.Info("waiting for a quieter machine", "load", load, "cores", runtime.NumCPU())
		if sleepCtx(ctx, 15*time.Second) != nil {
			return
		}
	}
}

// loadAvg is the 1, 5 and 15 minute load average.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// gitDescribe names the checkout the module is in, or "" outside one.
func gitDescribe(ctx context.Context) string {
	root, err := moduleRoot()
	if err != nil {
		return ""
	}
	cmd := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
