package brokerclient

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The shipped example configuration: the tests run Mosquitto from exactly
// these files, with only ports and paths rewritten.
const (
	shippedDir    = "../deploy/mosquitto"
	shippedPrefix = "/etc/mosquitto/porthole/"
	devicePort    = "1883" // the devices' listener in the shipped file
	serverPort    = "1884" // the server nodes' listener
)

// Users in the password files the tests make. Each one's password is
// password(user).
var (
	deviceUsers = []string{"acme/dev1", "acme/dev2", "acme/dev3", "acme/+", "other/dev1"}
	serverUsers = []string{"portholed"}
)

func password(user string) string {
	return "pw-" + strings.NewReplacer("/", "-", "+", "plus").Replace(user)
}

// mosquitto is a Mosquitto process of the test's own, run from the shipped
// configuration on free loopback ports.
type mosquitto struct {
	bin     string
	dir     string
	conf    string
	ports   map[string]string // shipped port -> the port it listens on here
	logPath string

	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
}

// findTool finds a Mosquitto program, skipping the test if it is not
// installed (failing it on CI, where it must be).
func findTool(t testing.TB, name, fallback string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if _, err := os.Stat(fallback); err == nil {
		return fallback
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed; CI must have it (apt-get install mosquitto)", name)
	}
	t.Skipf("%s is not installed (apt-get install mosquitto)", name)
	return ""
}

// startMosquitto runs Mosquitto with the shipped configuration plus extra
// lines, stopping it when the test ends and printing its log if the test
// failed. In extra, {{dir}} stands for the directory holding the password
// and ACL files, and {{port:name}} for a free port, found in m.ports[name].
func startMosquitto(t testing.TB, extra string) *mosquitto {
	t.Helper()
	m := &mosquitto{bin: findTool(t, "mosquitto", "/usr/sbin/mosquitto"), dir: t.TempDir()}
	m.logPath = filepath.Join(m.dir, "mosquitto.log")
	passwd := findTool(t, "mosquitto_passwd", "/usr/bin/mosquitto_passwd")
	writePasswords(t, passwd, filepath.Join(m.dir, "devices.passwd"), deviceUsers)
	writePasswords(t, passwd, filepath.Join(m.dir, "servers.passwd"), serverUsers)
	acl, err := os.ReadFile(filepath.Join(shippedDir, "acl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(m.dir, "acl"), acl, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.stop(t)
		if t.Failed() {
			out, _ := os.ReadFile(m.logPath)
			t.Logf("mosquitto log:\n%s", out)
		}
	})
	// A free port can be taken by someone else before Mosquitto binds it:
	// try again with others.
	for try := 0; ; try++ {
		m.writeConf(t, extra)
		err := m.start(t)
		if err == nil {
			return m
		}
		if try == 2 {
			t.Fatalf("starting mosquitto: %v", err)
		}
	}
}

func writePasswords(t testing.TB, bin, path string, users []string) {
	t.Helper()
	var plain bytes.Buffer
	for _, u := range users {
		fmt.Fprintf(&plain, "%s:%s\n", u, password(u))
	}
	if err := os.WriteFile(path, plain.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-U", path).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd -U: %v\n%s", err, out)
	}
}

var (
	listenerLine    = regexp.MustCompile(`(?m)^listener (\d+)( \S+)?$`)
	portPlaceholder = regexp.MustCompile(`\{\{port:(\w+)\}\}`)
)

// writeConf rewrites the shipped configuration for this test: fresh
// loopback ports, files in the test's directory, logging to a file, and the
// current user (Mosquitto started as root would otherwise switch to the
// mosquitto user, who cannot read the test's files).
func (m *mosquitto) writeConf(t testing.TB, extra string) {
	t.Helper()
	shipped, err := os.ReadFile(filepath.Join(shippedDir, "mosquitto.conf"))
	if err != nil {
		t.Fatal(err)
	}
	m.ports = map[string]string{}
	conf := listenerLine.ReplaceAllStringFunc(string(shipped), func(line string) string {
		port := listenerLine.FindStringSubmatch(line)[1]
		m.ports[port] = freePort(t)
		return "listener " + m.ports[port] + " 127.0.0.1"
	})
	if m.ports[devicePort] == "" || m.ports[serverPort] == "" {
		t.Fatalf("the shipped mosquitto.conf should have listeners on %s and %s; has %v", devicePort, serverPort, m.ports)
	}
	conf = strings.ReplaceAll(conf, shippedPrefix, m.dir+"/")
	for _, line := range strings.Split(conf, "\n") {
		if !strings.HasPrefix(line, "#") && strings.Contains(line, "/etc/") {
			t.Fatalf("the shipped mosquitto.conf uses a file outside %s, which the test cannot replace: %s", shippedPrefix, line)
		}
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	head := fmt.Sprintf("user %s\nlog_dest file %s\nlog_type all\n", me.Username, m.logPath)
	extra = strings.ReplaceAll(extra, "{{dir}}", m.dir)
	extra = portPlaceholder.ReplaceAllStringFunc(extra, func(p string) string {
		name := portPlaceholder.FindStringSubmatch(p)[1]
		if m.ports[name] == "" {
			m.ports[name] = freePort(t)
		}
		return m.ports[name]
	})
	m.conf = filepath.Join(m.dir, "mosquitto.conf")
	if err := os.WriteFile(m.conf, []byte(head+conf+"\n"+extra), 0o600); err != nil {
		t.Fatal(err)
	}
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

// start runs Mosquitto and waits until every listener accepts.
func (m *mosquitto) start(t testing.TB) error {
	t.Helper()
	m.cmd = exec.Command(m.bin, "-c", m.conf)
	var out bytes.Buffer
	m.cmd.Stdout, m.cmd.Stderr = &out, &out
	if err := m.cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	m.exited = exited
	go func() {
		_ = m.cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(waitTimeout)
	for _, port := range m.ports {
		for {
			c, err := net.Dial("tcp", "127.0.0.1:"+port)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-exited:
				log, _ := os.ReadFile(m.logPath)
				return fmt.Errorf("mosquitto exited: %s%s", out.String(), log)
			default:
			}
			if time.Now().After(deadline) {
				m.stop(t)
				return errors.New("mosquitto does not accept connections")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return nil
}

// stop kills Mosquitto at once (no goodbye to its clients, like a crash)
// and waits for it.
func (m *mosquitto) stop(t testing.TB) {
	t.Helper()
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.exited
	m.cmd = nil
}

// restart kills Mosquitto and starts it again on the same ports.
func (m *mosquitto) restart(t testing.TB) {
	t.Helper()
	m.stop(t)
	if err := m.start(t); err != nil {
		t.Fatalf("restarting mosquitto: %v", err)
	}
}

func (m *mosquitto) deviceAddr() string { return "127.0.0.1:" + m.ports[devicePort] }
func (m *mosquitto) serverAddr() string { return "127.0.0.1:" + m.ports[serverPort] }
func (m *mosquitto) serverURL() string  { return "mqtt://" + m.serverAddr() }
