package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Tools, as the report names them.
const (
	toolPorthole = "porthole"                   // porthole ssh / porthole scp
	toolStock    = "OpenSSH via porthole proxy" // stock ssh/scp with `porthole ssh-config`
	toolOpenSSH  = "OpenSSH direct"             // ssh/scp to the local sshd, default ciphers
	toolGCM      = "OpenSSH direct, AES-GCM"    // the same, with the cipher Porthole's Go SSH picks
	toolSplice   = "OpenSSH via a TCP splice"   // ssh to sshd through a plain TCP relay: a relay's floor
)

// XferResult is one operation with one tool, over every repetition.
type XferResult struct {
	Op, Tool string
	Size     int64     // bytes per transfer
	Walls    Durations // each transfer's wall time, connection setup included
	// CPU time over all repetitions: the client command (with what it
	// started), the relay (portholed; zero for OpenSSH direct) and the
	// device's side (porthole-agent with its children, or sshd with its
	// connection processes).
	ClientCPU, RelayCPU, DeviceCPU time.Duration
}

// MBps is the median throughput in MB/s (10⁶ bytes).
func (r XferResult) MBps() float64 {
	return ratio(float64(r.Size)/1e6, r.Walls.Median().Seconds())
}

// cpuPerGiB is CPU seconds per GiB moved.
func (r XferResult) cpuPerGiB(d time.Duration) float64 {
	return ratio(d.Seconds(), float64(r.Size)*float64(len(r.Walls))/(1<<30))
}

// xferJob is one tool's way of doing one operation.
type xferJob struct {
	op, tool string
	viaRelay bool
	// splice: through the plain TCP relay, whose CPU is the relay's.
	splice *spliceRelay
	// cmd makes the command; check verifies what it did, given its
	// standard output, and cleans up.
	cmd   func() *exec.Cmd
	check func(stdout string) error
}

// Operations, in the order throughput makes them.
var xferOps = []string{"scp up", "scp down", "cat up", "cat down"}

// xferTools are the tools throughput compares, in the order of the report.
var xferTools = []string{toolPorthole, toolStock, toolOpenSSH, toolGCM, toolSplice}

// throughput copies a file of size bytes up and down with every tool,
// reps times, interleaved: in each repetition every operation runs once
// per tool, the tools' order turning from one repetition to the next.
func throughput(ctx context.Context, b *benchRun, size int64, reps int) ([]XferResult, error) {
	jobs, done, err := b.xferJobs(size)
	if err != nil {
		return nil, err
	}
	defer done()
	return b.runInterleaved(ctx, jobs, xferOps, xferTools, reps, size, func(rep int) {
		b.log.Info("throughput", "repetition", rep+1, "of", reps, "size", fmtBytes(float64(size)))
	})
}

// runInterleaved runs jobs reps times, interleaved: in each repetition
// every operation of ops runs once per tool, the tools' order turning from
// one repetition to the next. Each result's Size is size; starting tells
// of each repetition.
func (b *benchRun) runInterleaved(ctx context.Context, jobs []xferJob, ops, tools []string, reps int, size int64, starting func(rep int)) ([]XferResult, error) {
	results := map[[2]string]*XferResult{}
	var order [][2]string
	for _, j := range jobs {
		k := [2]string{j.op, j.tool}
		if results[k] == nil {
			results[k] = &XferResult{Op: j.op, Tool: j.tool, Size: size}
			order = append(order, k)
		}
	}
	for rep := range reps {
		starting(rep)
		for _, op := range ops {
			for i := range tools {
				tool := tools[(i+rep)%len(tools)]
				for _, j := range jobs {
					if j.op != op || j.tool != tool {
						continue
					}
					if err := ctx.Err(); err != nil {
						return nil, err
					}
					if err := b.runXfer(j, results[[2]string{op, tool}]); err != nil {
						return nil, fmt.Errorf("%s with %s: %w", op, tool, err)
					}
				}
			}
		}
	}
	out := make([]XferResult, 0, len(order))
	for _, k := range order {
		out = append(out, *results[k])
	}
	return out, nil
}

