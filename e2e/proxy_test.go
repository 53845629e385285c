package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// proxyNet is a network whose only way out is an HTTP CONNECT proxy, in
// network namespaces: px runs tinyproxy and forwards nothing; eng (the
// engineer) and dev (a device) each have px as their only neighbour, and
// no default route. The server listens on the host's side of px's wan.
//
//	host 10.A.B.1 ── 10.A.B.2 wan ┬ px (tinyproxy :3128, ip_forward 0)
//	                 10.A.B.5 lane┴── 10.A.B.6 eng
//	                 10.A.B.9 land ── 10.A.B.10 dev
type proxyNet struct {
	pre                string // prefix of every namespace and link
	hostIP             string // the server's address
	px, eng, dev       string // namespaces
	engProxy, devProxy string // the proxy's URL from eng and from dev
	engIP, devIP       string
	tinyproxy          *Proc
}

const tinyproxyPort = "3128"

// newProxyNet makes the namespaces and starts tinyproxy in px; the test's
// end removes them. It skips the test where namespaces cannot be made
// (not root) or tinyproxy is not installed.
func newProxyNet(t *testing.T) *proxyNet {
	t.Helper()
	tinyproxy, err := exec.LookPath("tinyproxy")
	if err != nil {
		t.Skip("needs tinyproxy (scripts/setup.sh installs it)")
	}
	ns := newNetns(t, "px", "eng", "dev")
	n := &proxyNet{pre: ns.pre, px: ns.ns("px"), eng: ns.ns("eng"), dev: ns.ns("dev")}
	sub := freeNet(t)
	addr := func(i int) string { return fmt.Sprintf("%s.%d", sub, i) }
	n.hostIP, n.engIP, n.devIP = addr(1), addr(6), addr(10)
	n.engProxy, n.devProxy = "http://"+addr(5)+":"+tinyproxyPort, "http://"+addr(9)+":"+tinyproxyPort

	hostLink := n.pre + "h"
	ns.ip(t, [][]string{
		{"link", "add", hostLink, "type", "veth", "peer", "name", "wan", "netns", n.px},
		{"addr", "add", addr(1) + "/30", "dev", hostLink},
		{"link", "set", hostLink, "up"},
		{"-n", n.px, "addr", "add", addr(2) + "/30", "dev", "wan"},
		{"-n", n.px, "link", "set", "wan", "up"},
		{"-n", n.px, "link", "set", "lo", "up"},
		{"link", "add", "lane", "netns", n.px, "type", "veth", "peer", "name", "eth0", "netns", n.eng},
		{"-n", n.px, "addr", "add", addr(5) + "/30", "dev", "lane"},
		{"-n", n.px, "link", "set", "lane", "up"},
		{"-n", n.eng, "addr", "add", addr(6) + "/30", "dev", "eth0"},
		{"-n", n.eng, "link", "set", "eth0", "up"},
		{"-n", n.eng, "link", "set", "lo", "up"},
		{"link", "add", "land", "netns", n.px, "type", "veth", "peer", "name", "eth0", "netns", n.dev},
		{"-n", n.px, "addr", "add", addr(9) + "/30", "dev", "land"},
		{"-n", n.px, "link", "set", "land", "up"},
		{"-n", n.dev, "addr", "add", addr(10) + "/30", "dev", "eth0"},
		{"-n", n.dev, "link", "set", "eth0", "up"},
		{"-n", n.dev, "link", "set", "lo", "up"},
		// A new namespace forwards nothing already; say it, since it is
		// the point.
		{"netns", "exec", n.px, "sysctl", "-qw", "net.ipv4.ip_forward=0"},
	}...)

	conf := filepath.Join(t.TempDir(), "tinyproxy.conf")
	// No Allow and no ConnectPort lines: anyone on px's links may CONNECT
	// to any port. LogLevel Connect logs each CONNECT and who asked.
	if err := os.WriteFile(conf, []byte("Port "+tinyproxyPort+"\nTimeout 60\nLogLevel Connect\nMaxClients 64\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n.tinyproxy = Start(t, Env{}, "ip", "netns", "exec", n.px, tinyproxy, "-d", "-c", conf)
	WaitFor(t, 10*time.Second, "tinyproxy to listen", func() bool {
		if n.tinyproxy.Exited() {
			t.Fatalf("tinyproxy exited:\n%s%s", n.tinyproxy.Stdout(), n.tinyproxy.Stderr())
		}
		c, err := net.DialTimeout("tcp", net.JoinHostPort(addr(2), tinyproxyPort), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return n
}

// with is env and more variables.
func with(env Env, kv ...string) Env {
	out := Env{}
	for k, v := range env {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// TestThroughProxy: issue 10's "the engineer behind a real HTTP CONNECT
// proxy that is the only way out", for a device too. The engineer's
// porthole (HTTPS_PROXY) and a device's agent (enrolled with HTTPS_PROXY,
// run with agent.yaml's proxy key and no environment) sit in namespaces
// whose only way out is tinyproxy: the device comes online (MQTT through
// the proxy), `porthole devices` lists it and `porthole ssh dev1 -- echo
// ok` runs (API and relay through the proxy, on the server's one port),
// and tinyproxy's log shows the CONNECTs from both. Without the proxy the
// engineer reaches nothing.
func TestThroughProxy(t *testing.T) {
	t.Parallel()
	n := newProxyNet(t)
	s := startDevOn(t, n.hostIP)
	server := s.env["PORTHOLE_SERVER"]
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(server, "https://"))
	target := net.JoinHostPort(n.hostIP, port)

	// The engineer, without the proxy: no way out.
	name, args := in(n.eng, bins.CLI, "devices")
	if r := Run(t, s.env, "", name, args...); r.Err == nil || !strings.Contains(r.Stderr, "unreachable") {
		t.Fatalf("porthole devices without the proxy: %v\n%s%s; want the network unreachable", r.Err, r.Stdout, r.Stderr)
	}

	// The device: enrolled through HTTPS_PROXY, run through agent.yaml's
	// proxy key alone.
	state := filepath.Join(s.tmp, "dev1")
	name, args = in(n.dev, bins.Agent, "enroll", "--server", server, "--token", s.enrollToken,
		"--fingerprint", s.env["PORTHOLE_FINGERPRINT"], "--name", "dev1", "--state", state)
	MustRun(t, Env{"HOME": s.tmp, "HTTPS_PROXY": n.devProxy}, "", name, args...)
	cfg := filepath.Join(s.tmp, "dev1.yaml")
	if err := os.WriteFile(cfg, []byte("consent: auto\nproxy: "+n.devProxy+"\nsocket: "+filepath.Join(s.tmp, "dev1.sock")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env, argv := HideHome(Env{"HOME": s.tmp}, state+"-home", bins.Agent, "run", "--state", state, "--config", cfg)
	name, args = in(n.dev, argv[0], argv[1:]...)
	agent := Start(t, env, name, args...)
	online := regexp.MustCompile(`"name":\s*"dev1"[^}]*"online":\s*true`)
	WaitFor(t, 15*time.Second, "dev1 to be online through the proxy", func() bool {
		if agent.Exited() {
			t.Fatalf("the agent exited:\n%s", agent.Stderr())
		}
		// From the host, which reaches the server directly.
		return online.MatchString(Run(t, s.env, "", bins.CLI, "devices", "--json").Stdout)
	})
	if want := "through the proxy " + n.devProxy; !strings.Contains(agent.Stderr(), want) {
		t.Errorf("the agent does not say it goes %s:\n%s", want, agent.Stderr())
	}

	// The engineer, through the proxy.
	eng := with(s.env, "HTTPS_PROXY", n.engProxy)
	name, args = in(n.eng, bins.CLI, "devices", "--json")
	if r := MustRun(t, eng, "", name, args...); !online.MatchString(r.Stdout) {
		t.Errorf("porthole devices through the proxy:\n%s\nwant dev1 online", r.Stdout)
	}
	name, args = in(n.eng, bins.CLI, "ssh", "dev1", "--", "echo", "ok")
	if r := MustRun(t, eng, "", name, args...); r.Stdout != "ok\n" {
		t.Errorf("porthole ssh dev1 -- echo ok printed %q; want \"ok\\n\"\nstderr:\n%s\nagent:\n%s", r.Stdout, r.Stderr, agent.Stderr())
	}

	// tinyproxy saw them: a CONNECT to the server's one port from each.
	log := n.tinyproxy.Stdout() + n.tinyproxy.Stderr()
	for who, ip := range map[string]string{"the engineer": n.engIP, "the device": n.devIP} {
		if !connected(log, ip, target) {
			t.Errorf("tinyproxy's log shows no CONNECT to %s from %s (%s):\n%s", target, who, ip, log)
		}
	}
}

// connected reports whether tinyproxy's log shows a connection from ip
// asking CONNECT target. tinyproxy logs, per connection on its file
// descriptor N, "Connect (file descriptor N): IP" and then "Request (file
// descriptor N): CONNECT TARGET HTTP/1.1".
func connected(log, ip, target string) bool {
	from := map[string]string{} // descriptor -> client address, as last seen
	for _, line := range strings.Split(log, "\n") {
		if m := regexp.MustCompile(`Connect \(file descriptor (\d+)\): (\S+)`).FindStringSubmatch(line); m != nil {
			from[m[1]] = m[2]
		}
		if m := regexp.MustCompile(`Request \(file descriptor (\d+)\): CONNECT (\S+) `).FindStringSubmatch(line); m != nil && m[2] == target && from[m[1]] == ip {
			return true
		}
	}
	return false
}
