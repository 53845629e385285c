// Command porthole-bench measures Porthole against plain OpenSSH on this
// machine, in one run, and prints the results as Markdown tables on
// standard output (progress goes to standard error). See package bench;
// bench/run.sh is the usual way to start it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/porthole/porthole/bench"
)

func main() {
	if target := os.Getenv(bench.EnvSpliceRelay); target != "" {
		// The throughput measurement's plain TCP relay (bench/splice.go).
		fmt.Fprintln(os.Stderr, "porthole-bench:", bench.RunSpliceRelay(target))
		os.Exit(1)
	}
	var opts bench.Options
	var only, jsonOut string
	flag.StringVar(&only, "only", "", "comma-separated measurements to make: "+strings.Join(bench.Measurements, ", ")+
		" (default all of these), or "+strings.Join(bench.Extra, ", ")+" (only when named)")
	flag.Func("size", "bytes per transfer; K, M or G for KiB, MiB, GiB (default 64M)", func(s string) (err error) {
		opts.Size, err = parseSize(s)
		return err
	})
	flag.IntVar(&opts.Reps, "reps", 0, "transfers per tool and operation (default 3)")
	flag.IntVar(&opts.ShellRuns, "shell-runs", 0, "shells opened per tool (default 20)")
	flag.IntVar(&opts.EchoCount, "echoes", 0, "keystrokes echoed per tool (default 200)")
	flag.IntVar(&opts.Devices, "devices", 0, "simulated idle devices (default 10000)")
	flag.IntVar(&opts.Tunnels, "tunnels", 0, "idle ssh -N -R clients on the OpenSSH side (default 50)")
	flag.DurationVar(&opts.RTT, "rtt", 0, "round trip of every link in the WAN measurement (default 40ms)")
	flag.IntVar(&opts.WANRuns, "wan-runs", 0, "shells opened per tool in the WAN measurement, and five times as many keystrokes (default 10)")
	flag.DurationVar(&opts.Settle, "settle", 0, "wait before each memory reading (default 5s)")
	flag.IntVar(&opts.LoadSessions, "load-sessions", 0, "sessions started at once by the load measurement (default 50)")
	flag.IntVar(&opts.LoadDevices, "load-devices", 0, "devices the load measurement spreads them over, besides all on one (default 10)")
	flag.IntVar(&opts.LoadRounds, "load-rounds", 0, "bursts of each case in the load measurement (default 3)")
	flag.IntVar(&opts.ClusterSessions, "cluster-sessions", 0, "interactive sessions the cluster measurement opens at once over two server nodes (default 200)")
	flag.IntVar(&opts.ClusterDevices, "cluster-devices", 0, "devices (real agents) the cluster measurement spreads its sessions over (default 10)")
	flag.IntVar(&opts.ClusterKeystrokes, "cluster-keystrokes", 0, "keystrokes each cluster session types and times, one per 100 ms (default 20)")
	flag.StringVar(&opts.ClusterPostgres, "cluster-pg", "", "PostgreSQL database the cluster measurement's nodes share, in a schema of the run's own, dropped at the end (default "+bench.DefaultClusterPostgres+")")
	flag.BoolVar(&opts.MosquittoPersistence, "mosquitto-persistence", false, "storm-mosquitto: Mosquitto with persistence on (as Debian's mosquitto.conf), restarted cleanly (SIGINT) instead of killed")
	flag.StringVar(&opts.Dir, "dir", "", "work directory to keep, with every log and config (default a temporary one, removed)")
	flag.StringVar(&opts.Revision, "revision", "", "name of the source measured, for the report (default: git describe)")
	flag.DurationVar(&opts.WaitQuiet, "wait-quiet", 0, "on a shared machine, wait up to this long for the load average to fall below the number of cores before measuring")
	flag.StringVar(&jsonOut, "json", "", "also write the results as JSON to this file")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "porthole-bench: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	if only != "" {
		opts.Only = strings.Split(only, ",")
	}
	if err := run(opts, jsonOut); err != nil {
		fmt.Fprintln(os.Stderr, "porthole-bench:", err)
		os.Exit(1)
	}
}

func run(opts bench.Options, jsonOut string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	res, err := bench.Run(ctx, opts, log)
	if res == nil {
		return err
	}
	// What was measured is printed even when a later measurement failed.
	if perr := report(res, jsonOut); perr != nil {
		return perr
	}
	return err
}

// report prints res as Markdown and writes it as JSON to jsonOut, if set.
func report(res *bench.Results, jsonOut string) error {
	if jsonOut != "" {
		data, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(jsonOut, data, 0o644); err != nil {
			return err
		}
	}
	return res.Markdown(os.Stdout)
}

// parseSize reads "64M", "1G", "512K" or a plain byte count.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size such as 64M or 1G", s)
	}
	return n * mult, nil
}
