// Package webssh is the SSH client of the web console's browser terminal,
// which cmd/porthole-webterm compiles to WebAssembly: the session key made
// in the browser (its private half never leaves the page's memory), the
// relay's hello over a WebSocket signed over the relay's challenge (a
// browser cannot read the TLS keying material the CLI binds its hello to),
// and the end-to-end SSH to the device with the same checks as the CLI
// (package engineerssh): the session certificate must certify this key,
// the device's host certificate must come from the host CA for one of the
// names the API gave. It has no tie to the browser itself, so it is tested
// as any Go package.
package webssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"strings"
	"sync"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/engineerssh"
	"github.com/porthole/porthole/relay/relayproto"
	"github.com/porthole/porthole/sshalgo"
)

// ClientVersion is the client's SSH identification line: the CLI's,
// asking the device to open the shell's session channel itself as the
// login ends, a round trip sooner (sshalgo.LoginSessionChannel).
const ClientVersion = engineerssh.ClientVersion + " " + sshalgo.LoginSessionWord

// Key is a session key made in the browser.
type Key struct{ signer ssh.Signer }

// NewKey makes a fresh ed25519 session key.
func NewKey() (*Key, error) {
	s, err := engineerssh.NewSessionKey()
	if err != nil {
		return nil, err
	}
	return &Key{signer: s}, nil
}

// KeyOf is a session key made elsewhere, whose holder signs for it (the
// browser's WebCrypto, which keeps its private half).
func KeyOf(s ssh.Signer) *Key { return &Key{signer: s} }

// AuthorizedKey is the public half, in the form the API's session route
// takes (POST /api/v1/devices/{id}/sessions, public_key).
func (k *Key) AuthorizedKey() string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.signer.PublicKey())))
}

// Options says which session to reach and how.
type Options struct {
	// Papers is the API's answer to the session's creation.
	Papers *apitype.CreateSessionResponse
	// Device is the device's name, for the words of errors.
	Device string
	// Cols and Rows are the terminal's size, unless Size is set.
	Cols, Rows int
	// Size, when set, is asked for the terminal's size as the shell
	// starts, after the login (the page's terminal may still be loading
	// until then).
	Size func(ctx context.Context) (cols, rows int, err error)
	// Code asks the engineer for the owner's support code, when the
	// device asks for it; why is the device's last word (a wrong code's
	// tries left), or "".
	Code func(ctx context.Context, prompt, why string) (string, error)
	// HelloSent says that the page has said hello to the relay on relay
	// already, signed with this key over the relay's challenge as
	// relayproto.SendChallengeHello does, and sent ClientVersion's line
	// after it: Connect reads the relay's reply. (The page says hello as
	// soon as the session is made, while this client still loads.)
	HelloSent bool
	// Trace, when set, is told of each step of the way as it is done
	// ("hello", "joined", "hostkey", "auth", "shell"), for the page's
	// timings (bench/README.md).
	Trace func(step string)
}

func (o Options) trace(step string) {
	if o.Trace != nil {
		o.Trace(step)
	}
}

// Shell is a shell on the device, in a terminal.
type Shell struct {
	client *ssh.Client
	files  *sftp.Client // once opened (Files)
	fmu    sync.Mutex
	sess   *engineerssh.RemoteSession
	// Output is what the shell writes (its terminal merges stderr).
	Output io.Reader
	once   sync.Once
}

// Connect says hello to the relay on relay (a WebSocket of
// relayproto.BrowserSubprotocol, just opened), reaches the device through
// it and starts a shell in a terminal. It closes relay if it fails.
func (k *Key) Connect(ctx context.Context, relay net.Conn, o Options) (*Shell, error) {
	sh, err := k.connect(ctx, relay, o)
	if err != nil {
		_ = relay.Close()
	}
	return sh, err
}

