package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// How stock OpenSSH reaches a device (`porthole ssh-config` writes the
// configuration):
//
//	Host *.porthole
//	    ProxyCommand porthole proxy --agent-socket DIR/agent/%n.sock %n
//	    IdentityAgent DIR/agent/%n.sock
//	    IdentityFile none
//
// ssh starts `porthole proxy dev1.porthole` and speaks SSH over its
// standard input and output. The proxy opens a session with a fresh key
// made in memory, as `porthole ssh` does, dials the relay and the
// direct-tcpip channel to the device, and then joins its standard input
// and output to the channel: ssh's SSH runs end to end with the device's
// embedded server, which the proxy cannot read.
//
// ssh must log in with the session's certificate, which exists only once
// the proxy has run. ssh reads its CertificateFile and IdentityFile right
// after starting the ProxyCommand, before the proxy has had a chance to
// write anything (OpenSSH 9.2 does), so a certificate written to a file
// would always be the previous session's. ssh asks its agent for keys
// only when it authenticates, after the key exchange, which cannot happen
// before the proxy passes bytes through. So the proxy serves an SSH agent
// holding the session's key and certificate on the socket that
// IdentityAgent names, created before the first byte is passed through.
// The private key never touches the disk. The socket's name comes from
// %n, so two proxies for the same host name take turns with a lock until
// their ssh has signed its login, then the socket is removed. On Windows
// the "socket" is a named pipe that only the user may open, and the pipe's
// name is its own lock (agentsock.go).

// agentSocketDir is the directory of the agents' sockets, in the CLI's
// config dir (0700), on Unix (agentSocketFor).
const agentSocketDir = "agent"

// maxSocketPath is the longest path a Unix socket may have everywhere
// (sun_path is 104 bytes on macOS, 108 on Linux, with a final NUL).
const maxSocketPath = 103

// envPorts names the device ports a session through `porthole proxy` is
// opened for (PORTHOLE_PORTS=80,443), for ssh's -L, which the proxy
// cannot see: ssh passes its environment to its ProxyCommand.
const envPorts = "PORTHOLE_PORTS"

func newProxy(a *app) *cobra.Command {
	var socket, reason string
	var ports []string
	cmd := &cobra.Command{
		Use:   "proxy HOST",
		Short: "Carry OpenSSH to a device (the ProxyCommand that ssh-config sets up)",
		Long: `Carry an OpenSSH connection to a device: ssh runs this as its ProxyCommand
for HOST (DEVICE.porthole or DEVICE.FLEET.porthole), as set up by
` + "`porthole ssh-config`" + `. It opens a session, serves the session's
certificate to ssh on --agent-socket (the socket ssh's IdentityAgent names) and
passes ssh's connection through to the device's SSH server. Progress and errors
go to standard error; the session closes when ssh exits.

A session reaches only the device ports it was opened for (and of those only
the ones the device's owner allows): to forward with ssh -L, name the device
ports with --port, or in PORTHOLE_PORTS for a ProxyCommand you do not edit.

The login it uses is the one porthole itself uses: PORTHOLE_SERVER and
PORTHOLE_TOKEN if set (ssh passes its environment on), else the saved one.

On Windows, ssh.exe reaches an agent only through a named pipe: the socket is
//./pipe/porthole-TAG-HOST, which only your account can open. ssh.exe ends its
ProxyCommand without warning, so the proxy starts a detached porthole that
closes the session once the proxy has gone.`,
		Example: "  ssh kitchen-amp.porthole\n  ssh -o ProxyCommand='porthole proxy %n' kitchen-amp.acme.porthole\n" +
			"  PORTHOLE_PORTS=8080 ssh -L 8080:localhost:8080 kitchen-amp.porthole",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ps, err := parsePortList(append(ports, a.io.Getenv(envPorts)))
			if err != nil {
				return err
			}
			return a.runProxy(cmd.Context(), args[0], socket, reason, ps)
		},
	}
	cmd.Flags().StringVar(&socket, "agent-socket", "",
		"where to serve the session's certificate to ssh (default <config dir>/agent/HOST.sock; on Windows a named pipe, //./pipe/porthole-TAG-HOST)")
	cmd.Flags().StringVar(&reason, "reason", "", "why you connect: shown to the device's owner and kept with the session")
	cmd.Flags().StringSliceVar(&ports, "port", nil, "a device port the session may forward to, for ssh -L (repeat, or 80,443; also "+envPorts+")")
	return cmd
}

