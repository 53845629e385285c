package agentssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/sessioncert"
	"github.com/porthole/porthole/sshalgo"
)

// closeGrace is how long channels may take, once a session has been
// closed, to tell the engineer why before the connection is cut. Their
// processes are killed at once, before it starts.
const closeGrace = 500 * time.Millisecond

// Server is the device's SSH server. It holds no connections of its own:
// each ServeConn serves one.
type Server struct {
	cfg     Config
	allow   map[int]bool // AllowPorts
	log     *slog.Logger
	cgroups *sessionCgroups
}

// New checks cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	var missing []string
	if cfg.HostKey == nil {
		missing = append(missing, "HostKey")
	}
	if cfg.UserCA == nil {
		missing = append(missing, "UserCA")
	}
	if cfg.Fleet == "" || cfg.Device == "" || cfg.DeviceID == "" {
		missing = append(missing, "Fleet, Device and DeviceID")
	}
	if cfg.SessionOpen == nil {
		missing = append(missing, "SessionOpen")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: it needs %s", ErrConfig, strings.Join(missing, ", "))
	}
	allow := map[int]bool{}
	for _, p := range cfg.AllowPorts {
		if p < 1 || p > 65535 {
			return nil, fmt.Errorf("%w: allowed port %d is not a TCP port (1-65535)", ErrConfig, p)
		}
		allow[p] = true
	}
	acct, err := lookupAccount(cfg.RunAs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if len(cfg.SFTPCommand) > 0 && !filepath.IsAbs(cfg.SFTPCommand[0]) {
		return nil, fmt.Errorf("%w: SFTPCommand must start with an absolute path, not %q", ErrConfig, cfg.SFTPCommand[0])
	}
	if acct.cred != nil && len(cfg.SFTPCommand) == 0 {
		return nil, fmt.Errorf("%w: SFTP as %q needs an SFTPCommand that runs as that user", ErrConfig, acct.Name)
	}
	cfg.AllowPorts = slices.Clone(cfg.AllowPorts)
	cfg.SFTPCommand = slices.Clone(cfg.SFTPCommand)
	log := cfg.logger().With("component", "agentssh")
	return &Server{cfg: cfg, allow: allow, log: log, cgroups: newSessionCgroups(log)}, nil
}

// conn is one engineer's SSH connection.
type conn struct {
	srv     *Server
	session string
	log     *slog.Logger
	acct    *account

	// sshdEnv is SSH_CLIENT and SSH_CONNECTION for its processes.
	sshdEnv []string
	// cgroup is its session's, where its processes start; nil if none.
	cgroup *sessionCgroup

	// Set during authentication, read after it.
	claims sessioncert.Claims
	denied string // why the last authentication attempt failed, for the log

	channels atomic.Int64 // channels opened, to number them
}