func (k *Key) connect(ctx context.Context, relay net.Conn, o Options) (*Shell, error) {
	cert, hostCA, err := engineerssh.ParsePapers(o.Papers, k.signer.PublicKey())
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewCertSigner(cert, k.signer)
	if err != nil {
		return nil, fmt.Errorf("the server's session certificate does not fit the key: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = relay.Close() })
	defer stop()
	conn := relayproto.NewEngineerConn(relay)
	var early *engineerssh.EarlyVersion
	if o.HelloSent {
		early = engineerssh.SentEarlyVersion(conn, ClientVersion)
	} else {
		if err := relayproto.SendChallengeHello(relay, signer, relayproto.Hello{Role: relayproto.RoleEngineer, Cert: cert.Marshal()}); err != nil {
			return nil, fmt.Errorf("could not say hello to the Porthole relay: %w", err)
		}
		o.trace("hello")
		// The version line travels with the hello, as the CLI's does:
		// the device answers as soon as the relay joins the two.
		if early, err = engineerssh.NewEarlyVersion(conn, ClientVersion); err != nil {
			return nil, fmt.Errorf("lost the connection to the Porthole relay: %w", err)
		}
	}
	if err := conn.Wait(); err != nil {
		return nil, relayWords(err, o.Device)
	}
	o.trace("joined")

	banners := &engineerssh.BannerLog{}
	hostErr := &engineerssh.HostKeyError{}
	var codeErr error
	ask := func(name, instruction string, questions []string, _ []bool) ([]string, error) {
		if len(questions) == 0 {
			return nil, nil
		}
		if o.Code == nil {
			codeErr = fmt.Errorf("%s asks for its owner's support code", o.Device)
			return nil, codeErr
		}
		prompt := strings.TrimSpace(strings.Join([]string{name, instruction, questions[0]}, " "))
		answer, err := o.Code(ctx, prompt, banners.Last())
		if err != nil {
			codeErr = err
			return nil, err
		}
		answers := make([]string, len(questions))
		for i := range answers {
			answers[i] = strings.TrimSpace(answer)
		}
		return answers, nil
	}
	principals := o.Papers.HostPrincipals
	cfg := &ssh.ClientConfig{
		Config:            sshalgo.Client(),
		User:              o.Papers.Session.ID,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer), ssh.RetryableAuthMethod(ssh.KeyboardInteractive(ask), 3)},
		HostKeyCallback:   hostErr.Wrap(traced(engineerssh.HostCertCallback(hostCA, principals, o.Device), o)),
		HostKeyAlgorithms: engineerssh.HostKeyAlgos,
		BannerCallback:    banners.Add,
		ClientVersion:     ClientVersion,
	}
	c, chans, reqs, err := ssh.NewClientConn(early, net.JoinHostPort(principals[0], "22"), cfg)
	switch {
	case err == nil:
	case hostErr.Err != nil:
		return nil, hostErr.Err
	case codeErr != nil:
		return nil, codeErr
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case strings.Contains(err.Error(), "unable to authenticate"):
		why := banners.Last()
		if why == "" {
			why = "it did not accept the session certificate"
		}
		return nil, fmt.Errorf("%s refused the login: %s", o.Device, why)
	default:
		return nil, fmt.Errorf("the SSH handshake with %s failed: %v", o.Device, err)
	}
	o.trace("auth")
	var login <-chan ssh.NewChannel
	if sshalgo.OffersLoginSession(c.ServerVersion()) {
		login, chans = engineerssh.HoldLoginSession(chans)
	}
	client := ssh.NewClient(c, chans, reqs)
	sh, err := startShell(ctx, client, login, o)
	if err != nil {
		client.Close()
		return nil, err
	}
	o.trace("shell")
	return sh, nil
}

// traced is cb, telling o's Trace of the host key's check: the key
// exchange's reply has come.
func traced(cb ssh.HostKeyCallback, o Options) ssh.HostKeyCallback {
	return func(host string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(host, remote, key)
		o.trace("hostkey")
		return err
	}
}

// startShell starts the shell in a terminal, on the session channel the
// device opened at login if login gives it: the terminal's request and the
// shell's go together, as the CLI sends them (engineerssh.StartRemote).
func startShell(ctx context.Context, client *ssh.Client, login <-chan ssh.NewChannel, o Options) (*Shell, error) {
	cols, rows := o.Cols, o.Rows
	if o.Size != nil {
		var err error
		if cols, rows, err = o.Size(ctx); err != nil {
			return nil, err
		}
	}
	if cols <= 0 || rows <= 0 {
		cols, rows = 80, 24
	}
	pty := &engineerssh.Pty{Term: "xterm-256color", Cols: cols, Rows: rows,
		Modes: ssh.TerminalModes{ssh.ECHO: 1, ssh.TTY_OP_ISPEED: 38400, ssh.TTY_OP_OSPEED: 38400}}
	var said bytes.Buffer
	sess, err := engineerssh.StartRemote(client, login, engineerssh.Remote{Pty: pty}, &said)
	switch {
	case errors.Is(err, engineerssh.ErrRemoteRefused):
		if why := strings.TrimSpace(said.String()); why != "" {
			return nil, fmt.Errorf("%s refused a shell: %s", o.Device, why)
		}
		return nil, fmt.Errorf("%s refused a shell", o.Device)
	case err != nil:
		return nil, fmt.Errorf("could not start a shell on %s: %w", o.Device, err)
	}
	go func() { _, _ = io.Copy(io.Discard, sess.Stderr()) }() // a terminal's output is all on stdout
	return &Shell{client: client, sess: sess, Output: sess}, nil
}

