package agentrecord

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/agentssh"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/internal/testnet"
	"github.com/porthole/porthole/internal/testwait"
	"github.com/porthole/porthole/sessioncert"
)

// sshDevice is the device's embedded SSH server recording into rec, with
// the CAs and the engineer's key a real session has.
type sshDevice struct {
	srv              *agentssh.Server
	userCA, hostCA   ssh.Signer
	engineer         ssh.Signer
	echoPort         int
	rec              *Recordings
	serveErr         chan error
	cancel           context.CancelFunc
	addr             string
	certificateUntil time.Time
}

func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newSSHDevice(t *testing.T, rec *Recordings) *sshDevice {
	t.Helper()
	d := &sshDevice{userCA: newSigner(t), hostCA: newSigner(t), engineer: newSigner(t), echoPort: testnet.Echo(t).Port, rec: rec}
	device := newSigner(t)
	hc := &ssh.Certificate{Key: device.PublicKey(), CertType: ssh.HostCert, KeyId: "dev1",
		ValidPrincipals: []string{"dev1.acme.porthole"}, ValidBefore: ssh.CertTimeInfinity}
	if err := hc.SignCert(rand.Reader, d.hostCA); err != nil {
		t.Fatal(err)
	}
	hostKey, err := ssh.NewCertSigner(hc, device)
	if err != nil {
		t.Fatal(err)
	}
	d.srv, err = agentssh.New(agentssh.Config{
		HostKey: hostKey, UserCA: d.userCA.PublicKey(),
		Fleet: "acme", Device: "dev1", DeviceID: "dev_1",
		SessionOpen:  func(string) bool { return true },
		AllowPorts:   []int{d.echoPort},
		SessionPorts: func(string) []int { return []int{d.echoPort} },
		Recorder:     rec,
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// serve accepts one engineer connection for session ses_1.
func (d *sshDevice) serve(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel, d.addr, d.serveErr = cancel, ln.Addr().String(), make(chan error, 1)
	go func() {
		nc, err := ln.Accept()
		ln.Close()
		if err != nil {
			d.serveErr <- err
			return
		}
		d.serveErr <- d.srv.ServeConn(ctx, nc, "ses_1")
	}()
	t.Cleanup(func() { cancel(); ln.Close() })
}

// login connects as ann with a session certificate for ses_1.
func (d *sshDevice) login(t *testing.T) *ssh.Client {
	t.Helper()
	d.serve(t)
	now := time.Now()
	d.certificateUntil = now.Add(time.Hour).Truncate(time.Second)
	cert, err := sessioncert.Sign(d.userCA, d.engineer.PublicKey(), sessioncert.Claims{Session: "ses_1", Fleet: "acme",
		Device: "dev1", DeviceID: "dev_1", User: "ann@example.com", ValidAfter: now.Add(-sessioncert.Margin), ValidBefore: d.certificateUntil})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := ssh.NewCertSigner(cert, d.engineer)
	if err != nil {
		t.Fatal(err)
	}
	checker := &ssh.CertChecker{IsHostAuthority: func(k ssh.PublicKey, _ string) bool {
		return bytes.Equal(k.Marshal(), d.hostCA.PublicKey().Marshal())
	}}
	nc, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	conn, chans, reqs, err := ssh.NewClientConn(nc, "dev1.acme.porthole:22", &ssh.ClientConfig{User: "x",
		Auth: []ssh.AuthMethod{ssh.PublicKeys(cs)}, HostKeyCallback: checker.CheckHostKey, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c := ssh.NewClient(conn, chans, reqs)
	t.Cleanup(func() { c.Close() })
	return c
}

// hangUp closes the client and waits for the device to finish the
// connection.
func (d *sshDevice) hangUp(t *testing.T, c *ssh.Client) {
	t.Helper()
	c.Close()
	select {
	case err := <-d.serveErr:
		if err != nil {
			t.Fatalf("ServeConn: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeConn did not return")
	}
}

// typeInShell runs a scripted terminal session: it types lines one at a
// time into an interactive sh, each after the output of the one before.
// (sh rather than the login shell: root's bash takes seconds to start on
// a busy machine.)
func typeInShell(t *testing.T, c *ssh.Client, steps []struct{ typed, want string }) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestPty("xterm-256color", 30, 90, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
		t.Fatal(err)
	}
	in, _ := s.StdinPipe()
	scr := &testnet.Buffer{}
	s.Stdout = scr
	if err := s.Start("exec sh -i"); err != nil {
		t.Fatal(err)
	}
	for _, st := range steps {
		io.WriteString(in, st.typed+"\n")
		if st.want != "" {
			testwait.For(t, 10*time.Second, st.want, func() bool { return strings.Contains(scr.String(), st.want) })
		}
	}
	io.WriteString(in, "exit\n")
	if err := s.Wait(); err != nil {
		t.Errorf("shell: %v", err)
	}
}

// TestRecordRealSession records a scripted session through the embedded
// SSH server: a shell on a terminal, a command, file copies and a port
// forward.
func TestRecordRealSession(t *testing.T) {
	rec := openRecordings(t, Config{}, func(o *Options) { o.RecordInput = true })
	d := newSSHDevice(t, rec)
	c := d.login(t)

	typeInShell(t, c, []struct{ typed, want string }{
		{"echo hello-$((6*7))", "hello-42"},
		{"printf 'caf\\303\\251\\n'", "café"},
	})

	s, _ := c.NewSession()
	var out, errOut bytes.Buffer
	s.Stdout, s.Stderr = &out, &errOut
	var ee *ssh.ExitError
	if err := s.Run("echo out; echo err >&2; exit 3"); !errors.As(err, &ee) || ee.ExitStatus() != 3 {
		t.Errorf("command: %v", err)
	}

	dir := t.TempDir()
	sc, err := sftp.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	f, err := sc.Create(filepath.Join(dir, "fw.bin"))
	if err != nil {
		t.Fatal(err)
	}
	f.Write(bytes.Repeat([]byte("x"), 12345))
	f.Close()
	if _, err := sc.ReadDir(dir); err != nil {
		t.Fatal(err)
	}
	sc.Remove(filepath.Join(dir, "fw.bin"))
	sc.Close()

	conn, err := c.Dial("tcp", "127.0.0.1:"+strconv.Itoa(d.echoPort))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "ping")
	io.ReadFull(conn, make([]byte, 4))
	conn.Close()
	if conn, err := c.Dial("tcp", "127.0.0.1:1"); err == nil {
		conn.Close()
		t.Error("a forward to a port the owner did not allow went through")
	}

	d.hangUp(t, c)
	rec.SessionEnded("ses_1", control.CloseOnCommand)

	ses := recorded(t, rec, "ses_1")
	if len(ses.Who) != 1 || ses.Who[0].User != "ann@example.com" || !ses.Who[0].ValidBefore.Equal(d.certificateUntil) {
		t.Errorf("who = %+v", ses.Who)
	}
	evs := events(t, ses)
	if got, want := kinds(evs), "connected process exit process exit sftp sftp sftp forward forward disconnected ended"; got != want {
		t.Errorf("events = %s; want %s", got, want)
	}
	if p := findEvent(evs, SessionEventProcess, 1); p == nil || p.Command != "exec sh -i" || !p.PTY || p.Cols != 90 || p.Rows != 30 {
		t.Errorf("terminal's event = %+v", p)
	}
	if p := findEvent(evs, SessionEventProcess, 2); p == nil || p.Command != "echo out; echo err >&2; exit 3" || p.PTY {
		t.Errorf("command's event = %+v", p)
	}
	if e := findEvent(evs, SessionEventExit, 2); e == nil || e.Status == nil || *e.Status != 3 || e.Out != 8 {
		t.Errorf("command's exit = %+v", e)
	}
	var sftpOps, forwards []string
	for _, ev := range evs {
		switch ev.Event {
		case SessionEventSFTP:
			sftpOps = append(sftpOps, ev.Op+" "+filepath.Base(ev.Path)+" "+strconv.FormatInt(ev.Bytes, 10))
		case SessionEventForward:
			forwards = append(forwards, ev.Target+" "+strconv.FormatInt(ev.In, 10)+" "+strconv.FormatInt(ev.Out, 10)+" "+ev.Refused)
		}
	}
	if got, want := strings.Join(sftpOps, ", "), "write fw.bin 12345, list "+filepath.Base(dir)+" 0, remove fw.bin 0"; got != want {
		t.Errorf("sftp events: %s; want %s", got, want)
	}
	slices.Sort(forwards) // a forward is recorded when it ends
	if len(forwards) != 2 || forwards[1] != "127.0.0.1:"+strconv.Itoa(d.echoPort)+" 4 4 " || !strings.HasPrefix(forwards[0], "127.0.0.1:1 0 0 ") || strings.HasSuffix(forwards[0], " ") {
		t.Errorf("forward events: %q", forwards)
	}

	h, ce := readCast(t, filepath.Join(ses.Dir, "0001-pty.cast"))
	if h.Width != 90 || h.Height != 30 || h.Env["TERM"] != "xterm-256color" {
		t.Errorf("header %+v", h)
	}
	output, input := castData(ce, "o"), castData(ce, "i")
	for _, want := range []string{"echo hello-$((6*7))", "hello-42", "café"} {
		if !strings.Contains(output, want) {
			t.Errorf("terminal output lacks %q: %q", want, output)
		}
	}
	if want := "echo hello-$((6*7))\nprintf 'caf\\303\\251\\n'\nexit\n"; input != want {
		t.Errorf("typed input = %q; want %q", input, want)
	}
	_, ce = readCast(t, filepath.Join(ses.Dir, "0002-exec.cast"))
	if got := castData(ce, "o"); got != "out\nerr\n" && got != "err\nout\n" {
		t.Errorf("command's output = %q", got)
	}
	checkModes(t, rec.stateDir)

	// The owner replays it: the terminal session, with its output.
	var replay, notes bytes.Buffer
	if err := Replay(context.Background(), &replay, ses, ReplayOptions{Speed: 1000, Notes: &notes}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(replay.String(), "hello-42") || strings.Contains(replay.String(), "out\n") {
		t.Errorf("replay = %q; want the terminal only", replay.String())
	}

	t.Run("asciinema", func(t *testing.T) { asciinemaCat(t, filepath.Join(ses.Dir, "0001-pty.cast"), "hello-42") })
}

// asciinemaCat checks that stock asciinema reads a recording and prints
// want from it. asciinema cat needs a terminal, so it gets one.
func asciinemaCat(t *testing.T, path, want string) {
	t.Helper()
	bin, err := exec.LookPath("asciinema")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("asciinema is not installed (scripts/setup.sh installs it)")
		}
		t.Skip("asciinema is not installed; scripts/setup.sh installs it")
	}
	home := t.TempDir()
	cmd := exec.Command(bin, "cat", path)
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8", "TERM=xterm"}
	ptmx, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	var out bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&out, ptmx); close(done) }()
	waitErr := cmd.Wait()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	if waitErr != nil || !strings.Contains(out.String(), want) {
		t.Errorf("asciinema cat %s: %v; output %q lacks %q", path, waitErr, out.String(), want)
	}
}

// TestRecordRealFlood: a flood of random bytes on a terminal through the
// SSH server stays within small caps, with its marker; reaching the cap
// ends the flood and refuses the next command, each telling the engineer
// why, and the events say how the flood ended.
func TestRecordRealFlood(t *testing.T) {
	cfg := Config{MaxSession: 64 << 10, MaxEvents: 8 << 10, MaxTotal: 128 << 10}
	rec := openRecordings(t, cfg, nil)
	d := newSSHDevice(t, rec)
	c := d.login(t)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RequestPty("xterm", 24, 80, nil); err != nil {
		t.Fatal(err)
	}
	var n countWriter
	var notice testnet.Buffer
	s.Stdout, s.Stderr = &n, &notice
	var ee *ssh.ExitError
	if err := s.Run("head -c 4000000 /dev/urandom"); !errors.As(err, &ee) || ee.Signal() != "KILL" {
		t.Fatalf("the flood past the cap: %v; want it killed", err)
	}
	if n >= 4000000 {
		t.Errorf("the engineer got all %d bytes of the flood; want it cut at the cap", n)
	}
	if !strings.Contains(notice.String(), "porthole: ended: this session's recording is full (the session reached recordings.max_session (64KiB))") {
		t.Errorf("the engineer was told %q", notice.String())
	}
	if errOut, err := refusedCommand(t, c, "echo after"); err == nil || !strings.Contains(errOut, "refused to start the command: this session's recording is full") {
		t.Errorf("a command after the flood: %q, %v; want it refused", errOut, err)
	}
	d.hangUp(t, c)
	rec.SessionEnded("ses_1", control.CloseOnCommand)

	ses := recorded(t, rec, "ses_1")
	if ses.Bytes > int64(cfg.MaxSession+cfg.MaxEvents)+2<<10 {
		t.Errorf("the recording takes %d bytes; caps %v + %v", ses.Bytes, cfg.MaxSession, cfg.MaxEvents)
	}
	_, ce := readCast(t, filepath.Join(ses.Dir, "0001-pty.cast"))
	if last := ce[len(ce)-1].Data; !strings.Contains(last, "[porthole: recording truncated at 64KiB") {
		t.Errorf("the recording ends with %q; want the truncation marker", last)
	}
	evs := events(t, ses)
	if p := findEvent(evs, SessionEventProcess, 2); p != nil {
		t.Errorf("the refused command ran: %+v", p)
	}
	if e := findEvent(evs, SessionEventExit, 1); e == nil || !e.Killed || !e.Truncated || e.Out == 0 {
		t.Errorf("the flood's exit = %+v; want killed, truncated", e)
	}
	if len(ses.Casts) != 1 {
		t.Errorf("casts %+v; want the flood's only", ses.Casts)
	}
}

// refusedCommand starts command, which the device is expected to refuse,
// and returns what the device said on stderr before closing the channel
// (ssh.Session.Run reads no stderr when the start is refused).
func refusedCommand(t *testing.T, c *ssh.Client, command string) (string, error) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	stderr, err := s.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start(command)
	if err == nil {
		s.Wait()
		return "", nil
	}
	got := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(stderr); got <- b }()
	select {
	case b := <-got:
		return string(b), err
	case <-time.After(10 * time.Second):
		t.Fatal("the device kept the refused channel open")
		return "", err
	}
}

