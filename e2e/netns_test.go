package e2e

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// netns is a set of network namespaces a test makes, under a prefix no
// other test (or run) holds, and removes at its end with what runs in
// them; veth pairs with an end in one go with it.
type netns struct {
	pre    string   // prefix of every namespace, and of host links
	spaces []string // the namespaces, in the order made
}

// newNetns makes a namespace pre-name for each of names. It skips the test
// where namespaces cannot be made (not root, no ip(8)).
func newNetns(t *testing.T, names ...string) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root, for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8), for network namespaces")
	}
	n := &netns{}
	for try := 0; ; try++ {
		// A name another test (or run) holds is tried again; a refusal
		// to make namespaces at all skips.
		n.pre = fmt.Sprintf("phx%05d", rand.IntN(100000))
		out, err := exec.Command("ip", "netns", "add", n.ns(names[0])).CombinedOutput()
		if err == nil {
			break
		}
		if !strings.Contains(string(out), "exists") || try == 10 {
			t.Skipf("cannot make a network namespace (%v: %s)", err, strings.TrimSpace(string(out)))
		}
	}
	n.spaces = []string{n.ns(names[0])}
	t.Cleanup(func() { n.remove(t) })
	for _, name := range names[1:] {
		n.ip(t, []string{"netns", "add", n.ns(name)})
		n.spaces = append(n.spaces, n.ns(name))
	}
	return n
}

// ns is the full name of the namespace called name.
func (n *netns) ns(name string) string { return n.pre + "-" + name }

// ip runs ip(8) with each of cmds in turn, failing the test at the first
// that fails.
func (n *netns) ip(t *testing.T, cmds ...[]string) {
	t.Helper()
	for _, args := range cmds {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// remove ends what runs in the namespaces and deletes them, the last made
// first.
func (n *netns) remove(t *testing.T) {
	for _, ns := range slices.Backward(n.spaces) {
		out, _ := exec.Command("ip", "netns", "pids", ns).Output()
		for _, pid := range strings.Fields(string(out)) {
			_ = exec.Command("kill", "-9", pid).Run()
		}
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil && !strings.Contains(string(out), "No such file") {
			t.Errorf("ip netns del %s: %v\n%s", ns, err, out)
		}
	}
}

// freeNet is "10.A.B" for a /28 no interface of this host is on: A in
// 220-254, above the demo's 20-219.
func freeNet(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		prefix := fmt.Sprintf("10.%d.%d.", 220+rand.IntN(35), rand.IntN(256))
		used := false
		for _, a := range addrs {
			used = used || strings.HasPrefix(a.String(), prefix)
		}
		if !used {
			return strings.TrimSuffix(prefix, ".")
		}
	}
	t.Fatal("no free 10.x.y.0 network for the test")
	return ""
}

// in is the command line that runs name with args in the namespace ns.
func in(ns, name string, args ...string) (string, []string) {
	return "ip", append([]string{"netns", "exec", ns, name}, args...)
}
