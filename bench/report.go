package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Markdown writes the results as the tables of bench/README.md.
func (r *Results) Markdown(w io.Writer) error {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "Run of %s, source %s.\n", r.Date.Format("2006-01-02 15:04 UTC"), orDash(r.Revision))
	fmt.Fprintf(&b, "Machine: %d cores (%s), Linux %s, %s, %s; load average %s before, %s after.\n\n",
		m.Cores, orDash(m.CPU), orDash(m.Kernel), m.Go, orDash(m.OpenSSH), orDash(m.LoadBefore), orDash(m.LoadAfter))

	if len(r.Throughput) > 0 {
		fmt.Fprintf(&b, "### Throughput: %s per transfer, median of %d, connection setup included\n\n",
			fmtBytes(float64(r.Throughput[0].Size)), len(r.Throughput[0].Walls))
		b.WriteString("| operation | tool | MB/s | vs OpenSSH direct | CPU-s/GiB client | relay | device side |\n")
		b.WriteString("|---|---|--:|--:|--:|--:|--:|\n")
		base := map[string]float64{}
		for _, x := range r.Throughput {
			if x.Tool == toolOpenSSH {
				base[x.Op] = x.MBps()
			}
		}
		for _, x := range r.Throughput {
			relay := fmt.Sprintf("%.2f", x.cpuPerGiB(x.RelayCPU))
			if x.Tool == toolOpenSSH || x.Tool == toolGCM {
				relay = "–"
			}
			if x.Tool == toolSplice {
				relay += "²"
			}
			client := fmt.Sprintf("%.2f", x.cpuPerGiB(x.ClientCPU))
			if x.Tool == toolStock {
				client += "¹"
			}
			fmt.Fprintf(&b, "| %s | %s | %.0f | %s | %s | %s | %.2f |\n", x.Op, x.Tool, x.MBps(),
				fmtRatio(ratio(x.MBps(), base[x.Op])), client, relay, x.cpuPerGiB(x.DeviceCPU))
		}
		b.WriteString("\n¹ ssh or scp alone: ssh never reaps its ProxyCommand (it sends it SIGHUP and exits), so the CPU of `porthole proxy`, which carries the outer leg, is not counted.\n")
		b.WriteString("² a plain TCP relay in a process of its own (io.Copy, splice(2)): what a relay that reads and decrypts nothing costs, the floor for Porthole's relay column.\n\n")
	}

	if len(r.Files) > 0 {
		fmt.Fprintf(&b, "### Many small files: `scp -r` of %d files of %s, median of %d, connection setup included\n\n",
			smallFileCount, fmtBytes(smallFileSize), len(r.Files[0].Walls))
		b.WriteString("| operation | tool | time, median | vs OpenSSH direct (time) | CPU-s client | relay | device side |\n")
		b.WriteString("|---|---|--:|--:|--:|--:|--:|\n")
		base := map[string]time.Duration{}
		for _, x := range r.Files {
			if x.Tool == toolOpenSSH {
				base[x.Op] = x.Walls.Median()
			}
		}
		for _, x := range r.Files {
			n := float64(len(x.Walls))
			relay := fmt.Sprintf("%.2f", x.RelayCPU.Seconds()/n)
			if x.Tool == toolOpenSSH {
				relay = "–"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %.2f | %s | %.2f |\n", x.Op, x.Tool, fmtDur(x.Walls.Median()),
				fmtRatio(ratio(float64(x.Walls.Median()), float64(base[x.Op]))), x.ClientCPU.Seconds()/n, relay, x.DeviceCPU.Seconds()/n)
		}
		b.WriteString("\n")
	}

	if len(r.Shell) > 0 {
		fmt.Fprintf(&b, "### Time to shell: `echo ok` on the device from an idle start, %d runs each\n\n", len(r.Shell[0].Exits))
		b.WriteString("| tool | first output, median | p95 | exit, median | p95 | vs OpenSSH direct (median first output) |\n")
		b.WriteString("|---|--:|--:|--:|--:|--:|\n")
		var base time.Duration
		for _, s := range r.Shell {
			if s.Tool == toolOpenSSH {
				base = s.FirstOut.Median()
			}
		}
		for _, s := range r.Shell {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", s.Tool, fmtDur(s.FirstOut.Median()), fmtDur(s.FirstOut.P95()),
				fmtDur(s.Exits.Median()), fmtDur(s.Exits.P95()), fmtRatio(ratio(float64(s.FirstOut.Median()), float64(base))))
		}
		b.WriteString("\n")
	}

	if len(r.Echo) > 0 {
		fmt.Fprintf(&b, "### Interactive echo: one keystroke's round trip over an open session, %d each\n\n", len(r.Echo[0].RTT))
		b.WriteString("| tool | median | p95 | vs OpenSSH direct (median) |\n|---|--:|--:|--:|\n")
		var base time.Duration
		for _, e := range r.Echo {
			if e.Tool == toolOpenSSH {
				base = e.RTT.Median()
			}
		}
		for _, e := range r.Echo {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", e.Tool, fmtDur(e.RTT.Median()), fmtDur(e.RTT.P95()),
				fmtRatio(ratio(float64(e.RTT.Median()), float64(base))))
		}
		b.WriteString("\n")
	}

	if wr := r.WAN; wr != nil && len(wr.Shell) > 0 && len(wr.Echo) > 0 {
		fmt.Fprintf(&b, "### With a %v round trip on every link: time to shell (%d runs) and echo (%d keystrokes)\n\n",
			wr.RTT, len(wr.Shell[0].Exits), len(wr.Echo[0].RTT))
		b.WriteString("| tool | first output, median | p95 | vs OpenSSH direct | echo, median | p95 | vs OpenSSH direct |\n")
		b.WriteString("|---|--:|--:|--:|--:|--:|--:|\n")
		var baseShell, baseEcho time.Duration
		for i, s := range wr.Shell {
			if s.Tool == toolOpenSSH {
				baseShell, baseEcho = s.FirstOut.Median(), wr.Echo[i].RTT.Median()
			}
		}
		for i, s := range wr.Shell {
			e := wr.Echo[i]
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", s.Tool,
				fmtDur(s.FirstOut.Median()), fmtDur(s.FirstOut.P95()), fmtRatio(ratio(float64(s.FirstOut.Median()), float64(baseShell))),
				fmtDur(e.RTT.Median()), fmtDur(e.RTT.P95()), fmtRatio(ratio(float64(e.RTT.Median()), float64(baseEcho))))
		}
		b.WriteString("\n")
	}

	if r.Load != nil {
		r.Load.markdown(&b)
	}
	if r.Cluster != nil {
		r.Cluster.markdown(&b)
	}
	if r.MosquittoStorm != nil {
		r.MosquittoStorm.markdown(&b)
	}

	if i := r.Idle; i != nil {
		fmt.Fprintf(&b, "### Idle devices: %d simulated devices on the embedded broker\n\n", i.Devices)
		b.WriteString("| figure | value |\n|---|--:|\n")
		row := func(k, v string) { fmt.Fprintf(&b, "| %s | %s |\n", k, v) }
		row("portholed RSS, only the real device / all connected", fmt.Sprintf("%s / %s", fmtBytes(float64(i.RSSBefore)), fmtBytes(float64(i.RSSAfter))))
		row("**portholed RSS per idle device**", "**"+fmtBytes(i.PerDevice())+"**")
		row("of which Go heap / goroutine stacks per device", fmt.Sprintf("%s / %s",
			fmtBytes(ratio(float64(i.Heap), float64(i.Devices))), fmtBytes(ratio(float64(i.Stack), float64(i.Devices)))))
		row("goroutines per device", fmt.Sprintf("%.2f", ratio(float64(i.Goroutines), float64(i.Devices))))
		if i.SSHClients > 0 {
			row(fmt.Sprintf("sshd PSS per idle `ssh -N -R` client (%d clients)", i.SSHClients), fmtBytes(i.PerSSHClient()))
			row("**Porthole vs OpenSSH pivot, server memory per idle device**", "**"+fmtRatio(ratio(i.PerDevice(), i.PerSSHClient()))+"**")
			row("device side: porthole-agent RSS / one idle ssh -N -R client RSS", fmt.Sprintf("%s / %s",
				fmtBytes(float64(i.AgentRSS)), fmtBytes(float64(i.SSHClientRSS))))
		}
		if i.AgentARM64 > 0 {
			row("porthole-agent RSS: its own memory / its binary's pages mapped in", fmt.Sprintf("%s / %s",
				fmtBytes(float64(i.AgentAnon)), fmtBytes(float64(i.AgentFile))))
			row("porthole-agent for linux/arm64, stripped (goal ≤ 10 MB)", fmt.Sprintf("%.1f MB", float64(i.AgentARM64)/1e6))
		}
		row("enrolling them through the API", fmt.Sprintf("%.1f s (%.0f/s)", i.Enroll.Seconds(), ratio(float64(i.Devices), i.Enroll.Seconds())))
		row(fmt.Sprintf("first connection, %d at a time", connectParallel), fmt.Sprintf("%.1f s (%.0f/s)", i.Connect.Seconds(), ratio(float64(i.Devices), i.Connect.Seconds())))
		row("restart: stopping portholed (every device recorded offline)", fmt.Sprintf("%.2f s", i.Stop.Seconds()))
		row("restart: starting portholed until /healthz answers", fmt.Sprintf("%.2f s", i.Start.Seconds()))
		if i.BackCount == i.Devices {
			row("**every device connected and subscribed again**", fmt.Sprintf("**%.1f s** after the stop began (%.1f s after the new process started)", i.Back.Seconds(), i.BackAfterStart.Seconds()))
		} else {
			row("**devices back within 5 min**", fmt.Sprintf("**%d of %d**", i.BackCount, i.Devices))
		}
		if i.StoreOnline > 0 {
			row("the API shows every device online", fmt.Sprintf("%.1f s after the stop began", i.StoreOnline.Seconds()))
		}
		row("failed connection attempts during the storm", fmt.Sprint(i.Failures))
		for _, k := range sortedKinds(i.FailureKinds) {
			row("&nbsp;&nbsp;"+k, fmt.Sprint(i.FailureKinds[k]))
		}
		row("portholed RSS after the storm", fmtBytes(float64(i.RSSRestart)))
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}
