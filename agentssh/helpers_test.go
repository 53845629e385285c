package agentssh

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/sessioncert"
	"github.com/porthole/porthole/sshalgo"
)

// Test binary modes: the test binary doubles as the agent's hidden
// subcommands, so tests run them as another user.
const (
	modeSFTPServer = "agentssh-test-sftp-server"
	modeNewRunAs   = "agentssh-test-new-run-as"
)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case modeSFTPServer:
			if err := ServeSFTP(os.Stdin, os.Stdout); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			os.Exit(0)
		case modeNewRunAs:
			// New as a user who is not root, asked to run shells as
			// os.Args[2]: prints New's error.
			cfg := baseConfig(newSigner(nil), newSigner(nil).PublicKey())
			cfg.RunAs = os.Args[2]
			cfg.SFTPCommand = []string{"/bin/true"}
			_, err := New(cfg)
			fmt.Print(err)
			os.Exit(0)
		}
	}
	dir, err := ownHome()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// ownHome points passwdFile at a copy of /etc/passwd in which the tests'
// user has an empty home directory, so that the machine's own dotfiles
// (a root ~/.bashrc that bash reads for commands, as under sshd) cannot
// slow or change the tests' shells. It returns the directory to remove.
func ownHome() (string, error) {
	dir, err := os.MkdirTemp("", "agentssh-home-")
	if err != nil {
		return "", err
	}
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		return dir, err
	}
	os.Chmod(dir, 0o755) // nobody's processes may look up paths through it
	if err := writePasswd(filepath.Join(dir, "passwd"), home, ""); err != nil {
		return dir, err
	}
	passwdFile = filepath.Join(dir, "passwd")
	return dir, nil
}

// writePasswd writes a copy of /etc/passwd to name in which the user this
// process runs as has home, and shell when it is not "".
func writePasswd(name, home, shell string) error {
	data, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return err
	}
	uid := strconv.Itoa(os.Getuid())
	lines := strings.Split(string(data), "\n")
	for i, line := range lines {
		f := strings.Split(line, ":")
		if len(f) == 7 && f[2] == uid {
			f[5] = home
			if shell != "" {
				f[6] = shell
			}
			lines[i] = strings.Join(f, ":")
		}
	}
	return os.WriteFile(name, []byte(strings.Join(lines, "\n")), 0o644)
}

var (
	binOnce sync.Once
	binDir  string
	binPath string
)

// testBinary returns a copy of the test binary that every user can run
// (go test's own lies in a directory only root can enter).
func testBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		self, err := os.Executable()
		if err != nil {
			return
		}
		dir, err := os.MkdirTemp("", "agentssh-bin-")
		if err != nil {
			return
		}
		os.Chmod(dir, 0o755)
		data, err := os.ReadFile(self)
		if err != nil {
			return
		}
		p := filepath.Join(dir, "agentssh.test")
		if os.WriteFile(p, data, 0o755) != nil {
			return
		}
		binDir, binPath = dir, p
	})
	if binPath == "" {
		t.Fatal("cannot copy the test binary")
	}
	return binPath
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run processes as nobody")
	}
}

func newSigner(t testing.TB) ssh.Signer {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		panic(err)
	}
	return s
}

// baseConfig is a device acme/dev1 whose every session is open.
func baseConfig(hostKey ssh.Signer, userCA ssh.PublicKey) Config {
	return Config{
		HostKey: hostKey, UserCA: userCA,
		Fleet: "acme", Device: "dev1", DeviceID: "dev_1",
		SessionOpen: func(string) bool { return true },
	}
}

const testSession = "ses_1"

