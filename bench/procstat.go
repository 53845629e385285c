package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of the CPU times in /proc/PID/stat (USER_HZ). It is
// 100 on every Linux architecture Go supports; reading sysconf would need
// cgo.
const clockTick = 10 * time.Millisecond

// cpuTime is the CPU (user + system) a process has used, itself and the
// children it has reaped: sshd's per-connection processes and the shells an
// agent starts are counted in their parent once they exit.
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading the CPU time of process %d: %w", pid, err)
	}
	// The command name (field 2) may hold spaces and parentheses: the
	// fields that follow start after its last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 15 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var ticks int64
	for _, s := range f[11:15] { // utime, stime, cutime, cstime
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}

// parentOf is the parent process id of pid, or 0.
func parentOf(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// descendants are the live processes below pid.
func descendants(pid int) []int {
	children := processChildren()
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		out = append(out, children[p]...)
		queue = append(queue, children[p]...)
	}
	return out
}

// waitNoChildren waits until pid has no child left (sshd has reaped the
// process of a finished connection, and so counted its CPU time), for at
// most timeout.
func waitNoChildren(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for len(descendants(pid)) > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// memField reads one "Name: N kB" line of a /proc file, in bytes.
func memField(path, name string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), name+":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %s: %w", path, name, err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s has no %s line", path, name)
}

// rss is a process's resident memory in bytes.
func rss(pid int) (int64, error) {
	return memField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS")
}

// pssTree is the proportional set size of pid and all its descendants: the
// memory they use, shared pages divided among the processes sharing them,
// so that sshd's forks are not counted once per process for the same
// library pages.
func pssTree(pid int) (int64, error) {
	var total int64
	for _, p := range append([]int{pid}, descendants(pid)...) {
		n, err := memField(fmt.Sprintf("/proc/%d/smaps_rollup", p), "Pss")
		if err != nil {
			if p == pid {
				return 0, err
			}
			continue // a child that just exited
		}
		total += n
	}
	return total, nil
}

// established counts the TCP connections in state ESTABLISHED with port as
// their local or remote port, from the kernel's tables.
func established(port int) int {
	n := 0
	for _, path := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		lines := strings.Split(string(data), "\n")
		for _, line := range lines[1:] {
			f := strings.Fields(line)
			if len(f) < 4 || f[3] != "01" { // 01 is TCP_ESTABLISHED
				continue
			}
			if hexPort(f[1]) == port || hexPort(f[2]) == port {
				n++
			}
		}
	}
	return n
}

// listening reports whether a TCP socket listens on local port, from the
// kernel's tables: unlike a connection, it does not queue behind a storm
// of others in the listener's accept queue.
func listening(port int) bool {
	for _, path := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) >= 4 && f[3] == "0A" && hexPort(f[1]) == port { // 0A is TCP_LISTEN
				return true
			}
		}
	}
	return false
}

// hexPort is the port of an "ADDR:PORT" entry of /proc/net/tcp.
func hexPort(addr string) int {
	_, p, ok := strings.Cut(addr, ":")
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(p, 16, 32)
	if err != nil {
		return -1
	}
	return int(n)
}

// waitIdlePort waits until no connection to or from port is left, for at
// most timeout, and reports whether that happened.
func waitIdlePort(port int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for established(port) > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// processChildren maps each live process to its children, from /proc.
func processChildren() map[int][]int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	children := map[int][]int{}
	for _, d := range dirs {
		p, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if pp := parentOf(p); pp != 0 {
			children[pp] = append(children[pp], p)
		}
	}
	return children
}
