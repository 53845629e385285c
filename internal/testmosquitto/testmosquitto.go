// Package testmosquitto runs a Mosquitto broker of a test's own on free
// loopback ports, from a configuration the test writes or from the example
// that deploy/mosquitto ships.
//
// A test that starts one is skipped where Mosquitto is not installed,
// except on CI (CI=true), where it fails. Only tests may import this
// package (a test in the module root checks).
package testmosquitto

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

	"github.com/porthole/porthole/internal/freeport"
)

// The listeners of the shipped configuration, as Broker.Addr names them.
const (
	DeviceListener = "1883" // where devices connect
	ServerListener = "1884" // where server nodes connect
)

// shippedPrefix is where the shipped configuration expects its files.
const shippedPrefix = "/etc/mosquitto/porthole/"

// startTimeout bounds the wait for a started Mosquitto to accept
// connections on every listener.
const startTimeout = 10 * time.Second

// Config is what a Broker runs.
type Config struct {
	// Conf is the text of mosquitto.conf. Each "listener <port> [address]"
	// line is given a free port on 127.0.0.1 instead, which Addr("<port>")
	// tells; "{{port:<name>}}" stands for another free port, Addr("<name>"),
	// and "{{dir}}" for the directory that holds the broker's files. Lines
	// that make Mosquitto log everything to a file (shown when the test
	// fails) and run as the current user are put in front. Empty: one
	// listener, 1883, open to anonymous clients.
	Conf string

	// Passwords are password files to write in the broker's directory:
	// file name, then user name, then password. mosquitto_passwd hashes
	// them. Empty: none.
	Passwords map[string]map[string]string

	// Files are other files to write in the broker's directory (an ACL,
	// say): file name, then content. Empty: none.
	Files map[string][]byte
}

// Shipped is the example configuration deploy/mosquitto ships, its ACL,
// and its password files devices.passwd and servers.passwd holding devices
// (user name "<fleet>/<device>") and servers (user name "portholed"), user
// names to passwords. The files it names under /etc/mosquitto/porthole/ are
// the broker's own; it listens on DeviceListener and ServerListener.
func Shipped(t testing.TB, devices, servers map[string]string) Config {
	t.Helper()
	dir := shippedDir(t)
	conf, err := os.ReadFile(filepath.Join(dir, "mosquitto.conf"))
	if err != nil {
		t.Fatal(err)
	}
	acl, err := os.ReadFile(filepath.Join(dir, "acl"))
	if err != nil {
		t.Fatal(err)
	}
	listeners := map[string]bool{}
	for _, m := range listenerLine.FindAllStringSubmatch(string(conf), -1) {
		listeners[m[1]] = true
	}
	if !listeners[DeviceListener] || !listeners[ServerListener] {
		t.Fatalf("the shipped mosquitto.conf should have listeners on %s and %s; has %v", DeviceListener, ServerListener, listeners)
	}
	c := strings.ReplaceAll(string(conf), shippedPrefix, "{{dir}}/")
	for _, line := range strings.Split(c, "\n") {
		if !strings.HasPrefix(line, "#") && strings.Contains(line, "/etc/") {
			t.Fatalf("the shipped mosquitto.conf uses a file outside %s, which the test cannot replace: %s", shippedPrefix, line)
		}
	}
	return Config{
		Conf:      c,
		Passwords: map[string]map[string]string{"devices.passwd": devices, "servers.passwd": servers},
		Files:     map[string][]byte{"acl": acl},
	}
}

// shippedDir finds deploy/mosquitto in the module the test runs in.
func shippedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "deploy", "mosquitto")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory, so no deploy/mosquitto")
		}
		dir = parent
	}
}

// Broker is a Mosquitto process of the test's own.
type Broker struct {
	// Dir holds the broker's configuration, files and log.
	Dir string

	bin     string
	conf    string            // path of mosquitto.conf
	logPath string            // path of the log
	ports   map[string]string // listener or {{port:}} name -> the port it listens on

	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
}