func (a *app) runProxy(ctx context.Context, host, socket, reason string, ports []int) error {
	ref, err := parseHostRef(host)
	if err != nil {
		return err
	}
	if socket == "" {
		dir, err := configDir(a.io.Getenv)
		if err != nil {
			return err
		}
		socket = agentSocketFor(runtime.GOOS, dir, host)
	}
	if err := checkAgentSocket(runtime.GOOS, socket); err != nil {
		return err
	}
	// ssh ends its ProxyCommand with SIGHUP; Windows' ssh.exe with
	// TerminateProcess, against which a reaper watches (startReaper).
	ctx, stop := withSignals(ctx)
	defer stop()
	l, err := a.openLink(ctx, reachOptions{device: ref.String(), reason: reason, ports: ports, stockSSH: true})
	if err != nil {
		return err
	}
	// ssh does not wait for its ProxyCommand, but whatever reads the
	// standard error they share does: close the session on the way out,
	// without lingering on a slow server.
	defer l.closeWithin(proxyCloseTimeout)
	startReaper(a, l.session.ID)
	nc, err := l.dialDevice(ctx)
	if err != nil {
		return err
	}
	defer nc.Close()
	ag, err := serveSessionAgent(ctx, socket, host, l.key, l.cert, func(what string) { l.progress.set(what) })
	if err != nil {
		return err
	}
	defer ag.close()
	l.progress.clear()

	// From here on ssh talks to the device. ssh closes our input when it
	// is done (SSH has no half-close: it has sent its last byte), and
	// sends SIGHUP as it exits; either way the proxy is done too. The
	// device's end closes when the session ends.
	hung, hangUp := context.WithCancel(ctx)
	defer hangUp()
	fromDevice := make(chan error, 1)
	go func() {
		_, err := io.Copy(a.io.Out, nc)
		fromDevice <- err
	}()
	go func() {
		in := &readEnd{r: a.io.In}
		io.Copy(nc, in)
		if in.ended {
			hangUp() // not when the device's end failed: that is fromDevice's news
		}
		if cw, ok := nc.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}()
	select {
	case <-hung.Done():
		return nil // ssh is done with us
	case <-fromDevice:
	}
	// The device ended first: say why, unless ssh leaves before the server
	// has said (the session is open until we close it, and asking would
	// wait for nothing).
	if w := l.whyUnless(hung); w != "" {
		fmt.Fprintln(a.io.Err, "porthole:", w)
	}
	return nil
}

// proxyCloseTimeout bounds closing the session as the proxy exits.
const proxyCloseTimeout = 2 * time.Second

// readEnd is a reader that remembers whether it has ended (EOF or an
// error), so that a copy's end can be told apart from its writer's.
type readEnd struct {
	r     io.Reader
	ended bool
}

func (r *readEnd) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil {
		r.ended = true
	}
	return n, err
}

// sessionAgent is the SSH agent a proxy serves to its ssh: it lists the
// session's certificate and signs with its key, and does nothing else.
type sessionAgent struct {
	key  ssh.Signer
	cert *ssh.Certificate

	ln      net.Listener
	release func()        // lets the next proxy for the host have the socket
	signed  chan struct{} // closed at the first signature
	once    sync.Once
	mu      sync.Mutex
	conns   map[net.Conn]bool
	stopped bool
	wg      sync.WaitGroup
}

var errAgentReadOnly = errors.New("porthole's session agent holds one session certificate and takes no other keys")