type countWriter int

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

// TestRecordFullFailsClosed: an engineer tries to blind the recording.
// With a shell, a forward and a file being written open, they fill
// max_events with padding commands, then try a command, a forward and
// SFTP, and use what they had open. Everything new is refused with the
// reason, everything open is ended before it moves another byte, and what
// ran before the cap (the forward, the write) is still on record; the
// owner's agent.log says the cap was reached.
func TestRecordFullFailsClosed(t *testing.T) {
	cfg := Config{MaxSession: 64 << 10, MaxEvents: 4 << 10, MaxTotal: 1 << 20}
	rec := openRecordings(t, cfg, nil)
	d := newSSHDevice(t, rec)
	c := d.login(t)
	echo := "127.0.0.1:" + strconv.Itoa(d.echoPort)

	// Open before the cap: a forward, a shell, a file being written.
	fwd, err := c.Dial("tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	io.WriteString(fwd, "ping")
	if _, err := io.ReadFull(fwd, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	sh, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.RequestPty("xterm", 24, 80, ssh.TerminalModes{ssh.ECHO: 0}); err != nil {
		t.Fatal(err)
	}
	shIn, _ := sh.StdinPipe()
	var shOut, shErr testnet.Buffer
	sh.Stdout, sh.Stderr = &shOut, &shErr
	if err := sh.Start("exec sh -i"); err != nil {
		t.Fatal(err)
	}
	io.WriteString(shIn, "echo before-$((6*7))\n")
	testwait.For(t, 10*time.Second, "the shell", func() bool { return strings.Contains(shOut.String(), "before-42") })
	sc, err := sftp.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	path := filepath.Join(t.TempDir(), "exfil.bin")
	f, err := sc.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(bytes.Repeat([]byte("x"), 1000)); err != nil {
		t.Fatal(err)
	}

	// Padding until the device refuses: the events are full.
	padded := 0
	for ; padded < 100; padded++ {
		errOut, err := refusedCommand(t, c, "true")
		if err != nil {
			if !strings.Contains(errOut, "refused to start the command: this session's recording is full (the session reached recordings.max_events (4KiB))") {
				t.Fatalf("padding command %d: %q, %v", padded+1, errOut, err)
			}
			break
		}
	}
	if padded == 0 || padded == 100 {
		t.Fatalf("%d padding commands ran; want some, then a refusal", padded)
	}

	// New things: each refused, saying why.
	blind := filepath.Join(t.TempDir(), "blind")
	if errOut, err := refusedCommand(t, c, "echo blind; touch "+blind); err == nil || !strings.Contains(errOut, "recording is full") {
		t.Errorf("a command past the cap: %q, %v; want it refused", errOut, err)
	}
	if conn, err := c.Dial("tcp", echo); err == nil {
		conn.Close()
		t.Error("a forward past the cap was let through")
	} else if !strings.Contains(err.Error(), "recording is full") {
		t.Errorf("a forward past the cap: %v; want the reason", err)
	}
	if sc2, err := sftp.NewClient(c); err == nil {
		sc2.Close()
		t.Error("SFTP past the cap was let through")
	}

	// What was open moves nothing more.
	io.WriteString(fwd, "pong")
	fwd.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := io.ReadFull(fwd, make([]byte, 4)); err == nil {
		t.Errorf("the forward opened before the cap still echoes (%d bytes)", n)
	}
	io.WriteString(shIn, "echo blind-$((6*7))\n")
	var ee *ssh.ExitError
	if err := sh.Wait(); !errors.As(err, &ee) || ee.Signal() != "KILL" {
		t.Errorf("the shell opened before the cap: %v; want it killed", err)
	}
	if strings.Contains(shOut.String(), "blind-42") || !strings.Contains(shErr.String(), "porthole: ended: this session's recording is full") {
		t.Errorf("the shell past the cap: output %q, told %q", shOut.String(), shErr.String())
	}
	if _, err := f.Write(bytes.Repeat([]byte("y"), 1000)); err == nil {
		if err := f.Close(); err == nil {
			t.Error("the file opened before the cap took more data")
		}
	}

	d.hangUp(t, c)
	rec.SessionEnded("ses_1", control.CloseOnCommand)
	if _, err := os.Stat(blind); err == nil {
		t.Error("the refused command ran")
	}

	ses := recorded(t, rec, "ses_1")
	evs := events(t, ses)
	var forwards, writes []string
	for _, ev := range evs {
		switch {
		case ev.Event == SessionEventProcess && strings.Contains(ev.Command, "blind"):
			t.Errorf("the refused command has a process event: %+v", ev)
		case ev.Event == SessionEventForward && ev.Refused == "":
			forwards = append(forwards, ev.Target+" "+strconv.FormatInt(ev.In, 10))
		case ev.Event == SessionEventSFTP && ev.Op == "write":
			writes = append(writes, filepath.Base(ev.Path)+" "+strconv.FormatInt(ev.Bytes, 10))
		}
	}
	if len(forwards) != 1 || forwards[0] != echo+" 4" {
		t.Errorf("forwards on record: %q; want the one opened before the cap, with its 4 bytes", forwards)
	}
	if len(writes) != 1 || writes[0] != "exfil.bin 1000" {
		t.Errorf("writes on record: %q; want exfil.bin with the 1000 bytes written before the cap", writes)
	}
	if e := findEvent(evs, SessionEventExit, 1); e == nil || !e.Killed {
		t.Errorf("the shell's exit = %+v; want killed", e)
	}
	if !slices.Contains(ses.Truncated, "events") {
		t.Errorf("meta truncated = %v; want events", ses.Truncated)
	}
	var told bool
	for _, e := range logEvents(t, rec.stateDir) {
		d, _ := e.Fields["detail"].(string)
		if e.Event == eventRecordingTruncated && strings.Contains(d, "recordings.max_events (4KiB)") && strings.Contains(d, "are refused") {
			told = true
		}
	}
	if !told {
		t.Errorf("agent.log does not tell the owner the cap was reached: %s", logKinds(logEvents(t, rec.stateDir)))
	}
}
