package e2e

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
	"testing"
	"time"
)

// The example Mosquitto configuration that deploy/mosquitto ships: the
// tests run Mosquitto from exactly these files, with only the ports and
// paths rewritten (as brokerclient's tests do).
const (
	shippedMosquittoDir    = "../deploy/mosquitto"
	shippedMosquittoPrefix = "/etc/mosquitto/porthole/"
	shippedDevicePort      = "1883" // the devices' listener in the shipped file
	shippedServerPort      = "1884" // the server nodes' listener
)

// mosquitto is a Mosquitto process of the test's own, run from the shipped
// configuration on free loopback ports, without persistence: a restart
// forgets every retained message, as a crash of a broker without a
// database would.
type mosquitto struct {
	bin     string
	dir     string
	conf    string
	logPath string
	ports   map[string]string // shipped port -> the port it listens on here

	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
}

// startMosquitto runs Mosquitto with the shipped configuration, its
// password files holding devices (user name "<fleet>/<device>") and server
// nodes (user name "portholed") with the given passwords. It skips the test
// if Mosquitto is not installed, unless CI=true, and stops Mosquitto when
// the test ends, printing its log if the test failed.
func startMosquitto(t *testing.T, devices, servers map[string]string) *mosquitto {
	t.Helper()
	m := &mosquitto{bin: mosquittoTool(t, "mosquitto", "/usr/sbin/mosquitto"), dir: t.TempDir()}
	m.logPath = filepath.Join(m.dir, "mosquitto.log")
	passwd := mosquittoTool(t, "mosquitto_passwd", "/usr/bin/mosquitto_passwd")
	writeMosquittoPasswords(t, passwd, filepath.Join(m.dir, "devices.passwd"), devices)
	writeMosquittoPasswords(t, passwd, filepath.Join(m.dir, "servers.passwd"), servers)
	acl, err := os.ReadFile(filepath.Join(shippedMosquittoDir, "acl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(m.dir, "acl"), acl, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.stop()
		if t.Failed() {
			out, _ := os.ReadFile(m.logPath)
			t.Logf("mosquitto log:\n%s", out)
		}
	})
	// A free port can be taken by someone else before Mosquitto binds it:
	// try again with others.
	for try := 0; ; try++ {
		m.writeConf(t)
		err := m.start()
		if err == nil {
			return m
		}
		if try == 2 {
			t.Fatalf("starting mosquitto: %v", err)
		}
	}
}

// mosquittoTool finds a Mosquitto program, skipping the test if it is not
// installed (failing it on CI, where it must be).
func mosquittoTool(t *testing.T, name, fallback string) string {
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

func writeMosquittoPasswords(t *testing.T, bin, path string, users map[string]string) {
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

var mosquittoListener = regexp.MustCompile(`(?m)^listener (\d+)( \S+)?$`)

// writeConf rewrites the shipped configuration: fresh loopback ports, the
// files in the test's directory, logging to a file, and the current user
// (Mosquitto started as root would otherwise switch to the mosquitto user,
// who cannot read the test's files).
func (m *mosquitto) writeConf(t *testing.T) {
	t.Helper()
	shipped, err := os.ReadFile(filepath.Join(shippedMosquittoDir, "mosquitto.conf"))
	if err != nil {
		t.Fatal(err)
	}
	m.ports = map[string]string{}
	conf := mosquittoListener.ReplaceAllStringFunc(string(shipped), func(line string) string {
		port := mosquittoListener.FindStringSubmatch(line)[1]
		m.ports[port] = fmt.Sprint(FreePort(t))
		return "listener " + m.ports[port] + " 127.0.0.1"
	})
	if m.ports[shippedDevicePort] == "" || m.ports[shippedServerPort] == "" {
		t.Fatalf("the shipped mosquitto.conf should have listeners on %s and %s; has %v", shippedDevicePort, shippedServerPort, m.ports)
	}
	conf = strings.ReplaceAll(conf, shippedMosquittoPrefix, m.dir+"/")
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	head := fmt.Sprintf("user %s\nlog_dest file %s\nlog_type all\n", me.Username, m.logPath)
	m.conf = filepath.Join(m.dir, "mosquitto.conf")
	if err := os.WriteFile(m.conf, []byte(head+conf), 0o600); err != nil {
		t.Fatal(err)
	}
}

// start runs Mosquitto and waits until every listener accepts.
func (m *mosquitto) start() error {
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
	deadline := time.Now().Add(10 * time.Second)
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
				m.stop()
				return errors.New("mosquitto does not accept connections")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return nil
}

// stop kills Mosquitto at once (no goodbye to its clients, like a crash)
// and waits for it.
func (m *mosquitto) stop() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	<-m.exited
	m.cmd = nil
}

// restart kills Mosquitto and starts it again on the same ports.
func (m *mosquitto) restart(t *testing.T) {
	t.Helper()
	m.stop()
	if err := m.start(); err != nil {
		t.Fatalf("restarting mosquitto: %v", err)
	}
}

// deviceURL is where devices connect; serverURL where server nodes do.
func (m *mosquitto) deviceURL() string { return "mqtt://127.0.0.1:" + m.ports[shippedDevicePort] }
func (m *mosquitto) serverURL() string { return "mqtt://127.0.0.1:" + m.ports[shippedServerPort] }