// Write sends p to the shell, as typed.
func (s *Shell) Write(p []byte) (int, error) { return s.sess.Write(p) }

// Resize tells the device the terminal's new size (window-change).
func (s *Shell) Resize(cols, rows int) error { return s.sess.WindowChange(cols, rows) }

// ExitError is how a shell ended other than with status 0: the status, or
// the signal that killed it.
type ExitError struct {
	Status int    // -1 for a signal
	Signal string // as RFC 4254 §6.10 names it, or ""
}

func (e *ExitError) Error() string {
	if e.Signal != "" {
		return "webssh: the shell was killed by SIG" + e.Signal
	}
	return fmt.Sprintf("webssh: the shell exited with status %d", e.Status)
}

// Wait waits for the shell to end: nil when it exited with status 0, an
// *ExitError for another status or a signal, another error when the
// connection was lost (engineerssh.ErrNoExitStatus: the channel closed
// without saying).
func (s *Shell) Wait() error {
	status, signal, err := s.sess.Wait()
	switch {
	case err != nil:
		return err
	case status == 0:
		return nil
	}
	return &ExitError{Status: status, Signal: signal}
}

// Close ends the shell and the connection.
func (s *Shell) Close() {
	s.once.Do(func() { _ = s.client.Close() })
}

// Files is the device's file system over SFTP, on the shell's connection
// (a channel of its own, as `porthole scp` opens), opened once.
func (s *Shell) Files() (*sftp.Client, error) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if s.files == nil {
		c, err := sftp.NewClient(s.client)
		if err != nil {
			return nil, fmt.Errorf("the device refused file transfer (SFTP): %w", err)
		}
		s.files = c
	}
	return s.files, nil
}

// progressChunk is how much a transfer moves between two progress reports.
const progressChunk = 256 << 10

// Upload writes data to a new file name in the login's home directory
// (only the name's last element counts: a dropped file goes there, never
// elsewhere), telling progress the bytes written so far, and returns
// where it went. An existing file of that name is not overwritten.
func (s *Shell) Upload(name string, data []byte, progress func(done int64)) (string, error) {
	fs, err := s.Files()
	if err != nil {
		return "", err
	}
	base := path.Base(strings.ReplaceAll(name, "\\", "/"))
	if base == "." || base == "/" || base == ".." {
		return "", fmt.Errorf("%q is not a file name", name)
	}
	f, err := fs.OpenFile(base, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return "", fmt.Errorf("cannot create %s on the device: %w", base, err)
	}
	var done int64
	for len(data) > 0 {
		n := min(len(data), progressChunk)
		if _, err := f.Write(data[:n]); err != nil {
			f.Close()
			return "", fmt.Errorf("writing %s on the device: %w", base, err)
		}
		data, done = data[n:], done+int64(n)
		progress(done)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("writing %s on the device: %w", base, err)
	}
	if wd, err := fs.Getwd(); err == nil {
		return path.Join(wd, base), nil
	}
	return base, nil
}

// Download reads the file at p on the device (relative to the login's
// home directory), telling progress the bytes read so far and the file's
// size.
func (s *Shell) Download(p string, progress func(done, size int64)) ([]byte, error) {
	fs, err := s.Files()
	if err != nil {
		return nil, err
	}
	f, err := fs.Open(p)
	if err != nil {
		return nil, fmt.Errorf("cannot open %s on the device: %w", p, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot read %s on the device: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s on the device is not a file", p)
	}
	var b bytes.Buffer
	buf := make([]byte, progressChunk)
	for {
		n, err := f.Read(buf)
		b.Write(buf[:n])
		progress(int64(b.Len()), fi.Size())
		if err == io.EOF {
			return b.Bytes(), nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s on the device: %w", p, err)
		}
	}
}

// ExitWords says how a shell's Wait ended, in words, when the shell ended
// by itself (an exit status); "" when the connection was lost or the
// shell was killed by a signal (the owner revoking the session, or its
// close), whose reason the API knows.
func ExitWords(err error, device string) string {
	exit, isExit := errors.AsType[*ExitError](err)
	switch {
	case err == nil:
		return "the shell on " + device + " exited"
	case isExit && exit.Signal == "":
		return fmt.Sprintf("the shell on %s exited with status %d", device, exit.Status)
	}
	return ""
}

// relayWords is the relay's refusal in words, as the CLI says it.
func relayWords(err error, device string) error {
	re, ok := errors.AsType[*relayproto.ReplyError](err)
	if !ok {
		return fmt.Errorf("lost the connection to the Porthole relay while reaching %s: %v", device, err)
	}
	return errors.New(engineerssh.RelayRefusalWords(re, device))
}