// ServeConn runs one engineer's SSH connection over nc (a relay channel
// wrapped as a net.Conn, see ChannelConn) for session. It returns when the
// connection ends or ctx is done; it closes nc. Cancelling ctx means the
// session was closed: every process of the connection is killed at once,
// engineers are told why (context.Cause(ctx), when it is not
// context.Canceled, else "the session was closed"), and the connection is
// cut. An engineer hanging up and a cancelled ctx return nil; a refused
// login or a failed handshake returns an error.
func (s *Server) ServeConn(ctx context.Context, nc net.Conn, session string) error {
	log := s.log.With("session", session)
	if nc.RemoteAddr() != nil {
		log = log.With("remote", nc.RemoteAddr().String())
	}
	// The account is read again for every connection, so an edited
	// /etc/passwd applies without a restart.
	acct, err := lookupAccount(s.cfg.RunAs)
	if err != nil {
		nc.Close()
		return fmt.Errorf("agentssh: %w", err)
	}
	c := &conn{srv: s, session: session, log: log, acct: acct, sshdEnv: sshdEnv(nc.RemoteAddr(), nc.LocalAddr())}
	// The session's processes die with it, all of them (cgroup.go).
	c.cgroup = s.cgroups.serve(ctx, session)

	hsCtx, hsCancel := context.WithTimeout(ctx, s.cfg.handshakeTimeout())
	stop := context.AfterFunc(hsCtx, func() { nc.Close() })
	sconn, chans, reqs, err := ssh.NewServerConn(nc, c.serverConfig())
	interrupted := !stop()
	hsCancel()
	if err == nil && interrupted {
		sconn.Close()
		err = net.ErrClosed
	}
	if err != nil {
		nc.Close()
		switch {
		case ctx.Err() != nil:
			return nil
		case interrupted:
			log.Info("login took too long", "limit", s.cfg.handshakeTimeout())
			return fmt.Errorf("agentssh: login did not finish within %v", s.cfg.handshakeTimeout())
		case c.denied != "":
			log.Info("login refused", "reason", c.denied)
			return fmt.Errorf("agentssh: login refused: %s", c.denied)
		}
		var authErr *ssh.ServerAuthError
		if errors.As(err, &authErr) {
			log.Info("login refused", "reason", "no session certificate offered")
			return errors.New("agentssh: login refused: the client offered no session certificate")
		}
		log.Info("handshake failed", "err", err)
		return fmt.Errorf("agentssh: handshake: %w", err)
	}
	log = log.With("user", c.claims.User)
	c.log = log
	log.Info("engineer connected", append([]any{"client", string(sconn.ClientVersion())}, algorithms(sconn)...)...)
	if r := s.cfg.Recorder; r != nil {
		r.Connected(session, c.claims)
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	wg.Go(func() { c.globalRequests(reqs) })
	if sshalgo.OffersLoginSession(sconn.ClientVersion()) {
		// The client's session channel, opened from here as the login
		// ends, rather than by the client a round trip later.
		id := int(c.channels.Add(1))
		wg.Go(func() {
			ch, creqs, err := sconn.OpenChannel(sshalgo.LoginSessionChannel, nil)
			if err != nil {
				return // the client declined it, or left
			}
			c.serveSessionChannel(ctx, ch, creqs, id)
		})
	}
	closed := false
loop:
	for {
		select {
		case newCh, ok := <-chans:
			if !ok {
				break loop // the engineer hung up
			}
			c.activity()
			id := int(c.channels.Add(1))
			switch newCh.ChannelType() {
			case "session":
				wg.Go(func() { c.serveSession(ctx, newCh, id) })
			case "direct-tcpip":
				wg.Go(func() { c.serveDirectTCPIP(ctx, newCh) })
			default:
				log.Info("refused channel", "type", newCh.ChannelType())
				newCh.Reject(ssh.UnknownChannelType, fmt.Sprintf("porthole: %q channels are not served here", newCh.ChannelType()))
			}
		case <-ctx.Done():
			closed = true
			break loop
		}
	}
	if closed {
		// Channels kill their processes and say why; give them a moment
		// to reach the engineer, then cut.
		log.Info("session closed: ending the connection", "reason", closedReason(ctx))
		waitFor(&wg, closeGrace)
	}
	reason := ""
	if closed {
		reason = closedReason(ctx)
	}
	cancel(nil)
	sconn.Close()
	go func() {
		for newCh := range chans {
			newCh.Reject(ssh.Prohibited, "porthole: the session is closing")
		}
	}()
	wg.Wait()
	if r := s.cfg.Recorder; r != nil {
		r.Disconnected(session, reason)
	}
	log.Info("engineer disconnected")
	return nil
}

// sshdEnv is SSH_CLIENT ("client_ip client_port server_port") and
// SSH_CONNECTION ("client_ip client_port server_ip server_port") as sshd
// sets them, from the connection's addresses: bash reads ~/.bashrc for a
// command (bash -c) when SSH_CLIENT is set, and scripts look at them. An
// address that is not an IP address and port (a relay channel's) is
// "0.0.0.0 0".
func sshdEnv(remote, local net.Addr) []string {
	cip, cport := ipPort(remote)
	sip, sport := ipPort(local)
	return []string{
		fmt.Sprintf("SSH_CLIENT=%s %d %d", cip, cport, sport),
		fmt.Sprintf("SSH_CONNECTION=%s %d %s %d", cip, cport, sip, sport),
	}
}

func ipPort(a net.Addr) (string, uint16) {
	var ap netip.AddrPort
	switch a := a.(type) {
	case nil:
	case *net.TCPAddr:
		ap = a.AddrPort()
	default:
		ap, _ = netip.ParseAddrPort(a.String())
	}
	if !ap.Addr().IsValid() {
		return "0.0.0.0", 0
	}
	return ap.Addr().Unmap().String(), ap.Port()
}

// algorithms are the key exchange and ciphers a connection agreed on, as
// log attributes.
func algorithms(sconn *ssh.ServerConn) []any {
	m, ok := sconn.Conn.(ssh.AlgorithmsConnMetadata)
	if !ok {
		return nil
	}
	a := m.Algorithms()
	return []any{"kex", a.KeyExchange, "cipher_in", a.Read.Cipher, "cipher_out", a.Write.Cipher}
}

// waitFor waits for wg, at most d.
func waitFor(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// full is why the session may carry nothing more because it can no
// longer be recorded (Recorder.Full), or "".
func (c *conn) full() string {
	if r := c.srv.cfg.Recorder; r != nil {
		return r.Full(c.session)
	}
	return ""
}

func (c *conn) activity() {
	if f := c.srv.cfg.Activity; f != nil {
		f(c.session)
	}
}

// globalRequests answers the connection's global requests: keep-alives
// yes, remote forwards (tcpip-forward) and everything else no.
func (c *conn) globalRequests(reqs <-chan *ssh.Request) {
	for req := range reqs {
		switch req.Type {
		case "keepalive@openssh.com":
			req.Reply(true, nil)
		case "tcpip-forward":
			c.log.Info("refused a remote forward: the device opens no ports")
			req.Reply(false, nil)
		default:
			req.Reply(false, nil)
		}
	}
}

// serverConfig builds the connection's SSH configuration: a session
// certificate first, then the second factor where there is one. The SSH
// user name is ignored: stock ssh sends the laptop's.
func (c *conn) serverConfig() *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		// ML-KEM first; the cipher family this processor runs fastest,
		// and only that one, so that stock OpenSSH cannot pick another.
		Config:        sshalgo.Server(),
		ServerVersion: "SSH-2.0-PortholeAgent " + sshalgo.LoginSessionWord,
		// Checked on every offer of a key, before the client proves it
		// holds it: no work beyond parsing and one signature check.
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			_, err := c.checkCert(key)
			return nil, err
		},
		// Decides, once the client has proven it holds the key: the
		// checks run again (the session may have closed in between),
		// then the second factor.
		VerifiedPublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey, _ *ssh.Permissions, _ string) (*ssh.Permissions, error) {
			claims, err := c.checkCert(key)
			if err != nil {
				return nil, err
			}
			c.claims = claims
			if sf := c.srv.cfg.SecondFactor; sf != nil {
				prompt, check := sf(c.session)
				if check != nil {
					return nil, &ssh.PartialSuccessError{Next: ssh.ServerAuthCallbacks{
						KeyboardInteractiveCallback: c.secondFactor(prompt, check),
					}}
				}
			}
			return &ssh.Permissions{}, nil
		},
		AuthLogCallback: func(_ ssh.ConnMetadata, method string, err error) {
			var partial *ssh.PartialSuccessError
			if err != nil && method != "none" && !errors.As(err, &partial) {
				c.denied = method + ": " + err.Error()
			}
		},
	}
	cfg.AddHostKey(c.srv.cfg.HostKey)
	return cfg
}

