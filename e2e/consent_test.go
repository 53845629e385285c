package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
)

// The owner's consent, end to end with the real binaries: a server with
// its relay, agents in each consent mode answering their owner on sockets
// of their own, the engineer as the porthole CLI or as a Go SSH client
// (which can try what the CLI never would).

// consentDevice enrolls name into acme and runs its agent with the owner's
// config text; it returns the owner's socket and the agent.
func (s *presenceServer) consentDevice(t *testing.T, name, config string) (sock string, agent *Proc, state string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "ph") // a short path: sockets take at most 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock = filepath.Join(dir, "agent.sock")
	cfg := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(cfg, []byte(config+"socket: "+sock+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	state = s.enroll(t, name)
	agent = s.runAgent(t, state, cfg)
	s.waitPresence(t, name, true, "after its agent started")
	return sock, agent, state
}

// owner runs porthole-agent as the device's owner, on its socket.
func owner(t *testing.T, s *presenceServer, sock string, args ...string) Result {
	t.Helper()
	return Run(t, s.env, "", bins.Agent, append(args, "--socket", sock)...)
}

// create asks for a session on device without waiting for it.
func (e *engineer) create(t *testing.T, device, reason string) *apitype.CreateSessionResponse {
	t.Helper()
	ds, err := e.api.Devices(t.Context(), apiclient.DeviceFilter{Name: device})
	if err != nil || len(ds) != 1 {
		t.Fatalf("finding %s: %v %v", device, ds, err)
	}
	resp, err := e.api.CreateSession(t.Context(), ds[0].ID, apitype.CreateSessionRequest{
		PublicKey: string(ssh.MarshalAuthorizedKey(e.signer.PublicKey())), Reason: reason})
	if err != nil {
		t.Fatalf("creating a session on %s: %v", device, err)
	}
	return resp
}

// waitState long-polls a session until it reaches state (or closes).
func (e *engineer) waitState(t *testing.T, id, state string) *apitype.Session {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ses, err := e.api.WaitSession(t.Context(), id, state, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if ses.State == state || ses.State == apitype.SessionClosed || time.Now().After(deadline) {
			return ses
		}
	}
}

// dialCode reaches the device through the relay like dial, answering the
// device's keyboard-interactive question with code ("" offers no answer
// at all). It returns what the device said in banners.
func (e *engineer) dialCode(t *testing.T, resp *apitype.CreateSessionResponse, code string) (*ssh.Client, []string, error) {
	t.Helper()
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(resp.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	certSigner, err := ssh.NewCertSigner(pub.(*ssh.Certificate), e.signer)
	if err != nil {
		t.Fatal(err)
	}
	hostCA, _, _, _, err := ssh.ParseAuthorizedKey([]byte(resp.HostCA))
	if err != nil {
		t.Fatal(err)
	}
	checker := &ssh.CertChecker{IsHostAuthority: func(k ssh.PublicKey, _ string) bool {
		return bytes.Equal(k.Marshal(), hostCA.Marshal())
	}}
	relayConn, err := ssh.Dial("tcp", resp.RelayAddr, &ssh.ClientConfig{User: resp.Session.ID,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(certSigner)}, HostKeyCallback: checker.CheckHostKey, Timeout: 10 * time.Second})
	if err != nil {
		return nil, nil, fmt.Errorf("relay: %w", err)
	}
	t.Cleanup(func() { relayConn.Close() })
	ch, err := relayConn.Dial("tcp", net.JoinHostPort(resp.Session.ID, "22"))
	if err != nil {
		return nil, nil, fmt.Errorf("direct-tcpip: %w", err)
	}
	var (
		mu      sync.Mutex
		banners []string
		prompts []string
	)
	auth := []ssh.AuthMethod{ssh.PublicKeys(certSigner)}
	if code != "" {
		auth = append(auth, ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
			mu.Lock()
			prompts = append(prompts, questions...)
			mu.Unlock()
			answers := make([]string, len(questions))
			for i := range answers {
				answers[i] = code
			}
			return answers, nil
		}))
	}
	cfg := &ssh.ClientConfig{User: resp.Session.ID, Auth: auth, HostKeyCallback: checker.CheckHostKey, Timeout: 10 * time.Second,
		BannerCallback: func(msg string) error {
			mu.Lock()
			defer mu.Unlock()
			banners = append(banners, strings.TrimSpace(msg))
			return nil
		}}
	c, chans, reqs, err := ssh.NewClientConn(ch, resp.HostPrincipals[1]+":22", cfg)
	mu.Lock()
	said := append(append([]string{}, prompts...), banners...)
	mu.Unlock()
	if err != nil {
		ch.Close()
		return nil, said, fmt.Errorf("device: %w", err)
	}
	return ssh.NewClient(c, chans, reqs), said, nil
}

