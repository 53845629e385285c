package agentssh

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Each session's processes live in a cgroup (v2) of their own, made under
// the agent's own cgroup, so that ending the session kills all of them
// (asked with SIGTERM first, then, a moment later, cgroup.kill): a process that leaves its session (setsid, a double
// fork, nohup) is still in the cgroup, where killing a process group or a
// session would miss it. Processes start in it directly (clone3 with
// CLONE_INTO_CGROUP, SysProcAttr.UseCgroupFD), so not even a fork made at
// once escapes. Without a writable cgroup v2 hierarchy (a container
// without delegation, an old kernel) the agent says so once and falls back
// to killing each process's session, which a setsid escapes.

// sessionCgroups makes and kills the sessions' cgroups.
type sessionCgroups struct {
	log *slog.Logger

	mu   sync.Mutex
	base string                    // guarded by mu: where sessions' cgroups are made; "" if nowhere
	dirs map[string]*sessionCgroup // guarded by mu: by session
}

// sessionCgroup is one session's cgroup.
type sessionCgroup struct {
	dir  string
	done <-chan struct{} // the session's context's: its end kills the cgroup

	mu    sync.Mutex
	ended bool // guarded by mu: killed or being killed; no process may enter
}

// newSessionCgroups finds where the agent may make cgroups: a directory
// "porthole-sessions" under its own cgroup in the v2 hierarchy.
func newSessionCgroups(log *slog.Logger) *sessionCgroups {
	cg := &sessionCgroups{log: log, dirs: map[string]*sessionCgroup{}}
	mount, own, err := cgroup2Self()
	if err == nil {
		base := filepath.Join(mount, own, "porthole-sessions")
		if err = os.MkdirAll(base, 0o755); err == nil {
			if err = probeCgroup(base); err == nil {
				cg.base = base
				return cg
			}
		}
	}
	log.Warn("no cgroup (v2) for sessions: a process that leaves its session (setsid, double fork) can outlive the session", "err", err)
	return cg
}

// probeCgroup starts a process in the cgroup dir, as sessions' processes
// will be (clone3 with CLONE_INTO_CGROUP, Linux 5.7 and later), so that a
// kernel that cannot is found now rather than on an engineer's command.
func probeCgroup(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command("/bin/true")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("starting a process in a cgroup: %w", err)
	}
	return nil
}

// cgroup2Self returns where the cgroup v2 hierarchy is mounted and the
// agent's own cgroup in it.
func cgroup2Self() (mount, own string, err error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", "", err
	}
	for line := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			own = rest
		}
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "... mount-point options - fstype source super-options"
		fields := strings.Fields(sc.Text())
		for i, fld := range fields {
			if fld == "-" && i+1 < len(fields) && fields[i+1] == "cgroup2" && len(fields) > 4 {
				mount = fields[4]
			}
		}
	}
	if mount == "" {
		return "", "", errors.New("cgroup v2 is not mounted")
	}
	return mount, own, nil
}

// enter opens s, the cgroup of a connection's session, for a process to
// start in, making it if need be; the caller closes the returned file once
// the process has started. Nil where sessions have no cgroups (or can no
// longer have them: then it says so, once). A session that has ended is
// refused: making its cgroup again after it was killed would let the
// process outlive the session.
func (cg *sessionCgroups) enter(s *sessionCgroup) (*os.File, error) {
	if cg == nil || s == nil {
		return nil, nil
	}
	cg.mu.Lock()
	on := cg.base != ""
	cg.mu.Unlock()
	if !on {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return nil, errSessionEnded
	}
	if err := os.Mkdir(s.dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		cg.disable(fmt.Errorf("making a session's cgroup: %w", err))
		return nil, nil
	}
	f, err := os.Open(s.dir)
	if err != nil {
		cg.disable(fmt.Errorf("opening a session's cgroup: %w", err))
		return nil, nil
	}
	return f, nil
}

// errSessionEnded refuses a process asked for as its session ends.
var errSessionEnded = errors.New("the session has ended; open a new one")

// serve returns the cgroup of a connection of session served within ctx,
// the session's context: connections of one session share it. When ctx
// ends, everything in it is killed and it is removed. Nil where sessions
// have no cgroups.
func (cg *sessionCgroups) serve(ctx context.Context, session string) *sessionCgroup {
	if cg == nil {
		return nil
	}
	cg.mu.Lock()
	defer cg.mu.Unlock()
	if cg.base == "" {
		return nil
	}
	if s := cg.dirs[session]; s != nil && s.done == ctx.Done() {
		return s
	}
	// The name is the session's and this registration's own: two servers
	// (or a session id seen again) never share a cgroup.
	s := &sessionCgroup{dir: filepath.Join(cg.base, fmt.Sprintf("s-%s-%x", session, rand.Uint64())), done: ctx.Done()}
	cg.dirs[session] = s
	context.AfterFunc(ctx, func() {
		cg.mu.Lock()
		if cg.dirs[session] == s {
			delete(cg.dirs, session)
		}
		cg.mu.Unlock()
		s.mu.Lock()
		s.ended = true
		s.mu.Unlock()
		cg.kill(s.dir)
	})
	return s
}

// termGrace is how long a session's processes have, once asked to end
// (SIGTERM), before the cgroup kills what is left.
const termGrace = 300 * time.Millisecond

// kill ends every process in the cgroup dir and removes it. They are
// asked first (SIGTERM), so that shells run their EXIT traps, as they do
// when sshd or systemd ends them: a shell killed outright inside a lock
// (pyenv's rehash in a .bashrc takes one) would leave it taken for every
// later login. What is left after termGrace, whatever it does with the
// signal, is killed with cgroup.kill, as is everything it forked.
func (cg *sessionCgroups) kill(dir string) {
	if _, err := os.Stat(dir); err != nil {
		return // no process was started in it
	}
	if procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs")); err == nil {
		for _, f := range strings.Fields(string(procs)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGTERM)
			}
		}
		for deadline := time.Now().Add(termGrace); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if ev, err := os.ReadFile(filepath.Join(dir, "cgroup.events")); err != nil || strings.Contains(string(ev), "populated 0") {
				break
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0); err != nil {
		cg.log.Warn("could not kill the session's processes by their cgroup", "cgroup", dir, "err", err)
	}
	// The processes die at once but are reaped a moment later; the cgroup
	// can be removed when it is empty.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		err := os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			cg.log.Warn("the session's cgroup is still in use; left in place", "cgroup", dir, "err", err)
			return
		}
	}
}

// startProcess starts cmd for the connection's session (see the package's
// startProcess), in the session's cgroup where there are cgroups.
func (c *conn) startProcess(cmd *exec.Cmd, closeAfter ...*os.File) (*process, error) {
	fd, err := c.srv.cgroups.enter(c.cgroup) // nil: no cgroup, said once when that was found
	if err != nil {
		return nil, err
	}
	return startProcess(cmd, c.acct, fd, closeAfter...)
}

// disable turns cgroups off for good, once, saying why.
func (cg *sessionCgroups) disable(err error) {
	cg.mu.Lock()
	defer cg.mu.Unlock()
	if cg.base != "" {
		cg.log.Warn("no more cgroups for sessions: a process that leaves its session (setsid, double fork) can outlive the session", "err", err)
		cg.base = ""
	}
}
