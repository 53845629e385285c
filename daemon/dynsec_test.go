package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/porthole/porthole/internal/testmosquitto"
)

// lockedBuffer is a log the server writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startDynsecMosquitto runs Mosquitto with its dynamic security plugin on
// one listener, its configuration made by mosquitto_ctrl with the client
// "admin" (password "adminpw", the administrator's role), and adds the
// clients users (name to password).
func startDynsecMosquitto(t *testing.T, users map[string]string) *testmosquitto.Broker {
	t.Helper()
	const plugin = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"
	ctrl, err := exec.LookPath("mosquitto_ctrl")
	if _, perr := os.Stat(plugin); err != nil || perr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("mosquitto_ctrl or the dynamic security plugin is not installed; CI must have them (apt-get install mosquitto mosquitto-clients)")
		}
		t.Skip("mosquitto_ctrl or the dynamic security plugin is not installed")
	}
	init := filepath.Join(t.TempDir(), "dynsec.json")
	if out, err := exec.Command(ctrl, "dynsec", "init", init, "admin", "adminpw").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_ctrl dynsec init: %v\n%s", err, out)
	}
	data, err := os.ReadFile(init)
	if err != nil {
		t.Fatal(err)
	}
	m := testmosquitto.Start(t, testmosquitto.Config{
		Conf: "listener " + testmosquitto.DeviceListener + "\nallow_anonymous false\nplugin " + plugin +
			"\nplugin_opt_config_file {{dir}}/dynsec.json\n",
		Files: map[string][]byte{"dynsec.json": data},
	})
	host, port, _ := net.SplitHostPort(m.Addr(testmosquitto.DeviceListener))
	for u, pw := range users {
		out, err := exec.Command(ctrl, "-h", host, "-p", port, "-u", "admin", "-P", "adminpw", "dynsec", "createClient", u, "-p", pw).CombinedOutput()
		if err != nil {
			t.Fatalf("mosquitto_ctrl dynsec createClient %s: %v\n%s", u, err, out)
		}
	}
	return m
}

// openDynsec makes a server on the external broker m, logged in as admin,
// with broker.dynamic_security logging in as admin with dynsecPassword,
// and its log.
func openDynsec(t *testing.T, m *testmosquitto.Broker, dynsecPassword string) (*Server, *lockedBuffer) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	cfg := initConfig(t, dir)
	cfg.Broker = BrokerConfig{URL: m.URL(testmosquitto.DeviceListener), Username: "admin", Password: "adminpw",
		DynamicSecurity: &DynsecConfig{Username: "admin", Password: dynsecPassword}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := &lockedBuffer{}
	srv, err := Open(t.Context(), cfg, slog.New(slog.NewTextHandler(log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	serve(t, srv, Listeners{API: listen(t), Relay: listen(t)})
	return srv, log
}

// connectDevice logs in to Mosquitto as user, returning the refusal.
func connectDevice(t *testing.T, addr, user, password string) (*paho.Client, error) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.ClientConfig{Conn: conn})
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: user, CleanStart: true, KeepAlive: 30,
		Username: user, UsernameFlag: true, Password: []byte(password), PasswordFlag: true}); err != nil {
		conn.Close()
		return nil, err
	}
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })
	return c, nil
}

// TestDynsecDisablesDeletedDevice: with broker.dynamic_security, deleting
// a device disables its client on Mosquitto's dynamic security plugin,
// which ends its connection within seconds and refuses it again.
func TestDynsecDisablesDeletedDevice(t *testing.T) {
	t.Parallel()
	m := startDynsecMosquitto(t, map[string]string{"acme/dev1": "devpw", "other/dev2": "dev2pw"})
	srv, log := openDynsec(t, m, "adminpw")
	st := srv.Store()
	dev1 := seedDevice(t, st, "acme", "dev1", "ssh-ed25519 AAAA")
	seedDevice(t, st, "other", "dev2", "ssh-ed25519 AAAA")
	addr := m.Addr(testmosquitto.DeviceListener)
	c1, err := connectDevice(t, addr, "acme/dev1", "devpw")
	if err != nil {
		t.Fatal(err)
	}
	c2, err := connectDevice(t, addr, "other/dev2", "dev2pw")
	if err != nil {
		t.Fatal(err)
	}

	if err := st.DeleteDevice(t.Context(), dev1.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c1.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("the deleted device is still connected to Mosquitto 5 s later; log:\n%s", log)
	}
	if _, err := connectDevice(t, addr, "acme/dev1", "devpw"); err == nil {
		t.Fatal("the deleted device logged in to Mosquitto again")
	}
	select {
	case <-c2.Done():
		t.Fatal("the other device was disconnected too")
	case <-time.After(200 * time.Millisecond):
	}
	if !strings.Contains(log.String(), "disabled on the external MQTT broker") {
		t.Errorf("the log does not say the device was disabled:\n%s", log)
	}
}

// TestDynsecFailureLogged: when the plugin's login is refused, the
// deletion stands, the failure is logged in words, and the device's
// connection is left as it was.
func TestDynsecFailureLogged(t *testing.T) {
	t.Parallel()
	m := startDynsecMosquitto(t, map[string]string{"acme/dev1": "devpw"})
	srv, log := openDynsec(t, m, "wrong")
	st := srv.Store()
	dev1 := seedDevice(t, st, "acme", "dev1", "ssh-ed25519 AAAA")
	c1, err := connectDevice(t, m.Addr(testmosquitto.DeviceListener), "acme/dev1", "devpw")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteDevice(t.Context(), dev1.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitTimeout)
	for !strings.Contains(log.String(), "could not be disabled on the external MQTT broker") {
		if time.Now().After(deadline) {
			t.Fatalf("no failure in the log:\n%s", log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(log.String(), "refused the login") {
		t.Errorf("the log does not say why:\n%s", log)
	}
	if _, err := st.GetDevice(t.Context(), dev1.ID); err == nil {
		t.Error("the device is back in the store")
	}
	select {
	case <-c1.Done():
		t.Error("the device was disconnected though the command failed")
	case <-time.After(200 * time.Millisecond):
	}
}

// TestDynsecConfig: broker.dynamic_security goes with broker.url only,
// needs a username, and takes broker.url when it names no listener.
func TestDynsecConfig(t *testing.T) {
	t.Parallel()
	b := BrokerConfig{URL: "mqtt://10.0.0.5:1884", DynamicSecurity: &DynsecConfig{Username: "admin"}}
	if err := b.validate("example.com"); err != nil || b.DynamicSecurity.URL != b.URL {
		t.Errorf("validate = %v, url %q; want nil, %q", err, b.DynamicSecurity.URL, b.URL)
	}
	for name, b := range map[string]BrokerConfig{
		"no username":     {URL: "mqtt://h", DynamicSecurity: &DynsecConfig{}},
		"embedded broker": {DynamicSecurity: &DynsecConfig{Username: "a"}},
		"broker node":     {Node: "mqtts://h", DynamicSecurity: &DynsecConfig{Username: "a"}},
		"bad url":         {URL: "mqtt://h", DynamicSecurity: &DynsecConfig{Username: "a", URL: "http://h"}},
		"password twice":  {URL: "mqtt://h", DynamicSecurity: &DynsecConfig{Username: "a", Password: "p", PasswordFile: "f"}},
	} {
		if err := b.validate("example.com"); err == nil || !strings.Contains(err.Error(), "dynamic_security") {
			t.Errorf("%s: validate = %v; want an error naming broker.dynamic_security", name, err)
		}
	}
}
