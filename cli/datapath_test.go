//go:build linux

package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/porthole/porthole/agentssh"
	"github.com/porthole/porthole/api"
	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/engineerssh"
	"github.com/porthole/porthole/internal/testnet"
	"github.com/porthole/porthole/internal/testwait"
	"github.com/porthole/porthole/relay"
	"github.com/porthole/porthole/session"
	"github.com/porthole/porthole/sessioncert"
	"github.com/porthole/porthole/store"
)

// The data-path tests run on Linux only, as the device's SSH server
// (agentssh) does.

// envTestMain makes the test binary run porthole itself (cli.Run on its
// arguments), so that stock ssh can start it as its ProxyCommand.
const envTestMain = "PORTHOLE_CLI_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envTestMain) == "1" {
		ctx, stop := withSignals(context.Background())
		err := Run(ctx, os.Args[1:], StdIO())
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "porthole:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// pathOpts shape a data path.
type pathOpts struct {
	code           string // the owner's support code the device asks for; "" for none
	allowPorts     []int
	connectTimeout time.Duration
	silent         bool       // the device never answers an open command
	hostKey        ssh.Signer // the device's SSH host key; nil: its certified enrolled key
	recorder       agentssh.Recorder
}

// dataPath is the whole data path in-process: the real API over TLS with
// a real session manager, the real relay on loopback, and a device made
// of the real agentssh server that dials the relay when a verified open
// command reaches it, as the agent does.
type dataPath struct {
	url, fingerprint string
	st               store.Store
	mgr              *session.Manager
	dev              *testDevice
	admin            *apiclient.Client
	env              map[string]string // the administrator, logged in through the environment
	logins           *loginLog         // the device's log lines about logins
}