// env is a device with its CAs and an engineer's key.
type env struct {
	userCA, hostCA, engineer ssh.Signer
	engineerPriv             ed25519.PrivateKey
	hostKey                  ssh.Signer // with its host certificate
	rec                      *testRecorder
	activity                 atomic.Int64
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{userCA: newSigner(t), hostCA: newSigner(t), rec: &testRecorder{}}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e.engineerPriv = priv
	e.engineer, _ = ssh.NewSignerFromKey(priv)
	device := newSigner(t)
	hc := &ssh.Certificate{
		Key: device.PublicKey(), CertType: ssh.HostCert, KeyId: "dev1",
		ValidPrincipals: []string{"dev1.acme.porthole", "dev1.porthole"},
		ValidBefore:     ssh.CertTimeInfinity,
	}
	if err := hc.SignCert(rand.Reader, e.hostCA); err != nil {
		t.Fatal(err)
	}
	e.hostKey, err = ssh.NewCertSigner(hc, device)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// config is the device's Config, with the env's recorder and activity.
func (e *env) config() Config {
	c := baseConfig(e.hostKey, e.userCA.PublicKey())
	c.Recorder = e.rec
	c.Activity = func(string) { e.activity.Add(1) }
	c.Logger = nil
	return c
}

func (e *env) server(t testing.TB, edit func(*Config)) *Server {
	t.Helper()
	c := e.config()
	if edit != nil {
		edit(&c)
	}
	if c.SessionPorts == nil {
		// Unless a test says otherwise, the session asked for every port
		// the owner allows.
		c.SessionPorts = func(string) []int { return c.AllowPorts }
	}
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims() sessioncert.Claims {
	now := time.Now()
	return sessioncert.Claims{Session: testSession, Fleet: "acme", Device: "dev1", DeviceID: "dev_1",
		User: "ann@example.com", ValidAfter: now.Add(-sessioncert.Margin), ValidBefore: now.Add(time.Hour)}
}

// cert is the engineer's key with a session certificate from ca for c.
func (e *env) cert(t testing.TB, ca ssh.Signer, c sessioncert.Claims) *ssh.Certificate {
	t.Helper()
	cert, err := sessioncert.Sign(ca, e.engineer.PublicKey(), c)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func (e *env) certAuth(t testing.TB) ssh.AuthMethod {
	t.Helper()
	cs, err := ssh.NewCertSigner(e.cert(t, e.userCA, claims()), e.engineer)
	if err != nil {
		t.Fatal(err)
	}
	return ssh.PublicKeys(cs)
}

// clientConfig checks the device's host certificate as porthole's clients
// do, against the host CA.
func (e *env) clientConfig(auth ...ssh.AuthMethod) *ssh.ClientConfig {
	checker := &ssh.CertChecker{
		IsHostAuthority: func(auth ssh.PublicKey, _ string) bool {
			return bytes.Equal(auth.Marshal(), e.hostCA.PublicKey().Marshal())
		},
	}
	return &ssh.ClientConfig{
		Config: sshalgo.Client(), // as porthole's CLI sets it
		User:   "laptop-user", Auth: auth, HostKeyCallback: checker.CheckHostKey,
		Timeout: 10 * time.Second,
	}
}

// served is one ServeConn running in the background.
type served struct {
	cancel context.CancelCauseFunc
	done   chan error
}

// wait returns ServeConn's error, failing the test if it does not return.
func (s *served) wait(t testing.TB) error {
	t.Helper()
	select {
	case err := <-s.done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("ServeConn did not return")
		return nil
	}
}

// listen accepts one loopback TCP connection and serves it for session.
func listen(t testing.TB, srv *Server, session string) (addr string, s *served) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	s = &served{cancel: cancel, done: make(chan error, 1)}
	go func() {
		nc, err := ln.Accept()
		ln.Close()
		if err != nil {
			s.done <- err
			return
		}
		s.done <- srv.ServeConn(ctx, nc, session)
	}()
	t.Cleanup(func() { cancel(nil); ln.Close() })
	return ln.Addr().String(), s
}

// dial serves one connection for session and logs in to it.
func (e *env) dial(t testing.TB, srv *Server, session string, auth ...ssh.AuthMethod) (*ssh.Client, *served, error) {
	t.Helper()
	return e.dialConfig(t, srv, session, e.clientConfig(auth...))
}

func (e *env) dialConfig(t testing.TB, srv *Server, session string, cc *ssh.ClientConfig) (*ssh.Client, *served, error) {
	t.Helper()
	c, chans, reqs, s, err := dialConn(t, srv, session, cc)
	if err != nil {
		return nil, s, err
	}
	client := ssh.NewClient(c, chans, reqs)
	t.Cleanup(func() { client.Close() })
	return client, s, nil
}

// dialConn serves one connection for session and logs in to it with cc,
// leaving the channels and requests the server sends to the caller.
func dialConn(t testing.TB, srv *Server, session string, cc *ssh.ClientConfig) (ssh.Conn, <-chan ssh.NewChannel, <-chan *ssh.Request, *served, error) {
	t.Helper()
	addr, s := listen(t, srv, session)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, chans, reqs, err := ssh.NewClientConn(nc, "dev1.porthole:22", cc)
	if err != nil {
		nc.Close()
		return nil, nil, nil, s, err
	}
	t.Cleanup(func() { c.Close() })
	return c, chans, reqs, s, nil
}

// login is dial that must succeed.
func (e *env) login(t testing.TB, srv *Server) (*ssh.Client, *served) {
	t.Helper()
	c, s, err := e.dial(t, srv, testSession, e.certAuth(t))
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	return c, s
}

// run runs command in a new session and returns stdout, stderr and the
// error of Wait.
func run(t *testing.T, c *ssh.Client, command string, stdin io.Reader) (string, string, error) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out, errOut bytes.Buffer
	s.Stdout, s.Stderr, s.Stdin = &out, &errOut, stdin
	err = s.Run(command)
	return out.String(), errOut.String(), err
}

// testRecorder keeps what it is told.
type testRecorder struct {
	mu        sync.Mutex
	connected []sessioncert.Claims
	reasons   []string
	procs     []*testProc
	sftp      []SFTPOp
	forwards  []Forward
	full      string // what Full says
}

type testProc struct {
	info    Process
	mu      sync.Mutex
	out, in bytes.Buffer
	resizes [][2]int
	exit    *Exit
}

func (r *testRecorder) Connected(_ string, who sessioncert.Claims) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.connected = append(r.connected, who)
}

