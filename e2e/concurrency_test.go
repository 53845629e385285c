package e2e

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole/store/storetest"
)

// Fifty sessions at once, as issue 11 found them failing: `porthole ssh DEV
// -- echo ok` fifty times at once, on one device and then over ten (five
// each), every one of which must print ok and exit 0. What used to break:
// the device's open commands past its MQTT Receive Maximum were held back
// by the broker (mochi) and then lost, their quota never given back or
// erased by a state the device published under the same packet id ("did
// not answer within 33 s"), or dropped by the agent's full inbox; the
// store recorded a session as
// connecting only after its command went out, so a quick device found it
// not yet open at the relay ("the Porthole relay refused DEV (was it
// deleted and enrolled again?)"); and the server's port reset handshakes
// past 32 at once from one address. The engineers, the devices and the
// server share 127.0.0.1 here, which is also what a per-source limit sees
// of fifty engineers behind one NAT.

func TestConcurrentSessionsSQLite(t *testing.T) {
	testConcurrentSessions(t, "sqlite")
}

func TestConcurrentSessionsPostgres(t *testing.T) {
	testConcurrentSessions(t, storetest.PostgresDSN(t))
}

// concurrentSessions is how many sessions are opened at once.
const concurrentSessions = 50

func testConcurrentSessions(t *testing.T, database string) {
	srv := newPresenceServerOn(t, database, nil)
	r := MustRun(t, srv.env, "", bins.CLI, "enroll-token", "create", "--fleet", "acme", "--uses", "10", "--ttl", "1h")
	token := regexp.MustCompile(`--token (\S+)`).FindStringSubmatch(r.Stdout + r.Stderr)
	if token == nil {
		t.Fatalf("enroll-token create printed no token:\n%s%s", r.Stdout, r.Stderr)
	}
	srv.token = token[1]
	var devices []string
	var agents []*Proc
	for i := 1; i <= 10; i++ {
		name := fmt.Sprintf("m%d", i)
		agents = append(agents, srv.runAgent(t, srv.enroll(t, name), ""))
		devices = append(devices, name)
	}
	for _, name := range devices {
		srv.waitPresence(t, name, true, "after its agent started")
	}

	t.Run("one device", func(t *testing.T) { fireSessions(t, srv, devices[:1]) })
	t.Run("ten devices", func(t *testing.T) { fireSessions(t, srv, devices) })
	if t.Failed() {
		t.Logf("server log:\n%s", tail(srv.proc.Stderr(), 100))
		t.Logf("m1's agent log:\n%s", tail(agents[0].Stderr(), 100))
	}
}

// fireSessions starts concurrentSessions `porthole ssh DEV -- echo ok` at
// once, spread over devices, and checks that every one printed ok and
// exited 0.
func fireSessions(t *testing.T, srv *presenceServer, devices []string) {
	type result struct {
		device string
		took   time.Duration
		r      Result
	}
	results := make([]result, concurrentSessions)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range results {
		wg.Go(func() {
			dev := devices[i%len(devices)]
			t0 := time.Now()
			r := Run(t, srv.env, "", bins.CLI, "ssh", dev, "--", "echo", "ok")
			results[i] = result{dev, time.Since(t0), r}
		})
	}
	wg.Wait()
	total := time.Since(start)

	failures := map[string]int{}
	var took []time.Duration
	for _, res := range results {
		took = append(took, res.took)
		if res.r.Err != nil || res.r.Stdout != "ok\n" {
			// The last line: the words, not the progress line.
			words := strings.TrimSpace(res.r.Stderr)
			if i := strings.LastIndexAny(words, "\r\n"); i >= 0 {
				words = words[i+1:]
			}
			failures[fmt.Sprintf("%s: %v: %s", res.device, res.r.Err, words)]++
		}
	}
	slices.Sort(took)
	t.Logf("%d sessions on %d device(s) at once: all done in %v; each took %v (median), %v (slowest)",
		concurrentSessions, len(devices), total.Round(time.Millisecond), took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))
	if len(failures) > 0 {
		var lines []string
		for f, n := range failures {
			lines = append(lines, fmt.Sprintf("%d× %s", n, f))
		}
		sort.Strings(lines)
		t.Errorf("%d of %d sessions at once failed:\n%s", concurrentSessions-countOK(results, func(r result) bool { return r.r.Err == nil && r.r.Stdout == "ok\n" }),
			concurrentSessions, strings.Join(lines, "\n"))
	}
}

func countOK[T any](xs []T, ok func(T) bool) int {
	n := 0
	for _, x := range xs {
		if ok(x) {
			n++
		}
	}
	return n
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
