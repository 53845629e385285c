package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The Benchmark functions measure one thing each, one tool at a time, on a
// deployment started once per test binary (and only when a benchmark asks
// for it, so `go test ./...` builds and starts nothing):
//
//	go test -run '^$' -bench . -benchtime 20x ./bench
//	go test -run '^$' -bench IdleDevices -benchtime 10000x ./bench
//
// cmd/porthole-bench (bench/run.sh) is the full comparison, interleaving
// the tools so that the machine's other load hits them alike.

// xferSize is the bytes of each transfer in BenchmarkTransfer.
const xferSize = 64 << 20

var shared struct {
	once sync.Once
	dir  string
	b    *benchRun
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.b != nil {
		shared.b.close()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// deployment starts (once) Porthole and the OpenSSH baseline.
func deployment(tb testing.TB) *benchRun {
	tb.Helper()
	shared.once.Do(func() {
		if shared.dir, shared.err = os.MkdirTemp("", "porthole-bench-"); shared.err != nil {
			return
		}
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		shared.b, shared.err = setup(context.Background(), log, shared.dir)
	})
	if shared.err != nil {
		tb.Fatal(shared.err)
	}
	return shared.b
}

// BenchmarkTimeToShell: `echo ok` on the device from an idle start, per
// tool; the custom metrics are the median and p95 time to the first
// output.
func BenchmarkTimeToShell(b *testing.B) {
	d := deployment(b)
	for _, t := range d.clientTools() {
		b.Run(t.name, func(b *testing.B) {
			var first Durations
			b.StopTimer()
			for range b.N {
				tm, err := d.shellOnce(t)
				if err != nil {
					b.Fatal(err)
				}
				first = append(first, tm.firstOut)
			}
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(ms(first.Median()), "ms-median")
			b.ReportMetric(ms(first.P95()), "ms-p95")
		})
	}
}

// BenchmarkEcho: one keystroke's round trip over an open interactive
// session, per tool (ns/op is the mean).
func BenchmarkEcho(b *testing.B) {
	d := deployment(b)
	for _, t := range d.clientTools() {
		b.Run(t.name, func(b *testing.B) {
			s, err := openEcho(t)
			if err != nil {
				b.Fatal(err)
			}
			defer s.close()
			var rtt Durations
			b.ResetTimer()
			for i := range b.N {
				d, err := s.echo(byte('a'+i%26), 5*time.Second)
				if err != nil {
					b.Fatal(err)
				}
				rtt = append(rtt, d)
			}
			b.StopTimer()
			b.ReportMetric(ms(rtt.Median()), "ms-median")
			b.ReportMetric(ms(rtt.P95()), "ms-p95")
		})
	}
}

// BenchmarkTransfer: a 64 MiB copy per operation and tool; MB/s is the
// median's, with connection setup, and the CPU metrics are seconds per GiB
// moved.
func BenchmarkTransfer(b *testing.B) {
	d := deployment(b)
	jobs, done, err := d.xferJobs(xferSize)
	if err != nil {
		b.Fatal(err)
	}
	defer done()
	for _, j := range jobs {
		b.Run(fmt.Sprintf("%s/%s", j.op, j.tool), func(b *testing.B) {
			r := XferResult{Op: j.op, Tool: j.tool, Size: xferSize}
			b.StopTimer()
			for range b.N {
				if err := d.runXfer(j, &r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(r.MBps(), "MB/s")
			b.ReportMetric(r.cpuPerGiB(r.ClientCPU), "client-CPU-s/GiB")
			if j.viaRelay {
				b.ReportMetric(r.cpuPerGiB(r.RelayCPU), "relay-CPU-s/GiB")
			}
			b.ReportMetric(r.cpuPerGiB(r.DeviceCPU), "device-CPU-s/GiB")
		})
	}
}

// BenchmarkIdleDevices connects b.N simulated devices (set it with
// -benchtime Nx) to portholed's embedded broker and reports the growth of
// its memory per device.
func BenchmarkIdleDevices(b *testing.B) {
	d := deployment(b)
	b.StopTimer()
	idle, err := d.idleDevices(context.Background(), fmt.Sprintf("sim%d", time.Now().UnixNano()%1e9), b.N, 2*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer idle.close()
	n := float64(b.N)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(idle.after.rss-idle.before.rss)/n, "RSS-B/device")
	b.ReportMetric(float64(idle.after.heap-idle.before.heap)/n, "heap-B/device")
	b.ReportMetric(float64(idle.after.stack-idle.before.stack)/n, "stack-B/device")
	b.ReportMetric(idle.connect.Seconds()*1e3/n, "ms-connect/device")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// The tests below are quick and start nothing.

func TestQuantile(t *testing.T) {
	d := Durations{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	tests := []struct {
		q    float64
		want time.Duration
	}{{0, 1}, {0.5, 5}, {0.95, 10}, {1, 10}, {0.1, 1}, {0.11, 2}}
	for _, tt := range tests {
		if got := d.Quantile(tt.q); got != tt.want {
			t.Errorf("Quantile(%v) = %v; want %v", tt.q, got, tt.want)
		}
	}
	if got := (Durations{}).Median(); got != 0 {
		t.Errorf("empty Median = %v; want 0", got)
	}
	if d[0] != 5 {
		t.Error("Quantile sorted its receiver")
	}
}

func TestOptionsValidate(t *testing.T) {
	var o Options
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if o.Size != 64<<20 || o.Reps != 3 || o.Devices != 10000 || len(o.Only) != len(Measurements) {
		t.Errorf("defaults = %+v", o)
	}
	for _, bad := range []Options{{Only: []string{"speed"}}, {Reps: -1}, {Size: -1}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil; want an error", bad)
		}
	}
}

func TestHexPort(t *testing.T) {
	for in, want := range map[string]int{"0100007F:1F90": 8080, "00000000000000000000000001000000:0016": 22, "junk": -1} {
		if got := hexPort(in); got != want {
			t.Errorf("hexPort(%q) = %d; want %d", in, got, want)
		}
	}
}

// TestDelayProxy: bytes arrive intact and in order, a round trip takes two
// one-way delays, and a half-close passes through.
func TestDelayProxy(t *testing.T) {
	t.Parallel()
	echoLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echoLn.Close()
	go func() {
		c, err := echoLn.Accept()
		if err != nil {
			return
		}
		_, _ = io.Copy(c, c)
		c.(*net.TCPConn).CloseWrite()
	}()
	const oneWay = 20 * time.Millisecond
	p, err := startDelayProxy(echoLn.Addr().String(), oneWay)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p.port()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v; want ping", buf, err)
	}
	if rt := time.Since(start); rt < 2*oneWay {
		t.Errorf("round trip took %v; want at least %v", rt, 2*oneWay)
	}
	want := bytes.Repeat([]byte("0123456789"), 10000)
	if _, err := c.Write(want); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("echoed %d bytes (%v); want the %d sent, in order, then EOF", len(got), err, len(want))
	}
}

// TestLoadReport: the load measurement is asked for by name only, and its
// table counts sessions per second of burst and every failure.
func TestLoadReport(t *testing.T) {
	var o Options
	if err := o.Validate(); err != nil || o.wants(Load) {
		t.Fatalf("the default run: %v, measurements %v; want no load", err, o.Only)
	}
	o = Options{Only: []string{Load}}
	if err := o.Validate(); err != nil || !o.wants(Load) || o.LoadSessions != 50 || o.LoadDevices != 10 || o.LoadRounds != 3 {
		t.Fatalf("-only load: %v, %+v", err, o)
	}
	c := LoadCase{Tool: toolPorthole, Devices: 10, Bursts: Durations{time.Second, time.Second},
		FirstOut: Durations{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond},
		Exits:    Durations{time.Second, time.Second, time.Second}, Failed: 1, Errors: map[string]int{"porthole: dev1 did not answer": 1}}
	if got := c.PerSecond(); got != 1.5 {
		t.Errorf("PerSecond = %v; want 1.5 (3 sessions in 2 s of burst)", got)
	}
	var b strings.Builder
	(&LoadResult{Sessions: 2, Rounds: 2, Cases: []LoadCase{c, {Tool: toolOpenSSH, Bursts: Durations{time.Second}, Exits: Durations{time.Second, time.Second}}}}).markdown(&b)
	for _, want := range []string{"| porthole | 10 devices | 1.5 | 0.75× |", "| 1 of 4 |", "dev1 did not answer"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the load table lacks %q:\n%s", want, b.String())
		}
	}
}

// TestClusterReport: the cluster measurement is asked for by name only,
// with 200 sessions by default, and its tables count sessions per second,
// the spread over the nodes and every failure by its words.
func TestClusterReport(t *testing.T) {
	var o Options
	if err := o.Validate(); err != nil || o.wants(Cluster) {
		t.Fatalf("the default run: %v, measurements %v; want no cluster", err, o.Only)
	}
	o = Options{Only: []string{Cluster}}
	if err := o.Validate(); err != nil || !o.wants(Cluster) || o.ClusterSessions != 200 || o.ClusterDevices != 10 ||
		o.ClusterKeystrokes != 20 || o.ClusterPostgres != DefaultClusterPostgres {
		t.Fatalf("-only cluster: %v, %+v", err, o)
	}
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	r := &ClusterResult{Sessions: 4, Devices: 2, Keystrokes: 2, Cases: []ClusterCase{
		{Tool: toolPorthole, Open: 2 * time.Second, Opened: 3, Failed: 1, Errors: map[string]int{"exited: porthole: device_unreachable": 1},
			Ready: Durations{ms(100), ms(200), ms(300)}, RTT: Durations{ms(2), ms(2), ms(4)}, ServerCPU: 1500 * time.Millisecond, Typed: 12, Killed: 1},
		{Tool: toolOpenSSH, Open: time.Second, Opened: 4, Ready: Durations{ms(100)}, RTT: Durations{ms(1), ms(1), ms(2)}},
	}, Nodes: []ClusterNode{{Name: "node1", Roles: "api, relay, broker", Advertise: "127.0.0.1:1", Sessions: 2, CPU: time.Second},
		{Name: "node2", Roles: "relay", Advertise: "127.0.0.1:2", Sessions: 1, CPU: 500 * time.Millisecond}}}
	if got := r.Cases[0].PerSecond(); got != 1.5 {
		t.Errorf("PerSecond = %v; want 1.5 (3 sessions at their prompt within 2 s)", got)
	}
	var b strings.Builder
	r.markdown(&b)
	for _, want := range []string{"| porthole | 1.5 | 2000 ms |", "| 2.00× / 2.00× | 1.5 |", "| 1 of 4 |",
		"| node2 | relay | 127.0.0.1:2 | 1 | 0.5 |", "| porthole | 12 | 0 | 0 | 0 | 0 | 1 |", "porthole failures (1×): exited: porthole: device_unreachable"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the cluster table lacks %q:\n%s", want, b.String())
		}
	}
	if dsn, err := withSearchPath(DefaultClusterPostgres, "porthole_bench_x"); err != nil || !strings.Contains(dsn, "search_path=porthole_bench_x") {
		t.Errorf("withSearchPath = %q, %v", dsn, err)
	}
	if _, err := withSearchPath("host=127.0.0.1", "x"); err == nil {
		t.Error("withSearchPath took a key=value DSN; want an error naming -cluster-pg")
	}
}

// TestMosquittoStorm: storm-mosquitto is asked for by name only; the
// shipped mosquitto.conf is rewritten with the run's ports, files and TLS
// (and fails loudly if it stops having the listeners it expects), and the
// table tells the storm and the restart apart.
func TestMosquittoStorm(t *testing.T) {
	var o Options
	if err := o.Validate(); err != nil || o.wants(StormMosquitto) {
		t.Fatalf("the default run: %v, measurements %v; want no storm-mosquitto", err, o.Only)
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := os.ReadFile(filepath.Join(root, "deploy", "mosquitto", "mosquitto.conf"))
	if err != nil {
		t.Fatal(err)
	}
	conf, err := mosquittoConf(string(shipped), "/run/x", 1001, 1002, mosqConfig{CertFile: "/d/tls.crt", KeyFile: "/d/tls.key", Persistence: true}, "me")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"user me\n", "persistence_location /run/x/\n", "listener 1001 127.0.0.1\ncertfile /d/tls.crt\nkeyfile /d/tls.key\n",
		"listener 1002 127.0.0.1\n", "password_file /run/x/devices.passwd\n", "password_file /run/x/servers.passwd\n", "acl_file /run/x/acl\n"} {
		if !strings.Contains(conf, want) {
			t.Errorf("the rewritten mosquitto.conf lacks %q:\n%s", want, conf)
		}
	}
	if _, err := mosquittoConf("listener 1883\n", "/run/x", 1, 2, mosqConfig{}, "me"); err == nil {
		t.Error("a mosquitto.conf without the server nodes' listener was rewritten; want an error")
	}

	r := &MosquittoStormResult{Devices: 4, HashIterations: 101, Hash: 400 * time.Microsecond, Connect: time.Second, FirstOnline: time.Second,
		Mosquitto: MosquittoRestart{Back: 3 * time.Second, BackCount: 4, MosqCPU: 1500 * time.Millisecond, Failures: 2,
			FailureKinds: map[string]int64{"connection refused (no listener)": 2}, ListenOverflows: 7},
		Portholed: PortholedRestart{Snapshot: 2 * time.Second, SnapshotMessages: 4}}
	var b strings.Builder
	r.markdown(&b)
	for _, want := range []string{"101 iterations", "| 100 µs per password", "**3.0 s** after the kill", "| 1.5 s (50% of a core) |",
		"| &nbsp;&nbsp;connection refused (no listener) | 2 |", "| 7 / 0 |", "**2.0 s** after the stop began (4 messages)", "| 0 / 0 |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the storm-mosquitto table lacks %q:\n%s", want, b.String())
		}
	}
}
