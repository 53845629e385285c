package daemon

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/eclipse/paho.golang/paho"
	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/ca"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/internal/testmosquitto"
	"github.com/porthole/porthole/internal/testwait"
	"github.com/porthole/porthole/session"
	"github.com/porthole/porthole/store"
	"github.com/porthole/porthole/store/pgstore"
	"github.com/porthole/porthole/store/storetest"
)

// node is one portholed node of a test cluster.
type node struct {
	*Server
	api, broker, relay net.Listener
	stop               func() // stops Serve and closes the server
}

// startNodes starts n server nodes on one PostgreSQL database, with their
// own listeners: the API nodes on one data directory (the keys they
// share), each node without the api role on one of its own made from it
// as an operator makes it (InitNode). Each node's relay advertises its own
// API listener, where its second protocol is served; tweak, if not nil,
// changes node i's config, knowing the nodes started before it.
func startNodes(t *testing.T, n int, tweak func(i int, cfg *Config, started []*node)) []*node {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	cfg := initConfig(t, dir)
	cfg.Database = storetest.PostgresDSN(t)
	var nodes []*node
	for i := range n {
		nd := &node{api: listen(t), broker: listen(t), relay: listen(t)}
		ncfg := *cfg
		ncfg.Relay.Advertise, ncfg.Relay.PublicAddr = nd.api.Addr().String(), nd.relay.Addr().String()
		if tweak != nil {
			tweak(i, &ncfg, nodes)
		}
		if err := ncfg.Validate(); err != nil {
			t.Fatal(err)
		}
		if !ncfg.Has(RoleAPI) {
			host, _, _ := net.SplitHostPort(ncfg.Relay.PublicAddr)
			ncfg.DataDir = filepath.Join(t.TempDir(), fmt.Sprintf("node%d", i))
			if err := InitNode(InitNodeOptions{From: dir, DataDir: ncfg.DataDir, RelayHosts: []string{host}}, io.Discard); err != nil {
				t.Fatal(err)
			}
		}
		srv, err := Open(t.Context(), &ncfg, discardLogger())
		if err != nil {
			t.Fatal(err)
		}
		nd.Server = srv
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ctx, Listeners{API: nd.api, Broker: nd.broker, Relay: nd.relay}) }()
		var once sync.Once
		nd.stop = func() {
			once.Do(func() {
				cancel()
				if err := <-served; err != nil {
					t.Errorf("Serve: %v", err)
				}
				srv.Close()
			})
		}
		t.Cleanup(nd.stop)
		nodes = append(nodes, nd)
	}
	// Serve registers a relay before it serves the API: wait for each,
	// so that the test's first session finds every relay.
	for _, nd := range nodes {
		if !nd.cfg.Has(RoleRelay) {
			continue
		}
		testwait.For(t, waitTimeout, "the relay of a node to register", func() bool {
			live, err := nd.Store().ListRelays(t.Context(), time.Time{})
			return err == nil && slices.ContainsFunc(live, func(r *store.Relay) bool { return r.ID == nd.relayID })
		})
	}
	return nodes
}

// device is a device enrolled straight into the store with a new key; it
// logs in to a node's broker and relay as the agent does.
func (nd *node) enroll(t *testing.T, fleet *store.Fleet, name string) *testDevice {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	et := &store.EnrollmentToken{FleetID: fleet.ID, Hash: fmt.Sprintf("hash-%x", pub[:8]), UsesLeft: 1, MaxUses: 1, ExpiresAt: time.Now().Add(time.Hour)}
	if err := nd.Store().CreateEnrollmentToken(t.Context(), et); err != nil {
		t.Fatal(err)
	}
	d := &store.Device{Name: name, PublicKey: string(ssh.MarshalAuthorizedKey(sshPub))}
	if err := nd.Store().EnrollDevice(t.Context(), et.Hash, time.Now(), d, func(*store.Fleet) (string, error) { return "cert", nil }); err != nil {
		t.Fatal(err)
	}
	return &testDevice{fleet: fleet.Name, name: name, priv: priv}
}

