package daemon

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/broker"
	"github.com/porthole/porthole/brokerclient"
	"github.com/porthole/porthole/cli"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/devicekeys"
	"github.com/porthole/porthole/internal/testmosquitto"
	"github.com/porthole/porthole/internal/testnet"
	"github.com/porthole/porthole/store"
	"github.com/porthole/porthole/store/storetest"
)

// waitTimeout bounds every poll in these tests.
const waitTimeout = 10 * time.Second

// TestDeviceOnBroker: an enrolled device logs in to the embedded broker
// over TLS with the certificate it pinned at enrollment; engineers see it
// online, then offline after it leaves; once deleted, it is cut off and
// refused.
func TestDeviceOnBroker(t *testing.T) {
	t.Parallel()
	c := runDev(t)
	admin, err := apiclient.New(c.Server, apiclient.Options{Token: c.Token, Fingerprint: c.Fingerprint})
	if err != nil {
		t.Fatal(err)
	}
	d := enrollDevice(t, c, "dev1")
	if d.resp.BrokerURL != c.Broker {
		t.Errorf("the device was told broker %q; want %q", d.resp.BrokerURL, c.Broker)
	}

	mc, _, err := d.connect(t)
	if err != nil {
		t.Fatalf("the device's login was refused: %v", err)
	}
	dev := waitDevice(t, admin, "dev1", "online", func(d apitype.Device) bool { return d.Online })
	if dev.LastSeen.IsZero() {
		t.Error("an online device has no last-seen time")
	}
	devicesSays(t, c, "dev1", "online")

	if err := mc.Disconnect(&paho.Disconnect{}); err != nil {
		t.Fatal(err)
	}
	dev = waitDevice(t, admin, "dev1", "offline", func(d apitype.Device) bool { return !d.Online })
	if dev.LastSeen.IsZero() {
		t.Error("a device that was online has no last-seen time")
	}
	devicesSays(t, c, "dev1", "offline")

	// Deleting the device ends its connection, and it cannot come back.
	mc, _, err = d.connect(t)
	if err != nil {
		t.Fatalf("the device's second login was refused: %v", err)
	}
	waitDevice(t, admin, "dev1", "online again", func(d apitype.Device) bool { return d.Online })
	if err := admin.DeleteDevice(t.Context(), dev.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-mc.Done():
	case <-time.After(waitTimeout):
		t.Fatal("the deleted device is still connected")
	}
	if _, ca, err := d.connect(t); err == nil {
		t.Fatal("the deleted device logged in again")
	} else if ca == nil || ca.ReasonCode != packets.ConnackBadUsernameOrPassword {
		t.Errorf("the deleted device's login failed with %v (CONNACK %+v); want a refusal as bad username or password", err, ca)
	}
}

// runDev starts `portholed dev` on free ports for the test.
func runDev(t *testing.T) DevCredentials {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan DevCredentials, 1)
	done := make(chan error, 1)
	go func() {
		done <- Dev(ctx, DevOptions{Listen: "127.0.0.1:0"}, func(c DevCredentials) { got <- c })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Dev: %v", err)
		}
	})
	select {
	case c := <-got:
		return c
	case err := <-done:
		t.Fatalf("Dev returned early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Dev did not become ready in 30 s")
	}
	return DevCredentials{}
}

// testDevice is a device enrolled through the API with its own key.
type testDevice struct {
	fleet, name string
	priv        ed25519.PrivateKey
	resp        *apitype.EnrollResponse
}

func enrollDevice(t *testing.T, c DevCredentials, name string) *testDevice {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	client, err := apiclient.New(c.Server, apiclient.Options{Fingerprint: c.Fingerprint})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Enroll(t.Context(), apitype.EnrollRequest{
		Token: c.EnrollmentToken, Name: name, PublicKey: string(ssh.MarshalAuthorizedKey(sshPub)),
	})
	if err != nil {
		t.Fatalf("enrolling %s: %v", name, err)
	}
	return &testDevice{fleet: c.Fleet, name: name, priv: priv, resp: resp}
}

