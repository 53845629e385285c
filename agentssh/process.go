package agentssh

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// drainGrace is how long output is still read after a process has ended
// and its session has been killed. Only a process that escaped the kill
// (a daemon that called setsid) can hold a pipe open longer; it does not
// keep the engineer waiting.
const drainGrace = time.Second

// How a command's standard input and output are carried. A read from an
// SSH channel takes all that has arrived, up to the buffer's size, so a
// larger buffer means fewer reads, window adjusts and pipe writes; a pipe
// larger than Linux's 64 KiB lets the agent and the process each run on
// without waiting for the other every 64 KiB. BenchmarkExecStream (256 MiB
// up into `cat`, loopback): with 32 KiB buffers and 64 KiB pipes the agent
// and cat made about 1.5 times the read and write calls and context
// switches they make with these.
const (
	streamBuf = 128 << 10 // stdin and stdout of a command
	smallBuf  = 32 << 10  // stderr, and terminals (which give at most 4 KiB a read)
	pipeSize  = 1 << 20   // Linux's default pipe-max-size; pages are taken only as it fills
)

// fSetPipeSz is F_SETPIPE_SZ (Linux 2.6.35), which package syscall lacks.
const fSetPipeSz = 1031

// newPipe is os.Pipe holding pipeSize bytes where the kernel allows it (an
// unprivileged user over its pipe quota keeps 64 KiB).
func newPipe() (r, w *os.File, err error) {
	r, w, err = os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	if rc, err := w.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { syscall.Syscall(syscall.SYS_FCNTL, fd, fSetPipeSz, pipeSize) })
	}
	return r, w, nil
}

// process is one engineer's process (a shell, a command, an SFTP server),
// leader of its own session and process group, so that killing it kills
// all it started.
type process struct {
	cmd    *exec.Cmd
	start  time.Time
	killed atomic.Bool

	// mu guards reaped. The session is killed only while its leader is
	// not reaped yet (running, or a zombie holding its pid), so its
	// process group and session id cannot have been reused by then.
	mu     sync.Mutex
	reaped bool

	// readers are the parent's ends of the process's output, closed when
	// draining takes longer than drainGrace; copies are the goroutines
	// copying them, done when the output is drained.
	readers []*os.File
	copies  sync.WaitGroup
	// filesMu guards closing the readers against using them elsewhere (a
	// terminal resize), which must not touch a closed file.
	filesMu     sync.Mutex
	filesClosed bool

	done chan struct{} // closed once the process has ended and its output is drained
	exit Exit          // set before done is closed
}

// startProcess starts cmd in a session of its own, and in the cgroup open
// as cgroup if it is not nil (it is closed once the process runs). Files
// in closeAfter are the child's ends of pipes and terminals, closed in the
// parent once it runs.
func startProcess(cmd *exec.Cmd, acct *account, cgroup *os.File, closeAfter ...*os.File) (*process, error) {
	attr := cmd.SysProcAttr
	if attr == nil {
		attr = &syscall.SysProcAttr{}
		cmd.SysProcAttr = attr
	}
	attr.Setsid = true // its own session and process group, no terminal unless Setctty
	attr.Pdeathsig = syscall.SIGKILL
	attr.Credential = acct.cred
	if cgroup != nil {
		attr.UseCgroupFD = true
		attr.CgroupFD = int(cgroup.Fd())
		defer cgroup.Close()
	}
	p := &process{cmd: cmd, start: time.Now(), done: make(chan struct{})}
	err := cmd.Start()
	for _, f := range closeAfter {
		f.Close()
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// copyOut copies one of the process's outputs; run before wait.
func (p *process) copyOut(r *os.File, copy func(r *os.File)) {
	p.readers = append(p.readers, r)
	p.copies.Add(1)
	go func() {
		defer p.copies.Done()
		copy(r)
	}()
}

// wait reaps the process, kills what it left behind, drains its output
// and closes done. Run it once, on its own goroutine.
func (p *process) wait() {
	waitExited(p.cmd.Process.Pid)
	p.mu.Lock()
	p.killSession()
	p.reaped = true
	p.mu.Unlock()
	err := p.cmd.Wait()
	drained := make(chan struct{})
	go func() { p.copies.Wait(); close(drained) }()
	t := time.NewTimer(drainGrace)
	select {
	case <-drained:
	case <-t.C:
		p.closeReaders()
		<-drained
	}
	t.Stop()
	p.closeReaders()
	p.exit = exitOf(p.cmd.ProcessState, err)
	p.exit.Killed = p.killed.Load()
	p.exit.Took = time.Since(p.start)
	close(p.done)
}

// closeReaders closes the parent's ends of the output, once.
func (p *process) closeReaders() {
	p.filesMu.Lock()
	defer p.filesMu.Unlock()
	if p.filesClosed {
		return
	}
	p.filesClosed = true
	for _, r := range p.readers {
		r.Close()
	}
}

// withOpenFiles runs fn unless the output files are closed already, and
// keeps them open while it runs.
func (p *process) withOpenFiles(fn func()) {
	p.filesMu.Lock()
	defer p.filesMu.Unlock()
	if !p.filesClosed {
		fn()
	}
}

func (p *process) Done() <-chan struct{} { return p.done }
func (p *process) Exit() Exit            { return p.exit }

// Kill ends the process and everything in its session at once (the
// recording can no longer follow: nothing more may run).
func (p *process) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.reaped {
		p.killed.Store(true)
		p.killSession()
	}
}

// Stop ends the process and everything in its session when its channel
// or connection ends: asked first (SIGTERM, so that a shell runs its EXIT
// traps and gives back what it holds, as under sshd), killed termGrace
// later if still there.
func (p *process) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaped {
		return
	}
	p.killed.Store(true)
	p.signalSession(syscall.SIGTERM)
	time.AfterFunc(termGrace, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.reaped { // reaped, its ids could be another's
			p.killSession()
		}
	})
}

