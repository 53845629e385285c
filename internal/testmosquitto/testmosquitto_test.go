package testmosquitto

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func dials(addr string) bool {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// TestStartStopRestart: the default configuration listens on one port,
// which a restart keeps.
func TestStartStopRestart(t *testing.T) {
	t.Parallel()
	b := Start(t, Config{})
	addr := b.Addr(DeviceListener)
	if !strings.HasPrefix(addr, "127.0.0.1:") || addr == "127.0.0.1:"+DeviceListener {
		t.Errorf("Addr = %s; want a free port on 127.0.0.1", addr)
	}
	if !dials(addr) {
		t.Fatalf("%s does not accept connections after Start", addr)
	}
	b.Stop()
	if dials(addr) {
		t.Errorf("%s accepts connections after Stop", addr)
	}
	b.Stop() // stopping twice does nothing
	b.Restart(t)
	if got := b.Addr(DeviceListener); got != addr || !dials(addr) {
		t.Errorf("after Restart Addr = %s (accepting: %v); want %s, accepting", got, dials(got), addr)
	}
}

// TestShipped: the shipped configuration runs with its files in the
// broker's directory, passwords hashed.
func TestShipped(t *testing.T) {
	t.Parallel()
	b := Start(t, Shipped(t, map[string]string{"acme/dev1": "device-secret"}, map[string]string{"portholed": "server-secret"}))
	for _, l := range []string{DeviceListener, ServerListener} {
		if !dials(b.Addr(l)) {
			t.Errorf("listener %s (%s) does not accept connections", l, b.Addr(l))
		}
	}
	for file, secret := range map[string]string{"devices.passwd": "device-secret", "servers.passwd": "server-secret"} {
		data, err := os.ReadFile(filepath.Join(b.Dir, file))
		if err != nil || strings.Contains(string(data), secret) || !strings.Contains(string(data), ":") {
			t.Errorf("%s = %q, %v; want a hashed password file", file, data, err)
		}
	}
	if _, err := os.Stat(filepath.Join(b.Dir, "acl")); err != nil {
		t.Errorf("the ACL is not in the broker's directory: %v", err)
	}
	conf, _ := os.ReadFile(filepath.Join(b.Dir, "mosquitto.conf"))
	for _, line := range strings.Split(string(conf), "\n") {
		if !strings.HasPrefix(line, "#") && (strings.Contains(line, "/etc/") || strings.Contains(line, "{{")) {
			t.Errorf("mosquitto.conf still names /etc/ or a placeholder: %s", line)
		}
	}
}

// TestPlaceholders: {{port:name}} is a free port found by name, {{dir}}
// the broker's directory.
func TestPlaceholders(t *testing.T) {
	t.Parallel()
	b := Start(t, Config{
		Conf:  "listener 1883\nallow_anonymous true\nlistener {{port:extra}} 127.0.0.1\nacl_file {{dir}}/acl\n",
		Files: map[string][]byte{"acl": []byte("topic readwrite #\n")},
	})
	if b.Addr("extra") == b.Addr(DeviceListener) || !dials(b.Addr("extra")) {
		t.Errorf("the extra listener %s does not accept connections, or is the device one", b.Addr("extra"))
	}
	defer func() {
		if recover() == nil {
			t.Error("Addr of a listener the configuration lacks did not panic")
		}
	}()
	b.Addr("1884")
}