func (r *testRecorder) Disconnected(_ string, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reasons = append(r.reasons, reason)
}

func (r *testRecorder) Process(_ string, p Process) ProcessRecorder {
	r.mu.Lock()
	defer r.mu.Unlock()
	tp := &testProc{info: p}
	r.procs = append(r.procs, tp)
	return tp
}

func (r *testRecorder) SFTP(_ string, op SFTPOp) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sftp = append(r.sftp, op)
}

func (r *testRecorder) Forward(_ string, f Forward) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forwards = append(r.forwards, f)
}

func (r *testRecorder) Full(string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.full
}

// setFull makes Full say why from now on.
func (r *testRecorder) setFull(why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.full = why
}

func (r *testRecorder) sftpOps() []SFTPOp {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]SFTPOp(nil), r.sftp...)
}

func (r *testRecorder) forwardList() []Forward {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Forward(nil), r.forwards...)
}

// proc returns the recorded process whose command contains s.
func (r *testRecorder) proc(s string) *testProc {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.procs {
		if strings.Contains(p.info.Command, s) {
			return p
		}
	}
	return nil
}

func (p *testProc) Output(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out.Write(b)
}

func (p *testProc) Input(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.in.Write(b)
}

func (p *testProc) Resize(cols, rows int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.resizes = append(p.resizes, [2]int{cols, rows})
}

func (p *testProc) Exited(e Exit) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.exit = &e
}

func (p *testProc) exited() *Exit {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exit
}

var (
	_ Recorder        = (*testRecorder)(nil)
	_ ProcessRecorder = (*testProc)(nil)
)

// logRecords keeps what a server logs, each record as its message and
// attributes.
type logRecords struct {
	mu      sync.Mutex
	records []map[string]string
}

func (l *logRecords) logger() *slog.Logger { return slog.New(&logHandler{l: l}) }

// find returns the attributes of the first record with message msg.
func (l *logRecords) find(msg string) map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.records {
		if r["msg"] == msg {
			return r
		}
	}
	return nil
}

type logHandler struct {
	l     *logRecords
	attrs []slog.Attr
}

func (h *logHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	m := map[string]string{"msg": r.Message}
	for _, a := range h.attrs {
		m[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.String()
		return true
	})
	h.l.mu.Lock()
	defer h.l.mu.Unlock()
	h.l.records = append(h.l.records, m)
	return nil
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logHandler{l: h.l, attrs: append(slices.Clone(h.attrs), attrs...)}
}

func (h *logHandler) WithGroup(string) slog.Handler { return h }

// runAsNobody runs the program as nobody and returns its output.
func runAsNobody(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	return string(out), err
}