func startDataPath(t *testing.T, o pathOpts) *dataPath {
	t.Helper()
	ctx := context.Background()
	keys, st := newServerState(t)
	p := &dataPath{st: st}

	// The relay, certified by the host CA for the address it is reached at.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	relayAddr := ln.Addr().String()
	relayCert, err := keys.SignRelayHostCert([]string{"127.0.0.1"}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	relayKey, err := ssh.NewCertSigner(relayCert, keys.RelayHost)
	if err != nil {
		t.Fatal(err)
	}
	dev := &testDevice{t: t, fleet: "acme", name: "dev1", open: map[string]context.CancelFunc{}, ports: map[string][]int{}, relayAddr: relayAddr}
	dev.silent.Store(o.silent)
	_, dev.key, _ = ed25519.GenerateKey(rand.Reader)
	var rl *relay.Relay
	p.mgr, err = session.New(session.Config{
		Store: st, Publish: dev.publish, ControlKey: keys.Control, UserCA: keys.UserCA, RelayAddr: relayAddr,
		ConnectTimeout: o.connectTimeout, SweepInterval: 20 * time.Millisecond,
		Closed: func(id string) { rl.CloseSession(id) },
	})
	if err != nil {
		t.Fatal(err)
	}
	dev.mgr = p.mgr
	rl, err = relay.New(relay.Config{
		HostKey: relayKey,
		UserCA:  keys.UserCA.PublicKey(),
		DeviceKey: func(_ context.Context, fleet, device string) (ed25519.PublicKey, error) {
			if fleet == dev.fleet && device == dev.name {
				return dev.key.Public().(ed25519.PublicKey), nil
			}
			return nil, relay.ErrUnknownDevice
		},
		Session: func(ctx context.Context, id string) (relay.Session, error) {
			s, err := p.mgr.Get(ctx, id)
			if errors.Is(err, store.ErrNotFound) {
				return relay.Session{}, relay.ErrUnknownSession
			} else if err != nil {
				return relay.Session{}, err
			}
			return relay.Session{ID: s.ID, Fleet: s.FleetName, Device: s.DeviceName, Open: s.Open()}, nil
		},
		Activity: p.mgr.Activity,
	})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- rl.Serve(ln) }()
	t.Cleanup(func() {
		rl.Close()
		<-served
		p.mgr.Close()
		dev.stop()
	})

	// The API.
	srv, err := api.New(api.Config{Store: st, Keys: keys, Sessions: p.mgr, RelayAddr: relayAddr})
	if err != nil {
		t.Fatal(err)
	}
	_, uri, err := api.CreateUser(ctx, st, adminEmail, adminPassword, true)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.Listener = tls.NewListener(ts.Listener, &tls.Config{Certificates: []tls.Certificate{keys.TLS}})
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.Start()
	t.Cleanup(ts.Close)
	p.url, p.fingerprint = "https://"+ts.Listener.Addr().String(), keys.TLSFingerprint()
	anon, err := apiclient.New(p.url, apiclient.Options{Fingerprint: p.fingerprint})
	if err != nil {
		t.Fatal(err)
	}
	login, err := anon.Login(ctx, apitype.LoginRequest{Email: adminEmail, Password: adminPassword, TOTP: totpCode(t, totpSecret(t, uri))})
	if err != nil {
		t.Fatal(err)
	}
	p.admin, err = apiclient.New(p.url, apiclient.Options{Fingerprint: p.fingerprint, Token: login.Token})
	if err != nil {
		t.Fatal(err)
	}
	p.env = map[string]string{"XDG_CONFIG_HOME": t.TempDir(), envServer: p.url, envToken: login.Token, envFingerprint: p.fingerprint}

	// The device enrolls, and comes online.
	if _, err := p.admin.CreateFleet(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	tok, err := p.admin.CreateEnrollmentToken(ctx, "acme", apitype.CreateEnrollmentTokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	devSigner, err := ssh.NewSignerFromKey(dev.key)
	if err != nil {
		t.Fatal(err)
	}
	enrolled, err := anon.Enroll(ctx, apitype.EnrollRequest{Token: tok.Token, Name: "dev1",
		PublicKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(devSigner.PublicKey())))})
	if err != nil {
		t.Fatal(err)
	}
	dev.id = enrolled.Device.ID
	dev.hostCA = parseKey(t, enrolled.HostCA)
	verifyKey, err := control.ParseControlKey(enrolled.ControlKey)
	if err != nil {
		t.Fatal(err)
	}
	if dev.verifier, err = control.NewVerifier(verifyKey, "acme", "dev1", &memNonces{seen: map[string]bool{}}); err != nil {
		t.Fatal(err)
	}
	hostKey := o.hostKey
	if hostKey == nil {
		hostCert, ok := parseKey(t, enrolled.HostCert).(*ssh.Certificate)
		if !ok {
			t.Fatal("the host certificate from enrollment is not a certificate")
		}
		if hostKey, err = ssh.NewCertSigner(hostCert, devSigner); err != nil {
			t.Fatal(err)
		}
	}
	cfg := agentssh.Config{
		HostKey: hostKey, UserCA: parseKey(t, enrolled.UserCA),
		Fleet: "acme", Device: "dev1", DeviceID: dev.id,
		SessionOpen: dev.isOpen, SessionPorts: dev.sessionPorts, AllowPorts: o.allowPorts,
		Recorder: o.recorder,
	}
	p.logins = &loginLog{}
	cfg.Logger = slog.New(p.logins)
	if o.code != "" {
		cfg.SecondFactor = func(string) (string, func(string) error) {
			return "Support code for dev1: ", func(answer string) error {
				if subtle.ConstantTimeCompare([]byte(answer), []byte(o.code)) != 1 {
					return errors.New("wrong support code")
				}
				return nil
			}
		}
	}
	if dev.srv, err = agentssh.New(cfg); err != nil {
		t.Fatal(err)
	}
	p.dev = dev
	p.setOnline(t, true)
	return p
}