// Start runs Mosquitto with c, and returns once every listener accepts
// connections. It stops Mosquitto when the test ends, and shows its log if
// the test failed.
func Start(t testing.TB, c Config) *Broker {
	t.Helper()
	if c.Conf == "" {
		c.Conf = "listener " + DeviceListener + "\nallow_anonymous true\n"
	}
	b := &Broker{bin: tool(t, "mosquitto", "/usr/sbin/mosquitto"), Dir: t.TempDir()}
	b.logPath = filepath.Join(b.Dir, "mosquitto.log")
	b.conf = filepath.Join(b.Dir, "mosquitto.conf")
	if len(c.Passwords) > 0 {
		passwd := tool(t, "mosquitto_passwd", "/usr/bin/mosquitto_passwd")
		for name, users := range c.Passwords {
			writePasswords(t, passwd, filepath.Join(b.Dir, name), users)
		}
	}
	for name, data := range c.Files {
		if err := os.WriteFile(filepath.Join(b.Dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		b.Stop()
		if t.Failed() {
			out, _ := os.ReadFile(b.logPath)
			t.Logf("mosquitto log:\n%s", out)
		}
	})
	// A free port can be taken by someone else before Mosquitto binds it:
	// try again with others.
	for try := 0; ; try++ {
		b.writeConf(t, c.Conf)
		err := b.start()
		if err == nil {
			return b
		}
		if try == 2 {
			t.Fatalf("starting mosquitto: %v", err)
		}
	}
}

// tool finds a Mosquitto program, skipping the test if it is not installed
// (failing it on CI, where it must be).
func tool(t testing.TB, name, fallback string) string {
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

func writePasswords(t testing.TB, bin, path string, users map[string]string) {
	t.Helper()
	var plain bytes.Buffer
	for u, pw := range users {
		fmt.Fprintf(&plain, "%s:%s\n", u, pw)
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

// writeConf writes conf with fresh free ports, the broker's directory, a
// log file and the current user (Mosquitto started as root would otherwise
// switch to the mosquitto user, who cannot read the test's files).
func (b *Broker) writeConf(t testing.TB, conf string) {
	t.Helper()
	b.ports = map[string]string{}
	conf = listenerLine.ReplaceAllStringFunc(conf, func(line string) string {
		port := listenerLine.FindStringSubmatch(line)[1]
		b.ports[port] = freePort(t)
		return "listener " + b.ports[port] + " 127.0.0.1"
	})
	conf = portPlaceholder.ReplaceAllStringFunc(conf, func(p string) string {
		name := portPlaceholder.FindStringSubmatch(p)[1]
		if b.ports[name] == "" {
			b.ports[name] = freePort(t)
		}
		return b.ports[name]
	})
	conf = strings.ReplaceAll(conf, "{{dir}}", b.Dir)
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	head := fmt.Sprintf("user %s\nlog_dest file %s\nlog_type all\n", me.Username, b.logPath)
	if err := os.WriteFile(b.conf, []byte(head+conf+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// freePort is a port for a listener that a restart must get again
// (package freeport).
func freePort(t testing.TB) string {
	t.Helper()
	p, err := freeport.Pick()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(p)
}

// start runs Mosquitto and waits until every listener accepts.
func (b *Broker) start() error {
	b.cmd = exec.Command(b.bin, "-c", b.conf)
	var out bytes.Buffer
	b.cmd.Stdout, b.cmd.Stderr = &out, &out
	if err := b.cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	b.exited = exited
	go func() {
		_ = b.cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(startTimeout)
	for _, port := range b.ports {
		for {
			c, err := net.Dial("tcp", "127.0.0.1:"+port)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-exited:
				log, _ := os.ReadFile(b.logPath)
				return fmt.Errorf("mosquitto exited: %s%s", out.String(), log)
			default:
			}
			if time.Now().After(deadline) {
				b.Stop()
				return errors.New("mosquitto does not accept connections")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return nil
}

// Stop kills Mosquitto at once (no goodbye to its clients, like a crash)
// and waits for it. Stopping a stopped broker does nothing.
func (b *Broker) Stop() {
	if b.cmd == nil || b.cmd.Process == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGKILL)
	<-b.exited
	b.cmd = nil
}

// Restart kills Mosquitto and starts it again on the same ports. Unless
// the configuration turns on Mosquitto's persistence, the restarted broker
// has forgotten every retained message and session, as a broker without a
// database does after a crash.
func (b *Broker) Restart(t testing.TB) {
	t.Helper()
	b.Stop()
	if err := b.start(); err != nil {
		t.Fatalf("restarting mosquitto: %v", err)
	}
}

// Addr is the address, 127.0.0.1:port, of a listener: the port of a
// "listener" line in Config.Conf, or the name in a "{{port:name}}". It
// panics on one the configuration does not have.
func (b *Broker) Addr(listener string) string {
	port, ok := b.ports[listener]
	if !ok {
		panic("testmosquitto: the configuration has no listener " + listener)
	}
	return "127.0.0.1:" + port
}

// URL is mqtt:// and the address of a listener (see Addr).
func (b *Broker) URL(listener string) string { return "mqtt://" + b.Addr(listener) }