// xferJobs writes a source file of size random bytes and returns every
// operation with every tool on it; done removes the file.
func (b *benchRun) xferJobs(size int64) (jobs []xferJob, done func(), err error) {
	dir := filepath.Join(b.dir, "xfer")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	src := filepath.Join(dir, "source.bin")
	if err := writeRandomFile(src, size); err != nil {
		return nil, nil, err
	}
	p, o := b.porthole, b.openssh
	dst := func(tool, op string) string {
		return filepath.Join(dir, strings.NewReplacer(" ", "-", ",", "").Replace(tool+"-"+op))
	}
	sizeIs := func(path string) func(string) error {
		return func(string) error {
			defer os.Remove(path)
			fi, err := os.Stat(path)
			if err != nil {
				return err
			}
			if fi.Size() != size {
				return fmt.Errorf("%s has %d bytes; want %d", path, fi.Size(), size)
			}
			return nil
		}
	}
	counted := func(out string) error {
		if n, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64); err != nil || n != size {
			return fmt.Errorf("the device counted %q bytes; want %d", strings.TrimSpace(out), size)
		}
		return nil
	}
	// Files are closed by runXfer once the command has exited.
	stdin := func(c *exec.Cmd) *exec.Cmd {
		if f, err := os.Open(src); err == nil {
			c.Stdin = f
		}
		return c
	}
	toNull := func(c *exec.Cmd) *exec.Cmd {
		if f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
			c.Stdout = f
		}
		return c
	}
	gcm := []string{"-c", "aes128-gcm@openssh.com"}
	// The floor: OpenSSH through a relay that only copies TCP, in a
	// process of its own whose CPU is measured as the relay's.
	sp, err := startSpliceRelay(dir, "127.0.0.1:"+strconv.Itoa(o.port))
	if err != nil {
		os.Remove(src)
		return nil, nil, err
	}
	done = func() { os.Remove(src); _ = sp.proc.stop(time.Second) }
	spliced := []string{"-o", "HostKeyAlias=[127.0.0.1]:" + strconv.Itoa(o.port), "-o", "Port=" + strconv.Itoa(sp.port)}
	dev := benchDevice
	stock := dev + ".porthole"

	add := func(op, tool string, viaRelay bool, cmd func() *exec.Cmd, check func(string) error) {
		j := xferJob{op: op, tool: tool, viaRelay: viaRelay, cmd: cmd, check: check}
		if tool == toolSplice {
			j.splice = sp
		}
		jobs = append(jobs, j)
	}
	// scp: SFTP on every side.
	for _, t := range []struct {
		tool     string
		viaRelay bool
		up, down func(local, remote string) *exec.Cmd
	}{
		{toolPorthole, true,
			func(l, r string) *exec.Cmd { return p.cmd("scp", l, dev+":"+r) },
			func(l, r string) *exec.Cmd { return p.cmd("scp", dev+":"+r, l) }},
		{toolStock, true,
			func(l, r string) *exec.Cmd { return p.stockSSH("scp", "-q", l, stock+":"+r) },
			func(l, r string) *exec.Cmd { return p.stockSSH("scp", "-q", stock+":"+r, l) }},
		{toolOpenSSH, false,
			func(l, r string) *exec.Cmd { return o.scp(nil, l, "REMOTE:"+r) },
			func(l, r string) *exec.Cmd { return o.scp(nil, "REMOTE:"+r, l) }},
		{toolGCM, false,
			func(l, r string) *exec.Cmd { return o.scp(gcm, l, "REMOTE:"+r) },
			func(l, r string) *exec.Cmd { return o.scp(gcm, "REMOTE:"+r, l) }},
		{toolSplice, false,
			func(l, r string) *exec.Cmd { return o.scp(spliced, l, "REMOTE:"+r) },
			func(l, r string) *exec.Cmd { return o.scp(spliced, "REMOTE:"+r, l) }},
	} {
		up, down := dst(t.tool, "scp-up"), dst(t.tool, "scp-down")
		add("scp up", t.tool, t.viaRelay, func() *exec.Cmd { return t.up(src, up) }, sizeIs(up))
		add("scp down", t.tool, t.viaRelay, func() *exec.Cmd { return t.down(down, src) }, sizeIs(down))
	}
	// cat over an exec channel: the raw stream, no file protocol; up is
	// counted by the device, down goes to /dev/null as in `ssh host cat
	// FILE > /dev/null`.
	for _, t := range []struct {
		tool     string
		viaRelay bool
		run      func(command string) *exec.Cmd
	}{
		{toolPorthole, true, func(c string) *exec.Cmd { return p.cmd("ssh", dev, "--", c) }},
		{toolStock, true, func(c string) *exec.Cmd { return p.stockSSH("ssh", stock, c) }},
		{toolOpenSSH, false, func(c string) *exec.Cmd { return o.ssh(nil, c) }},
		{toolGCM, false, func(c string) *exec.Cmd { return o.ssh(gcm, c) }},
		{toolSplice, false, func(c string) *exec.Cmd { return o.ssh(spliced, c) }},
	} {
		add("cat up", t.tool, t.viaRelay, func() *exec.Cmd { return stdin(t.run("wc -c")) }, counted)
		add("cat down", t.tool, t.viaRelay, func() *exec.Cmd { return toNull(t.run("cat " + src)) }, nil)
	}
	return jobs, done, nil
}

// runXfer runs one transfer, with the CPU of the relay and the device's
// side counted around it, and adds it to r.
func (b *benchRun) runXfer(j xferJob, r *XferResult) error {
	p, o := b.porthole, b.openssh
	var relay0, dev0 time.Duration
	var err error
	if j.viaRelay {
		relay0, dev0, err = p.cpu()
	} else {
		dev0, err = o.cpu()
	}
	if err == nil && j.splice != nil {
		relay0, err = cpuTime(j.splice.proc.pid())
	}
	if err != nil {
		return err
	}
	cmd := j.cmd()
	var stdout strings.Builder
	if cmd.Stdout == nil {
		cmd.Stdout = &stdout
	}
	t, err := timeCommand(cmd, false)
	for _, f := range []any{cmd.Stdin, cmd.Stdout} {
		if f, ok := f.(*os.File); ok {
			f.Close()
		}
	}
	if err != nil {
		return err
	}
	if j.check != nil {
		if err := j.check(stdout.String()); err != nil {
			return err
		}
	}
	var relay1, dev1 time.Duration
	if j.viaRelay {
		p.waitIdle() // the agent's children reaped, the relay quiet
		relay1, dev1, err = p.cpu()
	} else {
		o.settle()
		dev1, err = o.cpu()
	}
	if err == nil && j.splice != nil {
		relay1, err = cpuTime(j.splice.proc.pid())
	}
	if err != nil {
		return err
	}
	r.Walls = append(r.Walls, t.wall)
	r.ClientCPU += t.cpu
	r.RelayCPU += relay1 - relay0
	r.DeviceCPU += dev1 - dev0
	return nil
}

// writeRandomFile writes size random bytes to path (random, so that no
// compression anywhere could flatter a result).
func writeRandomFile(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