// serveSessionAgent listens on path (a Unix socket, or a named pipe on
// Windows: listenAgent), waiting while another proxy for host has it and
// telling wait what it waits for, and serves the agent until the first
// signature, when it stops listening and lets the next proxy have it.
// close stops it in any case.
func serveSessionAgent(ctx context.Context, path, host string, key ssh.Signer, cert *ssh.Certificate, wait func(string)) (*sessionAgent, error) {
	ln, release, err := listenAgent(ctx, path, func() {
		wait("waiting for another ssh to " + host + " to log in…")
	})
	if err != nil {
		return nil, err
	}
	s := &sessionAgent{key: key, cert: cert, ln: ln, release: release,
		signed: make(chan struct{}), conns: map[net.Conn]bool{}}
	s.wg.Go(s.accept)
	s.wg.Go(func() {
		select {
		case <-s.signed:
			s.stopListening()
		case <-ctx.Done():
		}
	})
	return s, nil
}

func (s *sessionAgent) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Go(func() {
			agent.ServeAgent(s, c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		})
	}
}

// stopListening closes the listener and lets the next proxy have the
// socket; connections already made stay served.
func (s *sessionAgent) stopListening() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	s.stopped = true
	s.ln.Close()
	s.release()
}

func (s *sessionAgent) close() {
	s.stopListening()
	s.once.Do(func() { close(s.signed) })
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// List implements agent.Agent: the session's certificate only.
func (s *sessionAgent) List() ([]*agent.Key, error) {
	return []*agent.Key{{Format: s.cert.Type(), Blob: s.cert.Marshal(), Comment: "porthole session " + s.cert.KeyId}}, nil
}

// Sign implements agent.Agent.
func (s *sessionAgent) Sign(key ssh.PublicKey, data []byte) (*ssh.Signature, error) {
	return s.SignWithFlags(key, data, 0)
}

// SignWithFlags implements agent.ExtendedAgent.
func (s *sessionAgent) SignWithFlags(key ssh.PublicKey, data []byte, flags agent.SignatureFlags) (*ssh.Signature, error) {
	if !bytes.Equal(key.Marshal(), s.cert.Marshal()) && !bytes.Equal(key.Marshal(), s.key.PublicKey().Marshal()) {
		return nil, errors.New("porthole's session agent has no such key")
	}
	var sig *ssh.Signature
	var err error
	if as, ok := s.key.(ssh.AlgorithmSigner); ok && flags&(agent.SignatureFlagRsaSha256|agent.SignatureFlagRsaSha512) != 0 {
		algo := ssh.KeyAlgoRSASHA256
		if flags&agent.SignatureFlagRsaSha512 != 0 {
			algo = ssh.KeyAlgoRSASHA512
		}
		sig, err = as.SignWithAlgorithm(rand.Reader, data, algo)
	} else {
		sig, err = s.key.Sign(rand.Reader, data)
	}
	if err == nil {
		s.once.Do(func() { close(s.signed) })
	}
	return sig, err
}

// Add implements agent.Agent; the session agent takes no keys.
func (s *sessionAgent) Add(agent.AddedKey) error { return errAgentReadOnly }

// Remove implements agent.Agent.
func (s *sessionAgent) Remove(ssh.PublicKey) error { return errAgentReadOnly }

// RemoveAll implements agent.Agent.
func (s *sessionAgent) RemoveAll() error { return errAgentReadOnly }

// Lock implements agent.Agent.
func (s *sessionAgent) Lock([]byte) error { return errAgentReadOnly }

// Unlock implements agent.Agent.
func (s *sessionAgent) Unlock([]byte) error { return errAgentReadOnly }

// Signers implements agent.Agent; nothing outside uses it.
func (s *sessionAgent) Signers() ([]ssh.Signer, error) { return nil, errAgentReadOnly }

// Extension implements agent.ExtendedAgent.
func (s *sessionAgent) Extension(string, []byte) ([]byte, error) {
	return nil, agent.ErrExtensionUnsupported
}

var _ agent.ExtendedAgent = (*sessionAgent)(nil)

// lockPoll is how often a proxy waiting for the agent socket (its lock, or
// on Windows the pipe's name) tries again.
const lockPoll = 50 * time.Millisecond