// checkCert decides whether key lets its holder into this connection's
// session. What the engineer may learn is said in a banner; a bare key or
// a stranger's certificate gets none (ssh tries every key it has, and
// says "Permission denied" well enough).
func (c *conn) checkCert(key ssh.PublicKey) (sessioncert.Claims, error) {
	cfg := &c.srv.cfg
	claims, err := sessioncert.Verify(cfg.UserCA, key, cfg.now())
	if err != nil {
		if cert, ok := key.(*ssh.Certificate); ok && bytes.Equal(cert.SignatureKey.Marshal(), cfg.UserCA.Marshal()) {
			return claims, refusal("this session certificate is not valid now: %v; run `porthole ssh %s` again for a new one", err, cfg.Device)
		}
		return claims, err
	}
	switch {
	case claims.Fleet != cfg.Fleet || claims.Device != cfg.Device || claims.DeviceID != cfg.DeviceID:
		return claims, refusal("this certificate is for another device (%s/%s, id %s)", claims.Fleet, claims.Device, claims.DeviceID)
	case claims.Session != c.session:
		return claims, refusal("this certificate is for session %s, not this one", claims.Session)
	case !cfg.SessionOpen(c.session):
		return claims, refusal("session %s is not open on %s (it has ended, or the owner has not let it in)", c.session, cfg.Device)
	}
	return claims, nil
}

// refusal is an authentication error the engineer sees as a banner.
func refusal(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return &ssh.BannerError{Err: errors.New(msg), Message: "porthole: " + msg + "\n"}
}

// secondFactor asks for the owner's code with keyboard-interactive.
func (c *conn) secondFactor(prompt string, check func(string) error) func(ssh.ConnMetadata, ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
	if prompt == "" {
		prompt = "Support code for " + c.srv.cfg.Device + ": "
	}
	return func(_ ssh.ConnMetadata, challenge ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
		if !c.srv.cfg.SessionOpen(c.session) {
			return nil, refusal("session %s is no longer open", c.session)
		}
		answers, err := challenge("", "", []string{prompt}, []bool{false})
		if err != nil {
			return nil, err
		}
		if len(answers) != 1 {
			return nil, errors.New("expected one answer")
		}
		if err := check(answers[0]); err != nil {
			return nil, &ssh.BannerError{Err: err, Message: "porthole: " + err.Error() + "\n"}
		}
		return &ssh.Permissions{}, nil
	}
}