// connect logs the device in to the broker it was told at enrollment, over
// TLS pinned to the fingerprint it was given, as the agent does. A refused
// login has the broker's CONNACK.
func (d *testDevice) connect(t *testing.T) (*paho.Client, *paho.Connack, error) {
	t.Helper()
	u, err := url.Parse(d.resp.BrokerURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", u.Host, &tls.Config{
		NextProtos:         []string{"mqtt"}, // as the agent asks, for the API's port
		InsecureSkipVerify: true,             // the pin below is the check
		VerifyConnection: func(cs tls.ConnectionState) error {
			if got := apiclient.Fingerprint(cs.PeerCertificates[0]); got != d.resp.TLSFingerprint {
				return fmt.Errorf("broker certificate %s; pinned %s", got, d.resp.TLSFingerprint)
			}
			return nil
		},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("TLS to the broker: %w", err)
	}
	username, err := control.DeviceUsername(d.fleet, d.name)
	if err != nil {
		t.Fatal(err)
	}
	mc := paho.NewClient(paho.ClientConfig{Conn: conn})
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	ca, err := mc.Connect(ctx, &paho.Connect{
		ClientID: username, Username: username, UsernameFlag: true, PasswordFlag: true,
		Password:   []byte(control.DevicePassword(d.priv, d.fleet, d.name, time.Now())),
		KeepAlive:  30,
		CleanStart: true,
	})
	if err != nil {
		conn.Close()
		return nil, ca, err
	}
	t.Cleanup(func() {
		_ = mc.Disconnect(&paho.Disconnect{})
		<-mc.Done()
	})
	return mc, ca, nil
}