// at points the device at nd's broker.
func (nd *node) at(t *testing.T, d *testDevice) *testDevice {
	t.Helper()
	leaf, err := x509.ParseCertificate(nd.Keys().TLS.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	d.resp = &apitype.EnrollResponse{BrokerURL: "mqtts://" + nd.broker.Addr().String(), TLSFingerprint: apiclient.Fingerprint(leaf)}
	return d
}

// sshLogin logs in to nd's relay (its SSH listener) as user with signer.
// A refusal's error carries the relay's banner, which says why.
func (nd *node) sshLogin(user string, signer ssh.Signer) (*ssh.Client, error) {
	var banner string
	var auth []ssh.AuthMethod
	if signer != nil {
		auth = append(auth, ssh.PublicKeys(signer))
	}
	c, err := ssh.Dial("tcp", nd.relay.Addr().String(), &ssh.ClientConfig{
		User: user, Auth: auth,
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), // the host certificate is not what this test is about
		BannerCallback:  func(msg string) error { banner += msg; return nil },
		Timeout:         waitTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("%w (banner %q)", err, banner)
	}
	return c, nil
}

// closedWithin reports whether c's connection ends within d.
func closedWithin(c *ssh.Client, d time.Duration) bool {
	done := make(chan struct{})
	go func() { c.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// newFleet makes fleet name in nd's store.
func (nd *node) newFleet(t *testing.T, name string) *store.Fleet {
	t.Helper()
	f := &store.Fleet{Name: name}
	if err := nd.Store().CreateFleet(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	return f
}

// device reads a device of fleet from nd's store.
func (nd *node) device(t *testing.T, fleet *store.Fleet, name string) *store.Device {
	t.Helper()
	d, err := nd.Store().GetDeviceByName(t.Context(), fleet.ID, name)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// outsider is a connection of its own to nd's database, closed when the
// test ends, and the schema the deployment's tables are in.
func (nd *node) outsider(t *testing.T) (*sql.DB, string) {
	t.Helper()
	db, err := sql.Open("pgx", nd.cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var schema string
	if err := db.QueryRowContext(t.Context(), "SELECT current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	return db, schema
}

// clusterEngineer is a user with an SSH key of their own, who asks nodes
// for sessions.
type clusterEngineer struct {
	user *store.User
	key  ssh.Signer
}

func newClusterEngineer(t *testing.T, st store.Store) *clusterEngineer {
	t.Helper()
	u := &store.User{Email: "eng@example.com"}
	if err := st.CreateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return &clusterEngineer{user: u, key: key}
}

// open asks via for a session on d to port 22, and returns it with the
// engineer's key certified for it.
func (e *clusterEngineer) open(t *testing.T, via *node, d *store.Device, reason string) (*session.Opened, ssh.Signer) {
	t.Helper()
	o, err := via.sessions.Open(t.Context(), session.Request{Device: d, User: e.user, PublicKey: e.key.PublicKey(), Ports: []int{22}, Reason: reason})
	if err != nil {
		t.Fatalf("opening a session through a node: %v", err)
	}
	cert, err := ssh.NewCertSigner(o.Certificate, e.key)
	if err != nil {
		t.Fatal(err)
	}
	return o, cert
}

// TestTwoNodes: two server nodes on one PostgreSQL database act at once on
// what the other changes. A device deleted through node a is cut off node
// b's broker and relay and refused there at once, though b had its key
// cached from the login before; the name enrolled again with a new key
// logs in to b at once with that key only. An engineer waiting on one
// node's relay is cut off when the other node closes the session, b
// though it cannot sign the device's close command.
func TestTwoNodes(t *testing.T) {
	t.Parallel()
	// Node b has no api role: a data dir of its own, no signing keys.
	nodes := startNodes(t, 2, func(i int, cfg *Config, _ []*node) {
		if i == 1 {
			cfg.Roles = []string{RoleRelay, RoleBroker}
		}
	})
	a, b := nodes[0], nodes[1]
	ctx := t.Context()
	fleet := a.newFleet(t, "acme")

	dev := b.at(t, a.enroll(t, fleet, "dev1"))
	mc, _, err := dev.connect(t)
	if err != nil {
		t.Fatalf("the device's login to node b was refused: %v", err)
	}
	devSigner, err := ssh.NewSignerFromKey(dev.priv)
	if err != nil {
		t.Fatal(err)
	}
	onRelay, err := b.sshLogin("acme/dev1", devSigner)
	if err != nil {
		t.Fatalf("the device's login to node b's relay was refused: %v", err)
	}

	d := a.device(t, fleet, "dev1")
	if err := a.Store().DeleteDevice(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-mc.Done():
	case <-time.After(waitTimeout):
		t.Fatal("the device deleted through node a is still connected to node b's broker")
	}
	if !closedWithin(onRelay, waitTimeout) {
		t.Fatal("the device deleted through node a is still connected to node b's relay")
	}
	if _, _, err := dev.connect(t); err == nil {
		t.Fatal("the device deleted through node a logged in to node b's broker again")
	}
	if c, err := b.sshLogin("acme/dev1", devSigner); err == nil {
		c.Close()
		t.Fatal("the device deleted through node a logged in to node b's relay again")
	}

	renewed := b.at(t, a.enroll(t, fleet, "dev1"))
	if _, _, err := renewed.connect(t); err != nil {
		t.Fatalf("dev1 enrolled again through node a was refused by node b: %v", err)
	}
	if _, _, err := dev.connect(t); err == nil {
		t.Fatal("the deleted device's old key logged in to node b after its name was enrolled again")
	}

	// An engineer with a certificate for a session node a opened waits on
	// node b's relay for the device; node a closes the session.
	d = a.device(t, fleet, "dev1")
	opened, certSigner := newClusterEngineer(t, a.Store()).open(t, a, d, "ticket 1")
	// The engineer goes to the node the session was placed on; the other
	// node closes it.
	on, closer := a, b
	if opened.Session.RelayID == b.relayID {
		on, closer = b, a
	}
	eng, err := on.sshLogin("engineer", certSigner)
	if err != nil {
		t.Fatalf("the engineer's login to the relay the session was placed on was refused: %v", err)
	}
	deadline := time.Now().Add(waitTimeout)
	for !slices.Contains(on.Server.relay.Sessions(), opened.Session.ID) {
		if time.Now().After(deadline) {
			t.Fatal("the relay does not hold the engineer's session")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := closer.sessions.CloseSession(ctx, opened.Session.ID, control.CloseEngineer); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(eng, 5*time.Second) {
		t.Fatal("the engineer on one node's relay was not cut off within 5 s of the other node closing the session")
	}
}

// TestPlacementAcrossNodes: each session is placed on a live relay, of the
// device's region first, and both ends are told that node's addresses; a
// node that stops gets no more sessions; a node refuses an engineer whose
// session was placed on another.
func TestPlacementAcrossNodes(t *testing.T) {
	t.Parallel()
	regions := []string{"eu", "us"}
	nodes := startNodes(t, 2, func(i int, cfg *Config, _ []*node) { cfg.Relay.Region = regions[i] })
	eu, us := nodes[0], nodes[1]
	ctx := t.Context()
	fleet := eu.newFleet(t, "acme")
	eu.enroll(t, fleet, "dev1")
	d := eu.device(t, fleet, "dev1")
	if err := eu.Store().SetDeviceLabels(ctx, d.ID, map[string]string{"region": "us"}); err != nil {
		t.Fatal(err)
	}
	d.Labels = map[string]string{"region": "us"}
	eng := newClusterEngineer(t, eu.Store())

	// Asked through the eu node, placed on the us node's relay.
	o, cert := eng.open(t, eu, d, "ticket 2")
	if s := o.Session; s.RelayID != us.relayID || s.RelayAddr != us.api.Addr().String() || s.RelaySSHAddr != us.relay.Addr().String() {
		t.Fatalf("session placed on %s (%s, %s); want the us node's relay %s (%s, %s)", s.RelayID, s.RelayAddr, s.RelaySSHAddr,
			us.relayID, us.api.Addr(), us.relay.Addr())
	}
	// The eu node's relay turns its engineer away, saying where to go.
	if c, err := eu.sshLogin("engineer", cert); err == nil {
		c.Close()
		t.Error("the eu node's relay let in the engineer of a session placed on the us node")
	} else if !strings.Contains(err.Error(), "placed on another relay node") {
		t.Errorf("the eu node's relay refused with %v; want it to say the session is on another node", err)
	}
	if c, err := us.sshLogin("engineer", cert); err != nil {
		t.Errorf("the us node's relay refused the engineer of a session placed on it: %v", err)
	} else {
		c.Close()
	}

	// The us node stops: it leaves the registry, and the next session is
	// placed on the eu node, the only one left.
	us.stop()
	if o, _ := eng.open(t, eu, d, "ticket 2"); o.Session.RelayID != eu.relayID {
		t.Errorf("after the us node stopped, a session was placed on %s; want the eu node's %s", o.Session.RelayID, eu.relayID)
	}
}

// TestRoles: an API node and a relay node apart, sharing PostgreSQL and an
// external broker. The relay node answers no API call and serves the
// relay, on which every session the API node opens is placed; the API
// node serves no relay and is not in the registry. The relay node holds
// no signing key, in its data dir or loaded, and refuses to start on a
// data dir that has one; a session it closes (its device gone from its
// relay) still reaches the device as a signed close within seconds, sent
// by the API node.
func TestRoles(t *testing.T) {
	t.Parallel()
	m := startMosquitto(t, nil)
	roles := [][]string{{RoleAPI}, {RoleRelay}}
	nodes := startNodes(t, 2, func(i int, cfg *Config, _ []*node) {
		cfg.Roles = roles[i]
		cfg.Broker = BrokerConfig{URL: "mqtt://" + m.Addr(testmosquitto.DeviceListener), ShareGroup: "roles"}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
	})
	apiNode, relayNode := nodes[0], nodes[1]

	get := func(nd *node, path string) (int, string) {
		t.Helper()
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: waitTimeout}
		resp, err := c.Get("https://" + nd.api.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get(relayNode, "/api/v1/fleets"); code != http.StatusNotFound || !strings.Contains(body, "serves no API (roles: relay)") {
		t.Errorf("the relay node answered an API call with %d %q; want 404 saying it serves no API", code, body)
	}
	if code, _ := get(relayNode, "/healthz"); code != http.StatusOK {
		t.Errorf("the relay node's /healthz: %d", code)
	}
	if code, _ := get(apiNode, "/healthz"); code != http.StatusOK {
		t.Errorf("the API node's /healthz: %d", code)
	}
	if _, err := apiNode.sshLogin("acme/dev1", nil); err == nil {
		t.Error("the API node's relay listener took a login")
	}

	ctx := t.Context()
	live, err := apiNode.Store().ListRelays(ctx, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 1 || live[0].ID != relayNode.relayID || live[0].Addr != relayNode.api.Addr().String() {
		t.Fatalf("registered relays = %+v; want the relay node's alone", live)
	}
	// Nothing to sign with on the relay node.
	for _, name := range ca.SigningKeyFiles {
		if _, err := os.Stat(filepath.Join(relayNode.cfg.DataDir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the relay node's data dir holds %s (%v)", name, err)
		}
	}
	if k := relayNode.Keys(); k.CanSign() || k.Control != nil || k.UserCA != nil || k.HostCA != nil {
		t.Fatal("the relay node loaded a signing key")
	}
	if relayNode.Server.api != nil {
		t.Error("the relay node made an API")
	}
	bad := *relayNode.cfg
	bad.DataDir = apiNode.cfg.DataDir
	if srv, err := Open(ctx, &bad, discardLogger()); err == nil {
		srv.Close()
		t.Error("a relay node started on a data dir holding the signing keys")
	} else if !strings.Contains(err.Error(), ca.ControlKeyFile) || !strings.Contains(err.Error(), "portholed init-node") {
		t.Errorf("a relay node on a data dir with signing keys: %v; want words naming the keys and portholed init-node", err)
	}

	fleet := apiNode.newFleet(t, "acme")
	dev := apiNode.enroll(t, fleet, "dev1")
	d := apiNode.device(t, fleet, "dev1")
	// The device idles on the broker, and checks what it is sent as the
	// agent does.
	mqttDev := dialMQTT(t, m.Addr(testmosquitto.DeviceListener), "acme/dev1", "", "")
	cmdTopic, _ := control.CmdTopic("acme", "dev1")
	if _, err := mqttDev.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: cmdTopic, QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	verifier, err := control.NewVerifier(apiNode.Keys().ControlPub, "acme", "dev1", deviceNonces{control.NewMemoryNonceStore(100, 0)})
	if err != nil {
		t.Fatal(err)
	}
	nextCmd := func(within time.Duration, what string) *control.Command {
		t.Helper()
		select {
		case got := <-mqttDev.got:
			cmd, err := verifier.Verify([]byte(strings.TrimPrefix(got, cmdTopic+" ")), time.Now())
			if err != nil {
				t.Fatalf("%s: the device refused %q: %v", what, got, err)
			}
			return cmd
		case <-time.After(within):
			t.Fatalf("%s: no command reached the device within %v", what, within)
			return nil
		}
	}
	eng := newClusterEngineer(t, apiNode.Store())
	if _, err := relayNode.sessions.Open(ctx, session.Request{Device: d, User: eng.user, PublicKey: eng.key.PublicKey(), Ports: []int{22}}); !errors.Is(err, session.ErrCannotSign) {
		t.Errorf("the relay node opened a session: %v; want session.ErrCannotSign", err)
	}
	o, _ := eng.open(t, apiNode, d, "ticket 3")
	if o.Session.RelayID != relayNode.relayID {
		t.Fatalf("the session was placed on %q; want the relay node's %s", o.Session.RelayID, relayNode.relayID)
	}
	if cmd := nextCmd(waitTimeout, "open"); cmd.Type != control.TypeOpen || cmd.Session != o.Session.ID {
		t.Fatalf("the device got %+v; want the open of %s", cmd, o.Session.ID)
	}

	// The device registers the session at the relay node, then drops off
	// it without a word: after the grace the relay node closes the
	// session, and the API node tells the device.
	devSigner, err := ssh.NewSignerFromKey(dev.priv)
	if err != nil {
		t.Fatal(err)
	}
	onRelay, err := relayNode.sshLogin("acme/dev1", devSigner)
	if err != nil {
		t.Fatalf("the device's login to the relay node was refused: %v", err)
	}
	if ok, _, err := onRelay.SendRequest("tcpip-forward", true, ssh.Marshal(struct {
		Addr string
		Port uint32
	}{o.Session.ID, 0})); !ok || err != nil {
		t.Fatalf("the relay node refused the device's registration of its session: %v, %v", ok, err)
	}
	testwait.For(t, waitTimeout, "the session to be active", func() bool {
		ses, err := apiNode.Store().GetSession(ctx, o.Session.ID)
		return err == nil && ses.State == store.SessionActive
	})
	left := time.Now()
	onRelay.Close()
	cmd := nextCmd(deviceLeftGrace+5*time.Second, "close")
	if cmd.Type != control.TypeClose || cmd.Session != o.Session.ID {
		t.Fatalf("the device got %+v; want the close of %s", cmd, o.Session.ID)
	}
	t.Logf("the device was told of the close %v after it left the relay node (grace %v)", time.Since(left).Round(time.Millisecond), deviceLeftGrace)
	var ses *store.Session
	// Recorded sent just after it was.
	testwait.For(t, waitTimeout, "the close command to be recorded sent", func() bool {
		ses, err = apiNode.Store().GetSession(ctx, o.Session.ID)
		return err == nil && ses.CloseDue.IsZero()
	})
	if ses.CloseReason != string(control.CloseDeviceDisconnected) {
		t.Errorf("the session closed as %q; want %s", ses.CloseReason, control.CloseDeviceDisconnected)
	}
	select {
	case got := <-mqttDev.got:
		t.Errorf("the device got a second command: %s", got)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestBrokerNode: the embedded broker runs on one node without the api
// role (relay and broker, on a data dir of its own without the signing
// keys), and the API node reaches the devices through it (broker.node),
// logged in with the deployment's node secret and that node's certificate
// pinned: a session it opens reaches the device there. A node of another
// deployment pointed at it is refused, in words.
func TestBrokerNode(t *testing.T) {
	t.Parallel()
	nodes := startNodes(t, 2, func(i int, cfg *Config, started []*node) {
		if i == 0 {
			cfg.Roles = []string{RoleRelay, RoleBroker}
		} else {
			cfg.Roles = []string{RoleAPI}
			cfg.Broker = BrokerConfig{Node: "mqtts://" + started[0].broker.Addr().String()}
		}
	})
	brokerNode, apiNode := nodes[0], nodes[1]
	testwait.For(t, waitTimeout, "the API node to reach the broker node", func() bool { return apiNode.client.Connected() })

	ctx := t.Context()
	fleet := apiNode.newFleet(t, "acme")
	dev := brokerNode.at(t, apiNode.enroll(t, fleet, "dev1"))
	mc, _, err := dev.connect(t)
	if err != nil {
		t.Fatalf("the device's login to the broker node was refused: %v", err)
	}
	cmds := make(chan string, 4)
	mc.AddOnPublishReceived(func(pr paho.PublishReceived) (bool, error) {
		cmds <- pr.Packet.Topic
		return true, nil
	})
	cmdTopic, _ := control.CmdTopic("acme", "dev1")
	if _, err := mc.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: cmdTopic, QoS: 1}}}); err != nil {
		t.Fatal(err)
	}

	d := apiNode.device(t, fleet, "dev1")
	newClusterEngineer(t, apiNode.Store()).open(t, apiNode, d, "ticket 4") // through the broker node
	select {
	case topic := <-cmds:
		if topic != cmdTopic {
			t.Errorf("the device got a command on %s", topic)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the API node's open command did not reach the device on the broker node")
	}

	// Another deployment's node (its own keys) pointed at this broker.
	other := filepath.Join(t.TempDir(), "other")
	cfg := initConfig(t, other)
	cfg.Roles = []string{RoleAPI, RoleRelay}
	cfg.Broker = BrokerConfig{Node: "mqtts://" + brokerNode.broker.Addr().String()}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := Open(ctx, cfg, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	err = srv.Serve(ctx, Listeners{API: listen(t), Relay: listen(t)})
	if err == nil || !strings.Contains(err.Error(), "broker.node") || !strings.Contains(err.Error(), "not this deployment's") {
		t.Errorf("another deployment's node served with this broker: %v; want a refusal naming broker.node and the certificate", err)
	}
}

// TestForgedNotices: anyone who can connect to the database can NOTIFY on
// the deployment's channel. A forged notice that a device was deleted, a
// session closed or changes lost cuts nothing: the node checks the store
// first.
func TestForgedNotices(t *testing.T) {
	t.Parallel()
	nd := startNodes(t, 1, nil)[0]
	ctx := t.Context()
	fleet := nd.newFleet(t, "acme")
	dev := nd.at(t, nd.enroll(t, fleet, "dev1"))
	mc, _, err := dev.connect(t)
	if err != nil {
		t.Fatal(err)
	}
	d := nd.device(t, fleet, "dev1")
	o, cert := newClusterEngineer(t, nd.Store()).open(t, nd, d, "ticket 5")
	eng, err := nd.sshLogin("engineer", cert)
	if err != nil {
		t.Fatal(err)
	}
	testwait.For(t, waitTimeout, "the relay to hold the engineer's session", func() bool {
		return slices.Contains(nd.Server.relay.Sessions(), o.Session.ID)
	})

	// An outsider's connection to the same database.
	db, schema := nd.outsider(t)
	channel := "porthole_changes_" + schema
	for _, forged := range []string{
		`{"n":"node_x","k":"device_deleted","f":"acme","d":"dev1"}`,
		`{"n":"node_x","k":"session_changed","f":"acme","d":"dev1","s":"` + o.Session.ID + `","st":"closed"}`,
		`{"n":"node_x","k":"changes_lost"}`,
		`{"n":"node_x","k":"fleet_deleted","f":"acme"}`,
		`{"n":"node_x","k":"what_is_this"}`,
		`not json`,
	} {
		if _, err := db.ExecContext(ctx, "SELECT pg_notify($1, $2)", channel, forged); err != nil {
			t.Fatal(err)
		}
	}
	// A change from another node after them (the outsider's connection
	// stands in for it): the listener hands notices over in order, so once
	// it is heard the forged ones were handled, and the store checks they
	// started are running; wait for those.
	heard := make(chan struct{})
	var once sync.Once
	nd.Store().Watch(ctx, func(c store.Change) {
		if c.Kind == store.FleetDeleted && c.Fleet == "probe" {
			once.Do(func() { close(heard) })
		}
	})
	if _, err := db.ExecContext(ctx, "SELECT pg_notify($1, $2)", channel, `{"n":"node_y","k":"fleet_deleted","f":"probe"}`); err != nil {
		t.Fatal(err)
	}
	select {
	case <-heard:
	case <-time.After(waitTimeout):
		t.Fatal("the node heard no notice")
	}
	nd.Server.background.Wait()
	select {
	case <-mc.Done():
		t.Error("a forged notice cut the device off the broker")
	default:
	}
	if closedWithin(eng, 200*time.Millisecond) {
		t.Error("a forged notice cut the engineer off the relay")
	}
	if _, _, err := dev.connect(t); err != nil {
		t.Errorf("the device could not log in again after forged notices: %v", err)
	}
}

// TestChangesLostRechecks: while a node's connection that hears changes
// is down, a device is deleted behind its back (no notice reaches it);
// when the connection is back the node checks what it holds, and the
// deleted device is cut off its broker.
func TestChangesLostRechecks(t *testing.T) {
	t.Parallel()
	nd := startNodes(t, 1, nil)[0]
	ctx := t.Context()
	fleet := nd.newFleet(t, "acme")
	dev := nd.at(t, nd.enroll(t, fleet, "dev1"))
	mc, _, err := dev.connect(t)
	if err != nil {
		t.Fatal(err)
	}
	d := nd.device(t, fleet, "dev1")
	db, schema := nd.outsider(t)
	// Behind the store's back: no notice is sent.
	if _, err := db.ExecContext(ctx, "DELETE FROM devices WHERE id = $1", d.ID); err != nil {
		t.Fatal(err)
	}
	var ended int
	if err := db.QueryRowContext(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`,
		pgstore.ListenerName(schema)).Scan(&ended); err != nil || ended == 0 {
		t.Fatalf("ending the node's listening connection: %d ended, %v", ended, err)
	}
	select {
	case <-mc.Done():
	case <-time.After(waitTimeout):
		t.Fatal("the device deleted while the node heard nothing is still connected after the node heard again")
	}
}

// deviceNonces is a device's nonce memory, for a test's verifier.
type deviceNonces struct{ s *control.MemoryNonceStore }

func (n deviceNonces) Remember(nonce string, forgetAfter, now time.Time) (bool, error) {
	return n.s.RememberFor("device", nonce, forgetAfter, now)
}
