package agentssh

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/internal/testwait"
)

// TestSessionEndKillsEscapees: processes that leave their command's
// session (setsid, with a double fork, with nohup), and so outlive the
// command, are all killed when the Porthole session ends, by its cgroup.
func TestSessionEndKillsEscapees(t *testing.T) {
	needRoot(t)
	if _, _, err := cgroup2Self(); err != nil {
		t.Skipf("no cgroup v2 here: %v", err)
	}
	e := newEnv(t)
	srv := e.server(t, nil)
	if srv.cgroups.base == "" {
		t.Skip("no writable cgroup v2 for sessions here")
	}
	c, served := e.login(t, srv)
	marker := strconv.FormatInt(time.Now().UnixNano()%1000000, 10)
	const quiet = " </dev/null >/dev/null 2>&1"
	// Each leaves the command's session, which is what the command's end
	// kills; the command waits until it has, so the test is not a race
	// between the two.
	const left = ` p=$!; while [ "$(ps -o sid= -p $p)" = "$(ps -o sid= -p $$)" ]; do :; done`
	escapes := []string{
		"setsid sleep 3001." + marker + quiet + " &" + left,
		"setsid sh -c '(sleep 3002." + marker + quiet + " &)'" + quiet, // and a double fork: reparented to init
		"setsid nohup sleep 3003." + marker + quiet + " &" + left,
	}
	for _, cmd := range escapes {
		if _, stderr, err := run(t, c, cmd, nil); err != nil {
			t.Fatalf("%s: %v %s", cmd, err, stderr)
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for len(sleepers(marker)) != 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(sleepers(marker)); n != 3 {
		out, _ := exec.Command("sh", "-c", "ps -eo pid,sid,args | grep 'sleep 300'").CombinedOutput()
		t.Fatalf("%d escapees run; want 3:\n%s", n, out)
	}
	for _, pid := range sleepers(marker) {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
		if !strings.Contains(string(b), "porthole-sessions/s-"+testSession) {
			t.Errorf("process %d is not in the session's cgroup:\n%s", pid, b)
		}
	}
	served.cancel(errors.New("the session ended"))
	_ = served.wait(t)
	testwait.For(t, 10*time.Second, "the escapees to be killed", func() bool { return len(sleepers(marker)) == 0 })
}

// sleepers lists the pids of "sleep 300N.marker" processes.
func sleepers(marker string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, en := range entries {
		pid, err := strconv.Atoi(en.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + en.Name() + "/cmdline")
		if err != nil {
			continue
		}
		s := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.HasPrefix(s, "sleep 300") && strings.Contains(s, "."+marker) {
			// A zombie's cmdline is empty; what matches is alive.
			pids = append(pids, pid)
		}
	}
	return pids
}