// runOn runs command on client and returns its output.
func runOn(t *testing.T, client *ssh.Client, command string) string {
	t.Helper()
	s, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.CombinedOutput(command)
	if err != nil {
		t.Fatalf("%s: %v\n%s", command, err, out)
	}
	return string(out)
}

func requests(t *testing.T, s *presenceServer, args ...string) []apitype.SupportRequest {
	t.Helper()
	r := MustRun(t, s.env, "", bins.CLI, append([]string{"requests", "--json"}, args...)...)
	var rs []apitype.SupportRequest
	if err := json.Unmarshal([]byte(r.Stdout), &rs); err != nil {
		t.Fatalf("porthole requests --json: %v\n%s", err, r.Stdout)
	}
	return rs
}

var supportCode = regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$`)

// TestConsentManual: without the owner's window a valid certificate gets
// nothing; with it, the engineer needs the code the owner reads out; wrong
// codes are counted and the fifth closes the window; a code from an
// earlier window never works again; the window's end ends its sessions.
func TestConsentManual(t *testing.T) {
	t.Parallel()
	srv := newPresenceServer(t, sessionConfig(t, "15m"))
	sock, agent, state := srv.consentDevice(t, "dev1", "consent: manual\n")
	eng := newEngineer(t, srv)

	// No window: a valid certificate alone gets nothing, and the device
	// never dials the relay.
	resp := eng.create(t, "dev1", "ticket 1")
	if ses := eng.waitState(t, resp.Session.ID, apitype.SessionClosed); ses.CloseReason != "no_consent" || !ses.ActiveAt.IsZero() {
		t.Fatalf("a session without a window: %+v; want closed as no_consent, never active", ses)
	}
	r := Run(t, srv.env, "", bins.CLI, "ssh", "dev1", "--", "true")
	if want := "dev1 needs its owner's support code — ask them to run `porthole-agent request`"; r.Err == nil || !strings.Contains(r.Stderr, want) {
		t.Fatalf("porthole ssh without a window: %v\n%s\nwant %q", r.Err, r.Stderr, want)
	}

	// The owner asks for support: a code, and a request in the queue that
	// does not hold it.
	r = owner(t, srv, sock, "request", "--reason", "the amp hums", "--for", "10m")
	code := strings.TrimSpace(r.Stdout)
	if r.Err != nil || !supportCode.MatchString(code) || !strings.Contains(r.Stderr, "The support team has your request") {
		t.Fatalf("porthole-agent request: %v\nstdout %q\nstderr %s", r.Err, r.Stdout, r.Stderr)
	}
	queue := requests(t, srv)
	if len(queue) != 1 || queue[0].Kind != apitype.RequestSupport || queue[0].Device != "dev1" || queue[0].Reason != "the amp hums" {
		t.Fatalf("the queue: %+v", queue)
	}
	raw := MustRun(t, srv.env, "", bins.CLI, "requests", "--all", "--json").Stdout
	if strings.Contains(raw, code) || strings.Contains(raw, strings.ReplaceAll(code, "-", "")) {
		t.Fatal("the support code reached the server")
	}
	MustRun(t, srv.env, "", bins.CLI, "requests", "claim", queue[0].ID)

	// The CLI with the code gets in.
	r = Run(t, srv.env, "", bins.CLI, "ssh", "dev1", "--code", strings.ToLower(code), "--", "echo", "in")
	if r.Err != nil || r.Stdout != "in\n" {
		t.Fatalf("porthole ssh --code: %v\nstdout %q\nstderr %s", r.Err, r.Stdout, r.Stderr)
	}

	// A certificate without the code: refused. Wrong codes: counted.
	resp = eng.open(t, "dev1")
	if _, _, err := eng.dialCode(t, resp, ""); err == nil {
		t.Fatal("the device let in a certificate without the support code")
	}
	for i := 1; i < 5; i++ {
		_, said, err := eng.dialCode(t, resp, "AAAA-AAAA-AAAA")
		want := fmt.Sprintf("wrong support code; %d tr", 5-i)
		if err == nil || !strings.Contains(strings.Join(said, "\n"), want) {
			t.Fatalf("wrong code %d: %v, device said %q; want %q", i, err, said, want)
		}
		if i == 1 && (len(said) == 0 || said[0] != "Support code for dev1: ") {
			t.Errorf("the device asked %q; want \"Support code for dev1: \"", said)
		}
	}
	client, _, err := eng.dialCode(t, resp, code)
	if err != nil {
		t.Fatalf("the right code after four wrong ones: %v", err)
	}
	if out := runOn(t, client, "echo ok"); out != "ok\n" {
		t.Errorf("exec: %q", out)
	}
	// The fifth wrong code closes the window: the session ends, the owner
	// and the server are told.
	_, said, err := eng.dialCode(t, resp, "BBBB-BBBB-BBBB")
	if err == nil || !strings.Contains(strings.Join(said, "\n"), "closed its support window") {
		t.Fatalf("fifth wrong code: %v, %q", err, said)
	}
	if ses := eng.waitState(t, resp.Session.ID, apitype.SessionClosed); ses.CloseReason != "wrong_codes" {
		t.Errorf("the session after five wrong codes: %+v; want closed as wrong_codes", ses)
	}
	waitClientGone(t, client, "the connection of a session in a window closed by wrong codes")
	WaitFor(t, 10*time.Second, "the server to hear the window closed", func() bool {
		rs := requests(t, srv, "--all")
		return len(rs) == 1 && rs[0].CloseReason == "wrong_codes" && len(rs[0].Sessions) >= 2
	})
	if out := owner(t, srv, sock, "status").Stdout; !strings.Contains(out, "Support window: closed") {
		t.Errorf("status after five wrong codes:\n%s", out)
	}
	if log := readFile(t, filepath.Join(state, "agent.log")); strings.Count(log, `"support_code_wrong"`) != 5 ||
		!strings.Contains(log, `"event":"support_window_closed","reason":"wrong_codes"`) {
		t.Errorf("the owner's log does not tell of the five wrong codes:\n%s", log)
	}

	// A new window has a new code; the old one is just wrong there.
	code2 := strings.TrimSpace(owner(t, srv, sock, "request", "--for", "3s").Stdout)
	if !supportCode.MatchString(code2) || code2 == code {
		t.Fatalf("the new window's code %q (the old one %q)", code2, code)
	}
	resp = eng.open(t, "dev1")
	if _, said, err := eng.dialCode(t, resp, code); err == nil || !strings.Contains(strings.Join(said, "\n"), "wrong support code") {
		t.Fatalf("the old code in a new window: %v, %q", err, said)
	}
	client, _, err = eng.dialCode(t, resp, code2)
	if err != nil {
		t.Fatal(err)
	}
	// The window's end (3 s) ends its session.
	waitClientGone(t, client, "the connection when the 3 s window ended")
	if ses := eng.waitState(t, resp.Session.ID, apitype.SessionClosed); ses.CloseReason != "consent_expired" {
		t.Errorf("the session after its window: %+v; want consent_expired", ses)
	}
	// And after it, the certificate of a new session gets nothing again.
	resp = eng.create(t, "dev1", "")
	if ses := eng.waitState(t, resp.Session.ID, apitype.SessionClosed); ses.CloseReason != "no_consent" {
		t.Errorf("a session after the window expired: %+v; want no_consent", ses)
	}

	// An engineer closing the request in the queue changes nothing on the
	// device: its window, and its code, are the owner's.
	code3 := strings.TrimSpace(owner(t, srv, sock, "request", "--reason", "again").Stdout)
	queue = requests(t, srv)
	if len(queue) != 1 || queue[0].Reason != "again" {
		t.Fatalf("the queue: %+v", queue)
	}
	if r := MustRun(t, srv.env, "", bins.CLI, "requests", "close", queue[0].ID); !strings.Contains(r.Stderr, "closed "+queue[0].ID) {
		t.Errorf("porthole requests close: %q", r.Stderr)
	}
	if len(requests(t, srv)) != 0 {
		t.Error("a closed request is still in the queue")
	}
	r = Run(t, srv.env, "", bins.CLI, "ssh", "dev1", "--code", code3, "--", "echo", "still")
	if r.Err != nil || r.Stdout != "still\n" {
		t.Errorf("the window after its request was closed on the server: %v %q\n%s", r.Err, r.Stdout, r.Stderr)
	}
	if t.Failed() {
		t.Logf("agent:\n%s", agent.Stderr())
	}
}

func waitClientGone(t *testing.T, c *ssh.Client, what string) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s outlived the end of consent by 10 s", what)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestConsentApprove: the owner sees who asks, from which fleet and why,
// and approves or denies; unanswered means denied. The engineer's CLI says
// what it waits for and what became of it.
func TestConsentApprove(t *testing.T) {
	t.Parallel()
	srv := newPresenceServer(t, sessionConfig(t, "15m"))
	sock, _, _ := srv.consentDevice(t, "dev2", "consent: approve\napproval_timeout: 3s\n")
	eng := newEngineer(t, srv)

	// Approved: the session opens without a code.
	resp := eng.create(t, "dev2", "ticket 42")
	if ses := eng.waitState(t, resp.Session.ID, apitype.SessionWaitingConsent); ses.State != apitype.SessionWaitingConsent {
		t.Fatalf("the session: %+v; want waiting_consent", ses)
	}
	WaitFor(t, 5*time.Second, "the owner to see who asks", func() bool {
		out := owner(t, srv, sock, "status").Stdout
		return strings.Contains(out, resp.Session.ID+"  ops@example.com of fleet acme asks: \"ticket 42\"")
	})
	queue := requests(t, srv)
	if len(queue) != 1 || queue[0].Kind != apitype.RequestApproval || queue[0].Session != resp.Session.ID ||
		queue[0].RequestedBy != "ops@example.com" || queue[0].Reason != "ticket 42" {
		t.Fatalf("the queue: %+v", queue)
	}
	r := owner(t, srv, sock, "approve", resp.Session.ID[len(resp.Session.ID)-6:])
	if r.Err != nil || !strings.HasPrefix(r.Stdout, "approved "+resp.Session.ID) {
		t.Fatalf("porthole-agent approve: %v\n%s%s", r.Err, r.Stdout, r.Stderr)
	}
	if ses := eng.waitState(t, resp.Session.ID, apitype.SessionActive); ses.State != apitype.SessionActive {
		t.Fatalf("the approved session: %+v", ses)
	}
	client, _, err := eng.dialCode(t, resp, "")
	if err != nil {
		t.Fatalf("an approved session needs no code: %v", err)
	}
	if out := runOn(t, client, "echo approved"); out != "approved\n" {
		t.Errorf("exec: %q", out)
	}
	client.Close()

	// Denied, through the CLI.
	p := Start(t, srv.env, bins.CLI, "ssh", "dev2", "--", "true")
	var pending string
	WaitFor(t, 10*time.Second, "the CLI's session to wait for the owner", func() bool {
		var st struct{ Pending []struct{ Session string } }
		if json.Unmarshal([]byte(owner(t, srv, sock, "status", "--json").Stdout), &st) == nil && len(st.Pending) == 1 {
			pending = st.Pending[0].Session
		}
		return pending != ""
	})
	WaitFor(t, 5*time.Second, "the CLI to say how long the owner has", func() bool {
		if regexp.MustCompile(`waiting for the owner of dev2 to approve \(0:0[0-3] left\)`).MatchString(p.Stderr()) {
			return true
		}
		if p.Exited() {
			t.Fatalf("porthole ssh ended:\n%s", p.Stderr())
		}
		return false
	})
	if r := owner(t, srv, sock, "deny"); r.Err != nil || r.Stdout != "denied "+pending+"\n" {
		t.Fatalf("porthole-agent deny: %v %q %s", r.Err, r.Stdout, r.Stderr)
	}
	WaitFor(t, 10*time.Second, "porthole ssh to end", p.Exited)
	if !strings.Contains(p.Stderr(), "the owner denied the request") {
		t.Errorf("porthole ssh after a denial said:\n%s", p.Stderr())
	}

	// Unanswered for 3 s: denied.
	start := time.Now()
	r = Run(t, srv.env, "", bins.CLI, "ssh", "dev2", "--", "true")
	if r.Err == nil || !strings.Contains(r.Stderr, "the owner of dev2 did not answer in time, so the request was denied") {
		t.Errorf("porthole ssh unanswered: %v\n%s", r.Err, r.Stderr)
	}
	if d := time.Since(start); d < 3*time.Second || d > 15*time.Second {
		t.Errorf("the unanswered request ended after %v; want about 3 s", d)
	}
	rs := requests(t, srv, "--all")
	reasons := map[string]int{}
	for _, r := range rs {
		reasons[r.CloseReason]++
	}
	if reasons["approved"] != 1 || reasons["denied"] != 1 || reasons["consent_timeout"] != 1 {
		t.Errorf("the approval requests closed as %v; want one each of approved, denied, consent_timeout", reasons)
	}
}

// TestConsentAuto: the operator's own devices let in any signed session,
// without a code, and the owner can still end it all.
func TestConsentAuto(t *testing.T) {
	t.Parallel()
	srv := newPresenceServer(t, sessionConfig(t, "15m"))
	sock, _, _ := srv.consentDevice(t, "cam1", "consent: auto\n")
	r := Run(t, srv.env, "", bins.CLI, "ssh", "cam1", "--", "echo", "auto")
	if r.Err != nil || r.Stdout != "auto\n" {
		t.Fatalf("porthole ssh to an auto device: %v %q\n%s", r.Err, r.Stdout, r.Stderr)
	}
	if r := owner(t, srv, sock, "request"); r.Err != nil || r.Stdout != "" || !strings.Contains(r.Stderr, "No code is needed") {
		t.Errorf("request on an auto device: %v %q %s", r.Err, r.Stdout, r.Stderr)
	}
}

// TestRevokeMidTransfer: the owner's revoke in the middle of a 64 MiB
// upload ends it within a second: the engineer's connection and the
// relay's, the window; the engineer reads why; the owner's record shows
// the partial file; nothing hangs.
func TestRevokeMidTransfer(t *testing.T) {
	t.Parallel()
	srv := newPresenceServer(t, sessionConfig(t, "15m"))
	sock, agent, state := srv.consentDevice(t, "dev3", "consent: manual\n")
	eng := newEngineer(t, srv)
	code := strings.TrimSpace(owner(t, srv, sock, "request").Stdout)
	resp := eng.open(t, "dev3")
	client, _, err := eng.dialCode(t, resp, code)
	if err != nil {
		t.Fatal(err)
	}
	fc, err := sftp.NewClient(client)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "upload.bin")
	f, err := fc.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	const total, chunk = 64 << 20, 256 << 10
	buf := bytes.Repeat([]byte("porthole"), chunk/8)
	var (
		written  int64
		revoked  time.Time
		revokeAt = int64(8 << 20)
		rev      = make(chan Result, 1)
	)
	for written < total {
		if written >= revokeAt && revoked.IsZero() {
			revoked = time.Now()
			go func() { rev <- owner(t, srv, sock, "revoke") }()
		}
		n, err := f.Write(buf)
		written += int64(n)
		if err != nil {
			break
		}
	}
	cut := time.Now()
	if written >= total {
		t.Fatalf("the whole 64 MiB went through a revoke")
	}
	if d := cut.Sub(revoked); d > time.Second {
		t.Errorf("the transfer ended %v after the revoke began; want within a second", d)
	}
	if r := <-rev; r.Err != nil || !strings.Contains(r.Stdout, "ended 1 session(s) and closed the support window") {
		t.Errorf("porthole-agent revoke: %v %q %s", r.Err, r.Stdout, r.Stderr)
	}
	waitClientGone(t, client, "the engineer's connection after revoke")
	if ses := eng.waitState(t, resp.Session.ID, apitype.SessionClosed); ses.CloseReason != "revoked" {
		t.Errorf("the session after revoke: %+v; want revoked", ses)
	}
	WaitFor(t, 5*time.Second, "the server to hear the window was revoked", func() bool {
		rs := requests(t, srv, "--all")
		return len(rs) == 1 && rs[0].CloseReason == "revoked"
	})
	if fi, err := os.Stat(path); err != nil || fi.Size() >= total {
		t.Errorf("the partial file on the device: %v, %v", fi, err)
	}
	// The owner's record has the cut-short write, with what it held.
	WaitFor(t, 5*time.Second, "the owner's record of the partial file", func() bool {
		r := Run(t, srv.env, "", bins.Agent, "replay", resp.Session.ID, "--state", state)
		return strings.Contains(r.Stdout+r.Stderr, path)
	})
	// The engineer's CLI tells why, in the same words.
	code = strings.TrimSpace(owner(t, srv, sock, "request").Stdout)
	p := Start(t, srv.env, bins.CLI, "ssh", "dev3", "--code", code, "--", "sleep", "30")
	WaitFor(t, 15*time.Second, "the engineer's command to run on dev3", func() bool {
		return strings.Contains(owner(t, srv, sock, "status").Stdout, "ops@example.com connected since")
	})
	owner(t, srv, sock, "revoke")
	WaitFor(t, 5*time.Second, "porthole ssh to end after revoke", p.Exited)
	if !strings.Contains(p.Stderr(), "the owner of dev3 ended this session") {
		t.Errorf("porthole ssh after revoke said:\n%s", p.Stderr())
	}
	if t.Failed() {
		t.Logf("agent:\n%s", agent.Stderr())
	}
}