// Signal forwards a signal request to the process itself, as sshd does.
func (p *process) Signal(s syscall.Signal) { p.cmd.Process.Signal(s) }

// killSession sends SIGKILL to the process's group and to every process
// still in its session (a job-control shell puts jobs in groups of their
// own). Two passes catch children forked during the first.
func (p *process) killSession() {
	for range 2 {
		p.signalSession(syscall.SIGKILL)
	}
}

// signalSession sends sig to the process's group and to every process
// still in its session. The caller holds p.mu and p is not reaped.
func (p *process) signalSession(sig syscall.Signal) {
	sid := p.cmd.Process.Pid
	syscall.Kill(-sid, sig)
	for _, pid := range sessionMembers(sid) {
		syscall.Kill(pid, sig)
	}
}

// waitExited waits until the process pid has ended, without reaping it
// (waitid with WNOWAIT, as os.Process does inside): its pid, and so its
// group's and session's ids, stay taken until cmd.Wait reaps it. On an
// error it returns at once; cmd.Wait still waits.
func waitExited(pid int) {
	const (
		pPID    = 1
		wExited = 4
		wNoWait = 0x1000000
	)
	var info [128]byte // siginfo_t
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid), uintptr(unsafe.Pointer(&info[0])), wExited|wNoWait, 0, 0)
		if errno != syscall.EINTR {
			return
		}
	}
}

// sessionMembers lists the processes whose session id is sid, from /proc.
func sessionMembers(sid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if s, ok := statSession(stat); ok && s == sid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// statSession reads the session id from /proc/PID/stat: "pid (comm) state
// ppid pgrp session ...", where comm may hold spaces and parentheses.
func statSession(stat []byte) (int, bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 4 {
		return 0, false
	}
	sid, err := strconv.Atoi(string(f[3]))
	return sid, err == nil
}

func exitOf(ps *os.ProcessState, err error) Exit {
	if ps == nil {
		return Exit{Status: 255}
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return Exit{Status: -1, Signal: signalName(ws.Signal())}
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return Exit{Status: 255}
	}
	return Exit{Status: ps.ExitCode()}
}

// signals names signals as SSH does (RFC 4254 6.10, without "SIG").
var signals = map[syscall.Signal]string{
	syscall.SIGABRT: "ABRT", syscall.SIGALRM: "ALRM", syscall.SIGFPE: "FPE",
	syscall.SIGHUP: "HUP", syscall.SIGILL: "ILL", syscall.SIGINT: "INT",
	syscall.SIGKILL: "KILL", syscall.SIGPIPE: "PIPE", syscall.SIGQUIT: "QUIT",
	syscall.SIGSEGV: "SEGV", syscall.SIGTERM: "TERM", syscall.SIGUSR1: "USR1",
	syscall.SIGUSR2: "USR2", syscall.SIGBUS: "BUS", syscall.SIGCHLD: "CHLD",
	syscall.SIGCONT: "CONT", syscall.SIGSTOP: "STOP", syscall.SIGTSTP: "TSTP",
	syscall.SIGTTIN: "TTIN", syscall.SIGTTOU: "TTOU", syscall.SIGWINCH: "WINCH",
	syscall.SIGXCPU: "XCPU", syscall.SIGXFSZ: "XFSZ", syscall.SIGSYS: "SYS",
	syscall.SIGTRAP: "TRAP", syscall.SIGPROF: "PROF", syscall.SIGVTALRM: "VTALRM",
	syscall.SIGURG: "URG", syscall.SIGIO: "IO",
}

func signalName(s syscall.Signal) string {
	if n, ok := signals[s]; ok {
		return n
	}
	return "SIG" + strconv.Itoa(int(s)) + "@porthole.dev"
}

func signalByName(name string) (syscall.Signal, bool) {
	for s, n := range signals {
		if n == name {
			return s, true
		}
	}
	return 0, false
}
