package bench

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
)

// ShellResult is the time to a remote command's first output and to the
// client's exit, for one tool over every run.
type ShellResult struct {
	Tool            string
	FirstOut, Exits Durations
}

// clientTool is one client's way to run a remote command.
type clientTool struct {
	name string
	cmd  func(args ...string) *exec.Cmd // args are joined by the remote shell
}

// clientTools are the three clients that take a command line: porthole
// ssh, stock ssh through `porthole ssh-config`, and ssh to the local sshd.
// Options go before the command.
func (b *benchRun) clientTools() []clientTool {
	p, o := b.porthole, b.openssh
	// split copies, so that appending to opts cannot overwrite command.
	split := func(args []string) (opts, command []string) {
		i := slices.IndexFunc(args, func(a string) bool { return !strings.HasPrefix(a, "-") })
		if i < 0 {
			i = len(args)
		}
		return slices.Clone(args[:i]), slices.Clone(args[i:])
	}
	return []clientTool{
		{toolPorthole, func(args ...string) *exec.Cmd {
			opts, command := split(args)
			return p.cmd(append(append(append([]string{"ssh"}, opts...), benchDevice, "--"), command...)...)
		}},
		{toolStock, func(args ...string) *exec.Cmd {
			opts, command := split(args)
			return p.stockSSH("ssh", append(append(opts, benchDevice+".porthole"), command...)...)
		}},
		{toolOpenSSH, func(args ...string) *exec.Cmd {
			opts, command := split(args)
			return o.ssh(opts, command...)
		}},
	}
}

// timeToShell runs `echo ok` on the device with each tool n times,
// interleaved, each run from an idle start: for Porthole the device idles
// on MQTT with no relay connection, so every run includes the session
// request, the wake-up, the device's dial to the relay and both
// handshakes; for OpenSSH, a new connection and login.
func timeToShell(ctx context.Context, b *benchRun, n int) ([]ShellResult, error) {
	tools := b.clientTools()
	results := make([]ShellResult, len(tools))
	for i, t := range tools {
		results[i].Tool = t.name
	}
	b.log.Info("time to shell", "runs", n)
	for run := range n {
		for k := range tools {
			i := (k + run) % len(tools)
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			tm, err := b.shellOnce(tools[i])
			if err != nil {
				return nil, err
			}
			results[i].FirstOut = append(results[i].FirstOut, tm.firstOut)
			results[i].Exits = append(results[i].Exits, tm.wall)
		}
	}
	return results, nil
}

// shellOnce runs `echo ok` once with t, from quiet: the last session is
// gone everywhere.
func (b *benchRun) shellOnce(t clientTool) (timing, error) {
	b.porthole.waitIdle()
	b.openssh.settle()
	tm, err := timeCommand(t.cmd("echo", "ok"), true)
	if err != nil {
		return tm, fmt.Errorf("time to shell with %s: %w", t.name, err)
	}
	return tm, nil
}