func (p *dataPath) setOnline(t *testing.T, online bool) {
	t.Helper()
	if err := p.st.SetDevicePresence(context.Background(), store.DevicePresence{DeviceID: p.dev.id, Online: online, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

// sessions are the device's sessions, newest first.
func (p *dataPath) sessions(t *testing.T) []apitype.Session {
	t.Helper()
	ss, err := p.admin.Sessions(context.Background(), apiclient.SessionFilter{Fleet: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

// allClosedBy checks that every session is closed, the last for reason.
func (p *dataPath) allClosedBy(t *testing.T, reason string) {
	t.Helper()
	ss := p.sessions(t)
	if len(ss) == 0 {
		t.Fatal("no session was opened")
	}
	for _, s := range ss {
		if s.State != apitype.SessionClosed {
			t.Errorf("session %s is %s after the command ended; want closed", s.ID, s.State)
		}
	}
	if ss[0].CloseReason != reason {
		t.Errorf("the last session closed for %q; want %q", ss[0].CloseReason, reason)
	}
}

func parseKey(t *testing.T, line string) ssh.PublicKey {
	t.Helper()
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		t.Fatalf("parsing %q: %v", line, err)
	}
	return k
}

type memNonces struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (n *memNonces) Remember(nonce string, _, _ time.Time) (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	fresh := !n.seen[nonce]
	n.seen[nonce] = true
	return fresh, nil
}

// testDevice is the agent's side of sessions: it verifies the commands
// the server publishes, dials the relay with its enrolled key, registers
// the session and serves each forwarded channel with agentssh.
type testDevice struct {
	t           *testing.T
	fleet, name string
	id          string
	key         ed25519.PrivateKey
	hostCA      ssh.PublicKey
	relayAddr   string
	verifier    *control.Verifier
	srv         *agentssh.Server
	mgr         *session.Manager
	silent      atomic.Bool

	mu    sync.Mutex
	open  map[string]context.CancelFunc
	ports map[string][]int // the open command's ports, by session
	wg    sync.WaitGroup
}

func (d *testDevice) isOpen(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.open[id] != nil
}

func (d *testDevice) sessionPorts(id string) []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ports[id]
}

// publish is the control channel: the server's command reaches the device.
func (d *testDevice) publish(_ string, payload []byte) error {
	cmd, err := d.verifier.Verify(payload, time.Now())
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch cmd.Type {
	case control.TypeOpen:
		if d.silent.Load() {
			return nil
		}
		ctx, cancel := context.WithCancel(context.Background())
		d.open[cmd.Session] = cancel
		d.ports[cmd.Session] = cmd.Ports
		d.wg.Go(func() { d.serve(ctx, cmd) })
	case control.TypeClose:
		if cancel := d.open[cmd.Session]; cancel != nil {
			cancel()
			delete(d.open, cmd.Session)
			delete(d.ports, cmd.Session)
		}
	}
	return nil
}

func (d *testDevice) stop() {
	d.mu.Lock()
	for id, cancel := range d.open {
		cancel()
		delete(d.open, id)
	}
	d.mu.Unlock()
	d.wg.Wait()
}

func (d *testDevice) serve(ctx context.Context, cmd *control.Command) {
	report := func(kind, reason string) {
		d.mgr.HandleState(d.fleet, d.name, control.State{Kind: kind, Session: cmd.Session, Reason: reason})
	}
	signer, _ := ssh.NewSignerFromKey(d.key)
	nc, err := net.Dial("tcp", cmd.Relay)
	if err != nil {
		report(control.StateTunnelDown, "relay_unreachable")
		return
	}
	conn, chans, reqs, err := ssh.NewClientConn(nc, cmd.Relay, &ssh.ClientConfig{
		User:            d.fleet + "/" + d.name,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: engineerssh.HostCertCallback(d.hostCA, []string{"127.0.0.1"}, "the relay"),
	})
	if err != nil {
		nc.Close()
		report(control.StateTunnelDown, "relay_refused")
		return
	}
	defer conn.Close()
	go ssh.DiscardRequests(reqs)
	ok, _, err := conn.SendRequest("tcpip-forward", true, ssh.Marshal(struct {
		Addr string
		Port uint32
	}{cmd.Session, 0}))
	if err != nil || !ok {
		report(control.StateTunnelDown, "relay_refused")
		return
	}
	report(control.StateTunnelUp, "")
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var wg sync.WaitGroup
	for nch := range chans {
		if nch.ChannelType() != "forwarded-tcpip" {
			nch.Reject(ssh.Prohibited, "no")
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			continue
		}
		go ssh.DiscardRequests(creqs)
		wg.Go(func() { d.srv.ServeConn(ctx, agentssh.ChannelConn(ch, nil, nil), cmd.Session) })
	}
	wg.Wait()
	// As the agent does: the server's close is answered "closed", and the
	// server waits for that word before it records the engineer's close.
	if ctx.Err() != nil {
		report(control.StateTunnelDown, "closed")
	} else {
		report(control.StateTunnelDown, "relay_disconnected")
	}
}

// running is porthole running in the background.
type running struct {
	stdout, stderr *testnet.Buffer
	done           chan error
	cancel         context.CancelFunc
}

func startCLI(t *testing.T, env map[string]string, stdin io.Reader, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{stdout: &testnet.Buffer{}, stderr: &testnet.Buffer{}, done: make(chan error, 1), cancel: cancel}
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	go func() {
		r.done <- Run(ctx, args, IO{In: stdin, Out: r.stdout, Err: r.stderr, Getenv: func(k string) string { return env[k] }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Errorf("porthole %s did not end when cancelled", strings.Join(args, " "))
		}
	})
	return r
}

// wait waits for porthole to end, and returns its error.
func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("porthole did not end\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
		return nil
	}
}

func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// TestDataPath runs the commands through the real API, session manager,
// relay and device SSH server.
func TestDataPath(t *testing.T) {
	t.Parallel()
	echo := testnet.Echo(t).Port
	p := startDataPath(t, pathOpts{allowPorts: []int{echo}})

	t.Run("ssh exit status and streams", func(t *testing.T) {
		r := runCLI(t, p.env, "", "ssh", "dev1", "--", "echo out; echo err >&2; exit 3")
		var exit *ExitError
		if !errors.As(r.err, &exit) || exit.Code != 3 || exit.Device != "dev1" {
			t.Fatalf("ssh = %v; want an ExitError with code 3\nstderr: %s", r.err, r.stderr)
		}
		if r.stdout != "out\n" {
			t.Errorf("stdout = %q; want only the command's output", r.stdout)
		}
		if !strings.Contains(r.stderr, "err\n") || !strings.Contains(r.stderr, "asking dev1 to connect…") {
			t.Errorf("stderr = %q; want the progress line and the command's stderr", r.stderr)
		}
		p.allClosedBy(t, "engineer_closed")
	})

	t.Run("ssh passes stdin and the exit signal", func(t *testing.T) {
		r := mustRun(t, p.env, "hello\nworld\n", "ssh", "acme/dev1", "--reason", "ticket 7", "--", "cat")
		if r.stdout != "hello\nworld\n" {
			t.Errorf("cat through ssh gave %q", r.stdout)
		}
		if s := p.sessions(t)[0]; s.Reason != "ticket 7" {
			t.Errorf("the session's reason is %q; want the one given with --reason", s.Reason)
		}
		r = runCLI(t, p.env, "", "ssh", "dev1", "--fleet", "acme", "--", "kill -TERM $$")
		var exit *ExitError
		if !errors.As(r.err, &exit) || exit.Code != 128+15 || exit.Signal != "TERM" {
			t.Errorf("a command killed by SIGTERM: %v; want exit code 143 and signal TERM", r.err)
		}
	})

	t.Run("ssh names the device plainly", func(t *testing.T) {
		for _, tt := range []struct{ arg, want string }{
			{"dev2", "no device dev2 in your fleets"},
			{"dev1.beta", `no fleet "beta"`},
			{"Dev1", "not a device"},
		} {
			r := runCLI(t, p.env, "", "ssh", tt.arg, "--", "true")
			if !strings.Contains(errText(r.err), tt.want) {
				t.Errorf("ssh %s: %v; want %q", tt.arg, r.err, tt.want)
			}
		}
	})

	t.Run("scp", func(t *testing.T) {
		local, remote := t.TempDir(), t.TempDir() // the device is this machine
		data := bytes.Repeat([]byte("porthole "), 100_000)
		writeFile(t, filepath.Join(local, "big.bin"), data, 0o640)
		r := mustRun(t, p.env, "", "scp", filepath.Join(local, "big.bin"), "dev1:"+remote)
		if got, err := os.ReadFile(filepath.Join(remote, "big.bin")); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("upload: %v, %d bytes; want %d", err, len(got), len(data))
		}
		if fi, _ := os.Stat(filepath.Join(remote, "big.bin")); fi.Mode().Perm() != 0o640 {
			t.Errorf("uploaded mode %v; want 0640", fi.Mode().Perm())
		}
		if r.stdout != "" || !strings.Contains(r.stderr, "copied 1 file (878.9 KiB) to dev1") {
			t.Errorf("scp printed stdout %q, stderr %q", r.stdout, r.stderr)
		}

		back := t.TempDir()
		mustRun(t, p.env, "", "scp", "dev1.acme:"+filepath.Join(remote, "big.bin"), filepath.Join(back, "copy.bin"))
		if got, _ := os.ReadFile(filepath.Join(back, "copy.bin")); !bytes.Equal(got, data) {
			t.Fatalf("download: %d bytes; want %d", len(got), len(data))
		}

		// A tree with a symlink, there and back.
		tree := filepath.Join(local, "tree")
		writeFile(t, filepath.Join(tree, "a.txt"), []byte("a"), 0o644)
		writeFile(t, filepath.Join(tree, "sub", "b.txt"), []byte("bb"), 0o600)
		writeFile(t, filepath.Join(tree, "sub", "empty"), nil, 0o644)
		if err := os.Symlink("a.txt", filepath.Join(tree, "link")); err != nil {
			t.Fatal(err)
		}
		if r := runCLI(t, p.env, "", "scp", tree, "dev1:"+remote); !strings.Contains(errText(r.err), "is a directory: copy it with -r") {
			t.Errorf("scp of a directory without -r: %v", r.err)
		}
		mustRun(t, p.env, "", "scp", "-r", tree, "dev1:"+remote)
		mustRun(t, p.env, "", "scp", "-r", "dev1:"+filepath.Join(remote, "tree"), filepath.Join(back, "tree2"))
		for name, want := range map[string]string{"a.txt": "a", "sub/b.txt": "bb", "sub/empty": "", "link": "a"} {
			for _, root := range []string{filepath.Join(remote, "tree"), filepath.Join(back, "tree2")} {
				if got, err := os.ReadFile(filepath.Join(root, name)); err != nil || string(got) != want {
					t.Errorf("%s/%s = %q, %v; want %q", root, name, got, err, want)
				}
			}
		}

		// Several files into a directory.
		writeFile(t, filepath.Join(local, "c1"), []byte("1"), 0o644)
		writeFile(t, filepath.Join(local, "c2"), []byte("2"), 0o644)
		mustRun(t, p.env, "", "scp", filepath.Join(local, "c1"), filepath.Join(local, "c2"), "dev1:"+remote)
		if got, _ := os.ReadFile(filepath.Join(remote, "c2")); string(got) != "2" {
			t.Errorf("second of two files: %q", got)
		}
	})

	t.Run("scp says what is missing", func(t *testing.T) {
		remote := t.TempDir()
		before := len(p.sessions(t))
		r := runCLI(t, p.env, "", "scp", "no-such-file", "dev1:"+remote)
		if errText(r.err) != "no such file or directory: no-such-file" {
			t.Errorf("scp of a missing local file: %v", r.err)
		}
		if n := len(p.sessions(t)); n != before {
			t.Errorf("a missing local file still opened a session (%d sessions, %d before)", n, before)
		}
		missing := filepath.Join(remote, "nope")
		r = runCLI(t, p.env, "", "scp", "dev1:"+missing, t.TempDir())
		if errText(r.err) != "no such file or directory: dev1:"+missing {
			t.Errorf("scp of a missing remote file: %v", r.err)
		}
		local := filepath.Join(t.TempDir(), "f")
		writeFile(t, local, []byte("x"), 0o644)
		r = runCLI(t, p.env, "", "scp", local, "dev1:"+filepath.Join(remote, "no", "dir", "f"))
		if want := "there is no directory " + filepath.Join(remote, "no", "dir"); !strings.Contains(errText(r.err), want) {
			t.Errorf("scp into a missing directory: %v; want %q", r.err, want)
		}
	})

	t.Run("forward", func(t *testing.T) {
		refused := testnet.Echo(t).Port // a port the device does not allow
		r := startCLI(t, p.env, nil, "forward", "dev1", fmt.Sprintf("0:%d", echo), fmt.Sprintf("127.0.0.1:0:%d", refused))
		var addrs []string
		testwait.For(t, 10*time.Second, "the forwarding lines", func() bool {
			addrs = forwardAddrs(r.stdout.String())
			return len(addrs) == 2
		})
		if !strings.Contains(r.stdout.String(), fmt.Sprintf(" → dev1:%d\n", echo)) {
			t.Errorf("stdout: %q", r.stdout)
		}
		for range 2 { // two connections, one after the other
			c, err := net.Dial("tcp", addrs[0])
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprint(c, "ping")
			c.(*net.TCPConn).CloseWrite()
			got, _ := io.ReadAll(c)
			c.Close()
			if string(got) != "ping" {
				t.Errorf("through the forward: %q; want ping", got)
			}
		}
		c, err := net.Dial("tcp", addrs[1])
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(c)
		c.Close()
		if len(got) != 0 {
			t.Errorf("a refused port answered %q", got)
		}
		testwait.For(t, 10*time.Second, "the refusal on stderr", func() bool {
			return strings.Contains(r.stderr.String(), fmt.Sprintf("dev1 refused a connection to its port %d", refused))
		})
		ss := p.sessions(t)
		if ss[0].State != apitype.SessionActive || len(ss[0].Ports) != 2 {
			t.Errorf("the forward's session: %+v; want active, with both ports asked for", ss[0])
		}
		r.cancel() // Ctrl-C
		if err := r.wait(t); err != nil {
			t.Errorf("forward after Ctrl-C: %v; want nil", err)
		}
		p.allClosedBy(t, "engineer_closed")
	})

	t.Run("proxy", func(t *testing.T) {
		socket := filepath.Join(t.TempDir(), "dev1.porthole.sock")
		// Two proxies for one host name at once: the second waits for the
		// socket until the first one's client has logged in.
		a := startProxy(t, p, socket)
		b := startProxy(t, p, socket)
		keys, err := p.admin.CAKeys(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for _, x := range []*proxyRun{a, b} {
			wg.Go(func() {
				out, err := x.dialProxy(parseKey(t, keys.HostCA), socket, "echo through the proxy")
				if err != nil || out != "through the proxy\n" {
					t.Errorf("a command through porthole proxy: %q, %v\nstderr: %s", out, err, x.r.stderr)
				}
			})
		}
		wg.Wait()
		testwait.For(t, 10*time.Second, "the agent socket to go", func() bool {
			_, err := os.Stat(socket)
			return errors.Is(err, os.ErrNotExist)
		})
		for _, x := range []*proxyRun{a, b} {
			x.hangUp()
			if err := x.r.wait(t); err != nil {
				t.Errorf("proxy after ssh hung up: %v", err)
			}
		}
		p.allClosedBy(t, "engineer_closed")
	})

	t.Run("sessions and close", func(t *testing.T) {
		var ss []apitype.Session
		jsonOut(t, mustRun(t, p.env, "", "sessions", "--json"), &ss)
		if len(ss) < 5 || ss[0].Device != "dev1" || ss[0].State != apitype.SessionClosed {
			t.Errorf("sessions --json: %+v", ss)
		}
		r := mustRun(t, p.env, "", "sessions", "--device", "dev1")
		if !strings.Contains(r.stdout, "dev1.acme") || !strings.Contains(r.stdout, "engineer_closed") {
			t.Errorf("sessions table:\n%s", r.stdout)
		}
		r = mustRun(t, p.env, "", "sessions", "--open")
		if r.stdout != "" || !strings.Contains(r.stderr, "no sessions") {
			t.Errorf("sessions --open with none open: stdout %q, stderr %q", r.stdout, r.stderr)
		}

		// A session left open (here by a porthole ssh that waits) is
		// closed by porthole close, and the device hears of it.
		w := startCLI(t, p.env, nil, "ssh", "dev1", "--", "echo started; sleep 30")
		testwait.For(t, 10*time.Second, "the command to start", func() bool { return w.stdout.String() == "started\n" })
		id := p.sessions(t)[0].ID
		r = mustRun(t, p.env, "", "close", id)
		if !strings.Contains(r.stderr, "closed session "+id+" on dev1") {
			t.Errorf("close said %q", r.stderr)
		}
		err := w.wait(t)
		if !strings.Contains(errText(err), "the session on dev1 was closed") {
			t.Errorf("ssh whose session was closed under it: %v; want it to say so", err)
		}
		r = mustRun(t, p.env, "", "close", id)
		if !strings.Contains(r.stderr, "already closed") {
			t.Errorf("closing again said %q", r.stderr)
		}
	})

	t.Run("offline", func(t *testing.T) {
		p.setOnline(t, false)
		defer p.setOnline(t, true)
		r := runCLI(t, p.env, "", "ssh", "dev1", "--", "true")
		if !strings.Contains(errText(r.err), "dev1 is offline (last seen") {
			t.Errorf("ssh to an offline device: %v", r.err)
		}
	})
}

// TestDataPathCommandRefused: the session's requests go without waiting
// for each reply, yet a command the device refuses is said in words: the
// device's own, then porthole's.
func TestDataPathCommandRefused(t *testing.T) {
	t.Parallel()
	p := startDataPath(t, pathOpts{recorder: fullRecorder{}})
	for _, tt := range []struct {
		args          []string
		want, devSays string
	}{
		{[]string{"--", "echo never"}, "dev1 refused to run the command", "porthole: refused to start the command: the recording's disk is full"},
		{nil, "dev1 refused to start a shell", "porthole: refused to start a shell: the recording's disk is full"},
	} {
		r := runCLI(t, p.env, "", append([]string{"ssh", "dev1"}, tt.args...)...)
		if errText(r.err) != tt.want {
			t.Errorf("ssh %q to a device that refuses it: %v; want %q", tt.args, r.err, tt.want)
		}
		if !strings.Contains(r.stderr, tt.devSays) {
			t.Errorf("ssh %q: stderr %q; want the device's words %q", tt.args, r.stderr, tt.devSays)
		}
		if r.stdout != "" {
			t.Errorf("ssh %q: stdout %q; want nothing", tt.args, r.stdout)
		}
	}
	p.allClosedBy(t, "engineer_closed")
}

// fullRecorder is a device's recorder that can record nothing more.
type fullRecorder struct{ agentssh.Recorder }

func (fullRecorder) Connected(string, sessioncert.Claims) {}
func (fullRecorder) Disconnected(string, string)          {}
func (fullRecorder) Full(string) string                   { return "the recording's disk is full" }

// TestDataPathSupportCode: a device in manual consent asks for its owner's
// code by keyboard-interactive.
func TestDataPathSupportCode(t *testing.T) {
	t.Parallel()
	p := startDataPath(t, pathOpts{code: "K4M2-9QXD-TT7P"})
	r := runCLI(t, p.env, "", "ssh", "dev1", "--code", "K4M2-9QXD-TT7P", "--", "echo in")
	if r.err != nil || r.stdout != "in\n" {
		t.Errorf("with the right code: %q, %v\n%s", r.stdout, r.err, r.stderr)
	}
	r = runCLI(t, p.env, "", "ssh", "dev1", "--code", "AAAA-BBBB-CCCC", "--", "echo in")
	if errText(r.err) != "dev1 refused the login: wrong support code" || r.stdout != "" {
		t.Errorf("with a wrong code: %q, %v", r.stdout, r.err)
	}
	r = runCLI(t, p.env, "", "ssh", "dev1", "--", "echo in")
	if errText(r.err) != "dev1 asks for its owner's support code: give it with --code CODE" {
		t.Errorf("without a code or a terminal: %v", r.err)
	}
	p.allClosedBy(t, "engineer_closed")
}

// TestDataPathUnreachable: a device that never connects, and Ctrl-C while
// waiting for it.
func TestDataPathUnreachable(t *testing.T) {
	t.Parallel()
	p := startDataPath(t, pathOpts{silent: true, connectTimeout: time.Second})
	r := runCLI(t, p.env, "", "ssh", "dev1", "--", "true")
	if errText(r.err) != "dev1 did not answer within 1 s: it may have just gone offline" {
		t.Errorf("ssh to a device that does not answer: %v", r.err)
	}
	p.allClosedBy(t, "device_unreachable")

	p2 := startDataPath(t, pathOpts{silent: true})
	w := startCLI(t, p2.env, nil, "ssh", "dev1")
	testwait.For(t, 10*time.Second, "a session asked for", func() bool { return len(p2.sessions(t)) == 1 })
	w.cancel()
	if err := w.wait(t); errText(err) != "interrupted" {
		t.Errorf("Ctrl-C while waiting: %v; want interrupted", err)
	}
	p2.allClosedBy(t, "engineer_closed")
}

// TestDataPathImpostor: a device whose host key is not certified by the
// host CA is refused before any credential or code reaches it.
func TestDataPathImpostor(t *testing.T) {
	t.Parallel()
	otherCA := newTestSigner(t)
	key := newTestSigner(t)
	cert := &ssh.Certificate{Key: key.PublicKey(), CertType: ssh.HostCert, KeyId: "impostor",
		ValidPrincipals: []string{"dev1.porthole", "dev1.acme.porthole"}, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, otherCA); err != nil {
		t.Fatal(err)
	}
	impostor, err := ssh.NewCertSigner(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	for name, hostKey := range map[string]ssh.Signer{"other CA": impostor, "plain key": key} {
		p := startDataPath(t, pathOpts{hostKey: hostKey, code: "K4M2-9QXD-TT7P"})
		r := runCLI(t, p.env, "", "ssh", "dev1", "--code", "K4M2-9QXD-TT7P", "--", "echo in")
		if !strings.Contains(errText(r.err), "refusing to connect") || r.stdout != "" {
			t.Errorf("%s: %q, %v; want refused", name, r.stdout, r.err)
		}
	}
}

func writeFile(t *testing.T, name string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(name, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

// forwardAddrs reads the local addresses of "forwarding ADDR → ..." lines.
func forwardAddrs(out string) []string {
	var addrs []string
	for line := range strings.Lines(out) {
		if rest, ok := strings.CutPrefix(line, "forwarding "); ok {
			addrs = append(addrs, strings.Fields(rest)[0])
		}
	}
	return addrs
}

// proxyRun is porthole proxy with its standard input and output on pipes,
// as ssh runs its ProxyCommand.
type proxyRun struct {
	r     *running
	toIn  *io.PipeWriter // what ssh writes
	inR   *io.PipeReader
	outR  *io.PipeReader // what ssh reads
	outW  *io.PipeWriter
	hangs sync.Once
}

func startProxy(t *testing.T, p *dataPath, socket string) *proxyRun {
	t.Helper()
	x := &proxyRun{}
	x.inR, x.toIn = io.Pipe()
	x.outR, x.outW = io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	x.r = &running{stdout: &testnet.Buffer{}, stderr: &testnet.Buffer{}, done: make(chan error, 1), cancel: cancel}
	go func() {
		err := Run(ctx, []string{"proxy", "--agent-socket", socket, "dev1.porthole"},
			IO{In: x.inR, Out: x.outW, Err: x.r.stderr, Getenv: func(k string) string { return p.env[k] }})
		x.outW.Close()
		x.r.done <- err
	}()
	t.Cleanup(func() {
		x.hangUp()
		cancel()
		select {
		case <-x.r.done:
		case <-time.After(10 * time.Second):
			t.Error("porthole proxy did not end")
		}
	})
	return x
}

// hangUp is ssh exiting: our side of the pipes closes.
func (x *proxyRun) hangUp() {
	x.hangs.Do(func() {
		x.toIn.Close()
		x.outR.Close()
	})
}

// pipeConn is the proxy's pipes seen from ssh's side, as a net.Conn.
type pipeConn struct{ x *proxyRun }

func (c pipeConn) Read(b []byte) (int, error)       { return c.x.outR.Read(b) }
func (c pipeConn) Write(b []byte) (int, error)      { return c.x.toIn.Write(b) }
func (c pipeConn) Close() error                     { c.x.hangUp(); return nil }
func (c pipeConn) LocalAddr() net.Addr              { return &net.UnixAddr{Name: "ssh", Net: "unix"} }
func (c pipeConn) RemoteAddr() net.Addr             { return &net.UnixAddr{Name: "proxy", Net: "unix"} }
func (c pipeConn) SetDeadline(time.Time) error      { return nil }
func (c pipeConn) SetReadDeadline(time.Time) error  { return nil }
func (c pipeConn) SetWriteDeadline(time.Time) error { return nil }

// dialProxy is an SSH client doing what OpenSSH does with the block of
// ssh-config: SSH over the proxy's pipes, the device's host certificate
// checked against the host CA for the name typed, and the keys asked of
// the agent on the socket only when it comes to authenticating. It runs
// cmd and returns its output.
func (x *proxyRun) dialProxy(hostCA ssh.PublicKey, socket, cmd string) (string, error) {
	var agentConn net.Conn
	defer func() {
		if agentConn != nil {
			agentConn.Close()
		}
	}()
	cfg := &ssh.ClientConfig{
		User: "engineer",
		Auth: []ssh.AuthMethod{ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			c, err := net.Dial("unix", socket)
			if err != nil {
				return nil, err
			}
			agentConn = c
			return agent.NewClient(c).Signers()
		})},
		HostKeyCallback: engineerssh.HostCertCallback(hostCA, []string{"dev1.porthole"}, "dev1"),
	}
	conn, chans, reqs, err := ssh.NewClientConn(pipeConn{x}, "dev1.porthole:22", cfg)
	if err != nil {
		return "", fmt.Errorf("SSH through porthole proxy: %w", err)
	}
	c := ssh.NewClient(conn, chans, reqs)
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	out, err := s.Output(cmd)
	return string(out), err
}
