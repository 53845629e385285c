package bench

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/porthole/porthole/apitype"
)

// Load is the measurement of many sessions opened at once (issue 11: fifty
// `porthole ssh DEV -- echo ok` at once used to fail in part). It is not
// part of the default run: -only load asks for it.
const Load = "load"

// Extra are the measurements made only when Options.Only names them.
var Extra = []string{Load, Cluster, StormMosquitto}

// LoadResult is the load measurement: Sessions commands started at once,
// Rounds times, for each case.
type LoadResult struct {
	Sessions, Rounds int
	Cases            []LoadCase
}

// LoadCase is one client and spread of sessions under load.
type LoadCase struct {
	Tool    string
	Devices int // the sessions are spread over this many devices (0: OpenSSH)
	// Bursts is each round's time from the first start to the last exit.
	Bursts Durations
	// FirstOut and Exits are every session's time to its first output and
	// to its exit, successful ones only.
	FirstOut, Exits Durations
	Failed          int
	Errors          map[string]int // the failures' last words, counted
}

// PerSecond is the sessions opened and done per second of burst.
func (c LoadCase) PerSecond() float64 {
	var total time.Duration
	for _, b := range c.Bursts {
		total += b
	}
	return ratio(float64(len(c.Exits)), total.Seconds())
}

// P99 is the 0.99-quantile.
func (d Durations) P99() time.Duration { return d.Quantile(0.99) }

// loadDevice names the extra devices of the load measurement.
func loadDevice(i int) string { return fmt.Sprintf("load%d", i) }

// load starts sessions commands at once, rounds times, through porthole
// on one device, through porthole over devices devices (benchDevice and
// devices-1 more, enrolled and run for this measurement and stopped at its
// end), and through ssh to the local sshd.
func load(ctx context.Context, b *benchRun, sessions, devices, rounds int) (*LoadResult, error) {
	p := b.porthole
	b.log.Info("load: enrolling devices", "devices", devices)
	names := []string{benchDevice}
	agents, err := p.addDevices(ctx, devices-1)
	defer func() {
		for _, a := range agents {
			if err := a.stop(10 * time.Second); err != nil {
				b.log.Warn("stopping a load device's agent", "err", err)
			}
		}
	}()
	if err != nil {
		return nil, err
	}
	for i := range devices - 1 {
		names = append(names, loadDevice(i+1))
	}
	cases := []struct {
		c   LoadCase
		cmd func(i int) *exec.Cmd
	}{
		{LoadCase{Tool: toolPorthole, Devices: 1}, func(int) *exec.Cmd {
			return p.cmd("ssh", benchDevice, "--", "echo", "ok")
		}},
		{LoadCase{Tool: toolPorthole, Devices: devices}, func(i int) *exec.Cmd {
			return p.cmd("ssh", names[i%len(names)], "--", "echo", "ok")
		}},
		{LoadCase{Tool: toolOpenSSH}, func(int) *exec.Cmd {
			return b.openssh.ssh(nil, "echo", "ok")
		}},
	}
	res := &LoadResult{Sessions: sessions, Rounds: rounds}
	for i := range cases {
		cases[i].c.Errors = map[string]int{}
	}
	b.log.Info("load", "sessions", sessions, "devices", devices, "rounds", rounds)
	for round := range rounds {
		for k := range cases {
			// The cases take turns, from round to round, as the tools do
			// elsewhere.
			c := &cases[(k+round)%len(cases)]
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			p.waitIdle()
			b.openssh.settle()
			burst(c.cmd, sessions, &c.c)
		}
	}
	for _, c := range cases {
		res.Cases = append(res.Cases, c.c)
	}
	return res, nil
}

// burst starts n commands at once and adds what they took to c.
func burst(mk func(i int) *exec.Cmd, n int, c *LoadCase) {
	type result struct {
		t   timing
		err error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		cmd := mk(i)
		wg.Go(func() {
			t, err := timeCommand(cmd, true)
			results[i] = result{t, err}
		})
	}
	wg.Wait()
	c.Bursts = append(c.Bursts, time.Since(start))
	for _, r := range results {
		if r.err != nil {
			c.Failed++
			c.Errors[lastLine(r.err.Error())]++
			continue
		}
		c.FirstOut = append(c.FirstOut, r.t.firstOut)
		c.Exits = append(c.Exits, r.t.wall)
	}
}

// lastLine is the last line of s, which for a failed command is its last
// words.
func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexAny(s, "\r\n"); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// addDevices enrolls n more devices, loadDevice(1) to loadDevice(n), runs
// their agents (consent: auto) and waits until they are online. The agents
// returned are the caller's to stop, also with an error.
func (p *porthole) addDevices(ctx context.Context, n int) ([]*proc, error) {
	if n <= 0 {
		return nil, nil
	}
	tok, err := p.api.CreateEnrollmentToken(ctx, benchFleet, apitype.CreateEnrollmentTokenRequest{Uses: n})
	if err != nil {
		return nil, fmt.Errorf("creating an enrollment token: %w", err)
	}
	var agents []*proc
	for i := 1; i <= n; i++ {
		name := loadDevice(i)
		dir := filepath.Join(p.dir, name)
		state := filepath.Join(dir, "state")
		if _, err := runOutput(ctx, baseEnv(p.dir), "", p.bins.agent, "enroll", "--server", p.publicURL,
			"--token", tok.Token, "--fingerprint", p.fp, "--name", name, "--state", state); err != nil {
			return agents, err
		}
		a, err := startAgent(p.bins.agent, "porthole-agent "+name, dir, state)
		if err != nil {
			return agents, err
		}
		agents = append(agents, a)
	}
	for i := 1; i <= n; i++ {
		if err := p.waitOnline(ctx, loadDevice(i), 30*time.Second); err != nil {
			return agents, err
		}
	}
	return agents, nil
}

// loadMarkdown writes the load table.
func (l *LoadResult) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "### Load: %d sessions at once (`echo ok`), %d rounds\n\n", l.Sessions, l.Rounds)
	b.WriteString("| tool | spread over | sessions/s | vs OpenSSH direct | first output, median | p99 | exit, p99 | failed |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|\n")
	var base float64
	for _, c := range l.Cases {
		if c.Tool == toolOpenSSH {
			base = c.PerSecond()
		}
	}
	for _, c := range l.Cases {
		spread := "–"
		if c.Devices == 1 {
			spread = "1 device"
		} else if c.Devices > 1 {
			spread = fmt.Sprintf("%d devices", c.Devices)
		}
		fmt.Fprintf(b, "| %s | %s | %.1f | %s | %s | %s | %s | %d of %d |\n", c.Tool, spread, c.PerSecond(),
			fmtRatio(ratio(c.PerSecond(), base)), fmtDur(c.FirstOut.Median()), fmtDur(c.FirstOut.P99()), fmtDur(c.Exits.P99()),
			c.Failed, c.Failed+len(c.Exits))
	}
	for _, c := range l.Cases {
		words := make([]string, 0, len(c.Errors))
		for w := range c.Errors {
			words = append(words, w)
		}
		slices.Sort(words)
		for _, w := range words {
			fmt.Fprintf(b, "\n%s failures (%d×): %s", c.Tool, c.Errors[w], w)
		}
	}
	b.WriteString("\n\n")
}