// waitDevice polls the API until the device named name satisfies cond.
func waitDevice(t *testing.T, c *apiclient.Client, name, what string, cond func(apitype.Device) bool) apitype.Device {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		ds, err := c.Devices(t.Context(), apiclient.DeviceFilter{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 1 && cond(ds[0]) {
			return ds[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("device %s is not %s: %+v", name, what, ds)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// devicesSays runs `porthole devices` against the server and checks the
// device's STATUS column starts with status.
func devicesSays(t *testing.T, c DevCredentials, name, status string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := map[string]string{"PORTHOLE_SERVER": c.Server, "PORTHOLE_TOKEN": c.Token, "PORTHOLE_FINGERPRINT": c.Fingerprint, "XDG_CONFIG_HOME": t.TempDir()}
	err := cli.Run(t.Context(), []string{"devices"}, cli.IO{In: strings.NewReader(""), Out: &out, Err: &errb, Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatalf("porthole devices: %v\n%s", err, errb.String())
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == name {
			if f[2] != status {
				t.Errorf("porthole devices shows %s as %q; want %q:\n%s", name, f[2], status, out.String())
			}
			return
		}
	}
	t.Errorf("porthole devices does not list %s:\n%s", name, out.String())
}

// TestDeviceKeys: a device's key is found only under its own fleet and
// name.
func TestDeviceKeys(t *testing.T) {
	t.Parallel()
	st := storetest.OpenSQLite(t)
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPub, err := ssh.NewPublicKey(&ec.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	seedDevice(t, st, "acme", "dev1", string(ssh.MarshalAuthorizedKey(sshPub)))
	seedDevice(t, st, "other", "ecdsa", string(ssh.MarshalAuthorizedKey(ecPub)))

	lookup := devicekeys.StoreLookup(st)
	if got, err := lookup(t.Context(), "acme", "dev1"); err != nil || !got.Equal(pub) {
		t.Errorf("key of acme/dev1 = %x, %v; want %x", got, err, pub)
	}
	for _, tt := range []struct{ fleet, device string }{
		{"other", "dev1"}, // no such device in that fleet, though acme has one
		{"acme", "dev2"},
		{"nofleet", "dev1"},
	} {
		if _, err := lookup(t.Context(), tt.fleet, tt.device); !errors.Is(err, devicekeys.ErrUnknownDevice) {
			t.Errorf("key of %s/%s: %v; want ErrUnknownDevice", tt.fleet, tt.device, err)
		}
	}
	if _, err := lookup(t.Context(), "other", "ecdsa"); err == nil || !strings.Contains(err.Error(), "ecdsa-sha2-nistp256") {
		t.Errorf("key of a device with an ECDSA key: %v; want an error naming its type", err)
	}
}

// seedDevice enrolls a device with the given key straight into the store,
// making its fleet.
func seedDevice(t *testing.T, st store.Store, fleet, name, key string) *store.Device {
	t.Helper()
	ctx := t.Context()
	f := &store.Fleet{Name: fleet}
	if err := st.CreateFleet(ctx, f); err != nil {
		t.Fatal(err)
	}
	et := &store.EnrollmentToken{FleetID: f.ID, Hash: "hash-" + fleet, UsesLeft: 1, MaxUses: 1, ExpiresAt: time.Now().Add(time.Hour)}
	if err := st.CreateEnrollmentToken(ctx, et); err != nil {
		t.Fatal(err)
	}
	d := &store.Device{Name: name, PublicKey: key}
	if err := st.EnrollDevice(ctx, et.Hash, time.Now(), d, func(*store.Fleet) (string, error) { return "cert", nil }); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestServeMarksDevicesOffline: a device left online by a server that
// stopped without saying goodbye is offline once the next one serves, and
// keeps its last-seen time.
func TestServeMarksDevicesOffline(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	cfg := initConfig(t, dir)
	srv, err := Open(t.Context(), cfg, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	st := srv.Store()
	d := seedDevice(t, st, "acme", "dev1", "ssh-ed25519 AAAA")
	seen := time.Now().Add(-time.Hour).Truncate(time.Millisecond).UTC()
	if err := st.SetDevicePresence(t.Context(), store.DevicePresence{DeviceID: d.ID, Online: true, At: seen}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, Listeners{API: listen(t), Broker: listen(t), Relay: listen(t)}) }()
	deadline := time.Now().Add(waitTimeout)
	for {
		got, err := st.GetDevice(t.Context(), d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Online {
			if !got.LastSeen.Equal(seen) {
				t.Errorf("last seen %v after marking offline; want it kept, %v", got.LastSeen, seen)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the device is still online after Serve started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-served; err != nil {
		t.Errorf("Serve = %v; want nil after a clean shutdown", err)
	}
}

// initConfig runs `portholed init` into dir and loads the config it wrote.
func initConfig(t *testing.T, dir string) *Config {
	t.Helper()
	if err := Init(t.Context(), InitOptions{DataDir: dir, AdminEmail: "ops@example.com", PublicURL: "https://127.0.0.1:1"}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(filepath.Join(dir, ConfigFileName))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// Tests of the control channel on an external broker: a Mosquitto process
// of the test's own.

// startMosquitto runs Mosquitto (testmosquitto) on one listener, open to
// anonymous clients, or with users (name to password) only them.
func startMosquitto(t *testing.T, users map[string]string) *testmosquitto.Broker {
	t.Helper()
	if users == nil {
		return testmosquitto.Start(t, testmosquitto.Config{})
	}
	return testmosquitto.Start(t, testmosquitto.Config{
		Conf:      "listener " + testmosquitto.DeviceListener + "\nallow_anonymous false\npassword_file {{dir}}/passwd\n",
		Passwords: map[string]map[string]string{"passwd": users},
	})
}

// mqttDevice is a plain MQTT client standing in for devices: it publishes
// their states and records what arrives on the topics it subscribes to.
type mqttDevice struct {
	*paho.Client
	got chan string // "<topic> <payload>"
}

func dialMQTT(t *testing.T, addr, id, username, password string) *mqttDevice {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	d := &mqttDevice{got: make(chan string, 100)}
	d.Client = paho.NewClient(paho.ClientConfig{Conn: conn, OnPublishReceived: []func(paho.PublishReceived) (bool, error){
		func(pr paho.PublishReceived) (bool, error) {
			d.got <- pr.Packet.Topic + " " + string(pr.Packet.Payload)
			return true, nil
		},
	}})
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	if _, err := d.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30,
		Username: username, UsernameFlag: username != "", Password: []byte(password), PasswordFlag: password != ""}); err != nil {
		t.Fatalf("connecting to mosquitto: %v", err)
	}
	t.Cleanup(func() {
		_ = d.Disconnect(&paho.Disconnect{})
		<-d.Done()
	})
	return d
}

func (d *mqttDevice) publish(t *testing.T, topic, payload string, retain bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	if _, err := d.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Retain: retain, Payload: []byte(payload)}); err != nil {
		t.Fatalf("publishing to %s: %v", topic, err)
	}
}

func stateTopic(t *testing.T, fleet, device string) string {
	t.Helper()
	topic, err := control.StateTopic(fleet, device)
	if err != nil {
		t.Fatal(err)
	}
	return topic
}

// openExternal makes a server whose control channel is the broker at url.
func openExternal(t *testing.T, b BrokerConfig) *Server {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	cfg := initConfig(t, dir)
	cfg.Broker = b
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := Open(t.Context(), cfg, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// serve runs srv.Serve until the test ends, checking that it stops cleanly.
func serve(t *testing.T, srv *Server, ls Listeners) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ls) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve = %v; want nil after a clean shutdown", err)
		}
	})
}

// waitStored polls the store until the device satisfies cond.
func waitStored(t *testing.T, st store.Store, id, what string, cond func(*store.Device) bool) *store.Device {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		d, err := st.GetDevice(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if cond(d) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("device %s is not %s: online %v, last seen %v", d.Name, what, d.Online, d.LastSeen)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestExternalBroker: with broker.url, the server runs no broker of its
// own; presence and the state handlers follow the states devices publish
// on the external broker, retained ones included; malformed states and a
// panicking handler are survived; commands go out through PubSub.
func TestExternalBroker(t *testing.T) {
	t.Parallel()
	m := startMosquitto(t, nil)
	srv := openExternal(t, BrokerConfig{URL: "mqtt://" + m.Addr(testmosquitto.DeviceListener)})
	st := srv.Store()
	dev1 := seedDevice(t, st, "acme", "dev1", "ssh-ed25519 AAAA")
	dev2 := seedDevice(t, st, "other", "dev2", "ssh-ed25519 AAAA")
	dev3 := seedDevice(t, st, "third", "dev3", "ssh-ed25519 AAAA")
	// dev2 was online when a server last stopped; it left since.
	seen := time.Now().Add(-time.Hour).Truncate(time.Millisecond).UTC()
	if err := st.SetDevicePresence(t.Context(), store.DevicePresence{DeviceID: dev2.ID, Online: true, At: seen}); err != nil {
		t.Fatal(err)
	}

	devices := dialMQTT(t, m.Addr(testmosquitto.DeviceListener), "devices", "", "")
	devices.publish(t, stateTopic(t, "acme", "dev1"), "online", true)
	devices.publish(t, stateTopic(t, "other", "dev2"), "offline", true)

	type state struct {
		fleet, device string
		st            control.State
	}
	states := make(chan state, 100)
	srv.onState = append(srv.onState,
		func(fleet, device string, st control.State) {
			if st.Kind == control.StateRejected {
				panic("a handler's bug")
			}
		},
		func(fleet, device string, st control.State) { states <- state{fleet, device, st} })
	var log testnet.Buffer
	srv.logger = slog.New(slog.NewTextHandler(&log, nil))
	if srv.PubSub() == nil || srv.broker != nil {
		t.Fatal("the server has no external control channel, or an embedded broker too")
	}
	brokerLn := listen(t)
	serve(t, srv, Listeners{API: listen(t), Broker: brokerLn, Relay: listen(t)})

	// The retained states bring presence back, without moving dev2's
	// last-seen time.
	got := waitStored(t, st, dev1.ID, "online", func(d *store.Device) bool { return d.Online })
	if got.LastSeen.IsZero() {
		t.Error("an online device has no last-seen time")
	}
	got = waitStored(t, st, dev2.ID, "offline", func(d *store.Device) bool { return !d.Online })
	if !got.LastSeen.Equal(seen) {
		t.Errorf("dev2's last seen = %v after a replayed offline; want it kept, %v", got.LastSeen, seen)
	}
	if c, err := net.Dial("tcp", brokerLn.Addr().String()); err == nil {
		c.Close()
		t.Error("the server accepts MQTT connections of its own with an external broker")
	}
	expect := func(fleet, device string, want control.State) {
		t.Helper()
		deadline := time.After(waitTimeout)
		for {
			select {
			case s := <-states:
				if s.fleet == fleet && s.device == device && s.st == want {
					return
				}
			case <-deadline:
				t.Fatalf("no state %+v from %s/%s reached the handler", want, fleet, device)
			}
		}
	}
	expect("acme", "dev1", control.State{Kind: control.StateOnline})

	// Malformed messages are dropped, and so is a handler's panic; what
	// follows still arrives.
	devices.publish(t, stateTopic(t, "third", "dev3"), "hello world", false)
	devices.publish(t, stateTopic(t, "third", "dev3"), "tunnel_up", false)
	devices.publish(t, "porthole/v1/ACME/dev1/state", "online", false)
	devices.publish(t, stateTopic(t, "third", "dev3"), "rejected bad_signature", false)
	devices.publish(t, stateTopic(t, "acme", "dev1"), "tunnel_up s1", false)
	expect("third", "dev3", control.State{Kind: control.StateRejected, Reason: "bad_signature"})
	expect("acme", "dev1", control.State{Kind: control.StateTunnelUp, Session: "s1"})
	// Any state but offline means connected.
	waitStored(t, st, dev3.ID, "online after a rejected state", func(d *store.Device) bool { return d.Online })
	for _, want := range []string{
		`msg="malformed state message dropped" fleet=third device=dev3 bytes=11`,
		`msg="a state handler panicked" fleet=third device=dev3 state=rejected panic="a handler's bug"`,
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log lacks %s:\n%s", want, log.String())
		}
	}

	// A live offline (a last will) is seen now.
	before := time.Now().Add(-time.Second)
	devices.publish(t, stateTopic(t, "acme", "dev1"), "offline", true)
	got = waitStored(t, st, dev1.ID, "offline", func(d *store.Device) bool { return !d.Online })
	if got.LastSeen.Before(before) {
		t.Errorf("dev1 last seen %v after going offline just now; want after %v", got.LastSeen, before)
	}

	// Commands go out through PubSub.
	cmd, _ := control.CmdTopic("acme", "dev1")
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	if _, err := devices.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: cmd, QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	if err := srv.PubSub().Publish(cmd, []byte("envelope"), false, 1); err != nil {
		t.Fatalf("PubSub().Publish: %v", err)
	}
	select {
	case msg := <-devices.got:
		if msg != cmd+" envelope" {
			t.Errorf("the device got %q; want %q", msg, cmd+" envelope")
		}
	case <-time.After(waitTimeout):
		t.Fatal("the command published through PubSub did not arrive")
	}

	// The snapshot of retained states ran, and ended once the broker fell
	// quiet (the live states above came during it).
	deadline := time.Now().Add(waitTimeout)
	for !strings.Contains(log.String(), `msg="read the devices' retained states" messages=`) {
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot of the retained states was logged:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSnapshotReadsEveryRetainedState: a snapshot gets the retained state
// of every device, more than Mosquitto replays to a shared subscription at
// QoS 1 (1020 with its default queue limits), and ends soon after.
func TestSnapshotReadsEveryRetainedState(t *testing.T) {
	t.Parallel()
	m := startMosquitto(t, nil)
	const n = 1500
	devices := dialMQTT(t, m.Addr(testmosquitto.DeviceListener), "devices", "", "")
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	for i := range n {
		// QoS 0 publishes queue up without a round trip each; the QoS 1
		// one after them returns once all have been handled.
		_, err := devices.Publish(ctx, &paho.Publish{Topic: stateTopic(t, "acme", fmt.Sprintf("dev%d", i)), Retain: true, Payload: []byte("online")})
		if err != nil {
			t.Fatal(err)
		}
	}
	devices.publish(t, stateTopic(t, "acme", "last"), "offline", true)

	c, err := brokerclient.New(brokerclient.Config{URL: "mqtt://" + m.Addr(testmosquitto.DeviceListener)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	seen := map[string]bool{}
	start := time.Now()
	got, err := c.Snapshot(t.Context(), 200*time.Millisecond, func(topic string, payload []byte) {
		if _, _, ok := control.ParseStateTopic(topic); !ok {
			t.Errorf("snapshot handed on topic %q", topic)
		}
		seen[topic] = true
	})
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	if got != n+1 || len(seen) != n+1 {
		t.Errorf("snapshot handed on %d messages on %d topics; want %d", got, len(seen), n+1)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the snapshot took %v", took)
	}
}

// TestExternalBrokerRefusesLogin: a server whose broker refuses its login
// stops at once, saying so, instead of serving without a control channel.
func TestExternalBrokerRefusesLogin(t *testing.T) {
	t.Parallel()
	m := startMosquitto(t, map[string]string{"portholed": "right"})
	srv := openExternal(t, BrokerConfig{URL: "mqtt://" + m.Addr(testmosquitto.DeviceListener), Username: "portholed", Password: "wrong"})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(t.Context(), Listeners{API: listen(t), Relay: listen(t)}) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "broker.url") || !strings.Contains(err.Error(), "refused") {
			t.Errorf("Serve = %v; want a refused login, naming broker.url", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Serve still runs with a broker that refused its login")
	}
}

// TestExternalBrokerReconnects: after the broker restarts (forgetting
// everything: no persistence), the server is connected again, states
// reach it, and commands go out.
func TestExternalBrokerReconnects(t *testing.T) {
	t.Parallel()
	m := startMosquitto(t, nil)
	srv := openExternal(t, BrokerConfig{URL: "mqtt://" + m.Addr(testmosquitto.DeviceListener)})
	st := srv.Store()
	dev1 := seedDevice(t, st, "acme", "dev1", "ssh-ed25519 AAAA")
	serve(t, srv, Listeners{API: listen(t), Relay: listen(t)})
	devices := dialMQTT(t, m.Addr(testmosquitto.DeviceListener), "devices", "", "")
	devices.publish(t, stateTopic(t, "acme", "dev1"), "online", true)
	waitStored(t, st, dev1.ID, "online", func(d *store.Device) bool { return d.Online })

	m.Restart(t)
	devices = dialMQTT(t, m.Addr(testmosquitto.DeviceListener), "devices-again", "", "")
	cmd, _ := control.CmdTopic("acme", "dev1")
	// The connection lasted less than brokerclient's stableAfter, so its
	// loss counts as a flap and reconnection backs off: attempts that
	// meet the broker still starting wait up to 1, 2, 4 and 8 s in turn,
	// which a slow start on a loaded machine can use up. Wait that long.
	deadline := time.Now().Add(waitTimeout + 20*time.Second)
	for srv.PubSub().Publish(cmd, []byte("x"), false, 1) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the server did not reconnect to the restarted broker")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Connected again; its shared subscription is renewed at once, but
	// give it a moment by retrying the state until it lands.
	deadline = time.Now().Add(waitTimeout)
	for {
		devices.publish(t, stateTopic(t, "acme", "dev1"), "offline", true)
		d, err := st.GetDevice(t.Context(), dev1.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Online {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a state published after the broker restarted did not reach presence")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEmbeddedBrokerStates: with the embedded broker, the state handlers
// get every state a device publishes, parsed, while presence stays with the
// broker's connection hooks (a device claiming "offline" while connected
// stays online); commands go out through PubSub.
func TestEmbeddedBrokerStates(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	cfg := initConfig(t, dir)
	srv, err := Open(t.Context(), cfg, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	stored := seedDevice(t, srv.Store(), "acme", "dev1", string(ssh.MarshalAuthorizedKey(sshPub)))
	states := make(chan control.State, 10)
	srv.onState = append(srv.onState, func(fleet, device string, st control.State) {
		if fleet == "acme" && device == "dev1" {
			states <- st
		}
	})
	if srv.PubSub() != broker.PubSub(srv.broker) || srv.client != nil {
		t.Fatal("PubSub is not the embedded broker")
	}
	brokerLn := listen(t)
	serve(t, srv, Listeners{API: listen(t), Broker: brokerLn, Relay: listen(t)})

	d := &testDevice{fleet: "acme", name: "dev1", priv: priv, resp: &apitype.EnrollResponse{
		BrokerURL: "mqtts://" + brokerLn.Addr().String(), TLSFingerprint: srv.Keys().TLSFingerprint(),
	}}
	mc, _, err := d.connect(t)
	if err != nil {
		t.Fatalf("the device's login was refused: %v", err)
	}
	cmds := make(chan string, 1)
	mc.AddOnPublishReceived(func(pr paho.PublishReceived) (bool, error) {
		cmds <- string(pr.Packet.Payload)
		return true, nil
	})
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	topic := stateTopic(t, "acme", "dev1")
	for _, msg := range []string{"online", "not a state", "tunnel_up s1", "offline"} {
		if _, err := mc.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Retain: true, Payload: []byte(msg)}); err != nil {
			t.Fatalf("publishing %q: %v", msg, err)
		}
	}
	for _, want := range []control.State{{Kind: control.StateOnline}, {Kind: control.StateTunnelUp, Session: "s1"}, {Kind: control.StateOffline}} {
		select {
		case got := <-states:
			if got != want {
				t.Errorf("state handler got %+v; want %+v", got, want)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("the state handler did not get %+v", want)
		}
	}
	waitStored(t, srv.Store(), stored.ID, "online", func(d *store.Device) bool { return d.Online })

	cmd, _ := control.CmdTopic("acme", "dev1")
	if _, err := mc.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: cmd, QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	if err := srv.PubSub().Publish(cmd, []byte("envelope"), false, 1); err != nil {
		t.Fatalf("PubSub().Publish: %v", err)
	}
	select {
	case got := <-cmds:
		if got != "envelope" {
			t.Errorf("the device got %q; want the command", got)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the command published through PubSub did not arrive")
	}
	// The device's "offline" claim did not mark it offline: it is connected.
	if d, err := srv.Store().GetDevice(t.Context(), stored.ID); err != nil || !d.Online {
		t.Errorf("device online = %v (%v); want online while connected", d.Online, err)
	}
}
