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
	"github.com/porthole/porthole/cli"
	"github.com/porthole/porthole/control"
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
		InsecureSkipVerify: true, // the pin below is the check
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

	lookup := deviceKeys(st)
	if got, err := lookup(t.Context(), "acme", "dev1"); err != nil || !got.Equal(pub) {
		t.Errorf("key of acme/dev1 = %x, %v; want %x", got, err, pub)
	}
	for _, tt := range []struct{ fleet, device string }{
		{"other", "dev1"}, // no such device in that fleet, though acme has one
		{"acme", "dev2"},
		{"nofleet", "dev1"},
	} {
		if _, err := lookup(t.Context(), tt.fleet, tt.device); !errors.Is(err, broker.ErrUnknownDevice) {
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
	if err := Init(t.Context(), InitOptions{DataDir: dir, AdminEmail: "ops@example.com", PublicURL: "https://127.0.0.1:1"}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(filepath.Join(dir, ConfigFileName))
	if err != nil {
		t.Fatal(err)
	}
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
	go func() { served <- srv.Serve(ctx, Listeners{API: listen(t), Broker: listen(t)}) }()
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

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
