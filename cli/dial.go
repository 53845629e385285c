package cli

// The data path, as the engineer's side walks it (package relay documents
// the relay's side, package agentssh the device's):
//
//  1. A fresh ed25519 key is made in memory; its private half never
//     touches the disk.
//  2. POST /api/v1/sessions names DEVICE ("dev1", "dev1.acme",
//     "acme/dev1"); the server finds it among the user's fleets. (A server
//     that predates that route is asked GET /api/v1/devices?name= first,
//     then POST /api/v1/devices/{id}/sessions.)
//  3. The answer certifies the key for one session on that device and
//     names the relay's address, the host CA and the names the device's
//     host certificate carries.
//  4. The session is followed with long polls until it is active (the
//     device has reached the relay), with a progress line on stderr. A
//     session that closes instead is explained in plain words; Ctrl-C
//     closes it. In a fleet whose policy needs a second engineer
//     (four-eyes), it first waits for one to approve it, saying what they
//     run.
//  5. The relay is dialed: SSH with the session id as user name, the
//     certificate as the key, and the relay's host certificate checked
//     against the host CA for the relay address's host name. A
//     "direct-tcpip" channel to host <session id>, port 22, is then a byte
//     stream to the device's embedded SSH server.
//  6. Over that stream runs the end-to-end SSH: the same certificate, the
//     device's host certificate checked against the host CA for one of its
//     names, and the owner's support code by keyboard-interactive if the
//     device asks for it (--code, or a prompt on the terminal).
//  7. At the end the connections are closed and the session is closed with
//     DELETE /api/v1/sessions/{id}.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/engineerssh"
	"github.com/porthole/porthole/humanize"
	"github.com/porthole/porthole/proxydial"
	"github.com/porthole/porthole/relay/relayproto"
	"github.com/porthole/porthole/sshalgo"
)

const (
	// pollWait is how long one long poll of a session waits on the server.
	pollWait = 25 * time.Second
	// relayHandshakeTimeout bounds the TCP dial and SSH handshake with the
	// relay.
	relayHandshakeTimeout = 20 * time.Second
	// deviceHandshakeTimeout bounds the SSH handshake with the device,
	// long enough for the engineer to type the owner's code; the device
	// keeps its own, shorter, limit.
	deviceHandshakeTimeout = 2 * time.Minute
	// closeTimeout bounds closing the session on the way out.
	closeTimeout = 10 * time.Second
)

// envTransport forces the relay's WebSocket (PORTHOLE_TRANSPORT=websocket)
// instead of trying its ALPN protocol first.
const envTransport = "PORTHOLE_TRANSPORT"

// reachOptions is what a data-path command asks of a session.
type reachOptions struct {
	device string // DEVICE as typed
	fleet  string // --fleet
	ports  []int  // device ports to forward to
	code   string // --code: the owner's support code, if the device asks
	reason string // --reason: shown to the owner, kept with the session
	// stockSSH: the SSH client is not porthole's own (porthole proxy
	// hands the stream to stock ssh), so its version line is its own.
	stockSSH bool
	// loginSession: the command runs a shell or a command, and asks the
	// device to open its session channel as the login ends (see
	// sshalgo.LoginSessionChannel).
	loginSession bool
}

// link is one session on its way up or open: the API client that opened
// it, the engineer's certified key, the relay connection and, once made,
// the end-to-end SSH connection to the device. close ends all of it.
type link struct {
	a        *app
	c        *apiclient.Client
	device   apitype.Device
	opened   *apitype.CreateSessionResponse
	session  apitype.Session // as last seen
	key      ssh.Signer      // the bare key, for an agent
	cert     *ssh.Certificate
	signer   ssh.Signer // the key with its certificate
	hostCA   ssh.PublicKey
	code     string
	stockSSH bool // see reachOptions
	version  string
	progress *progress
	// loginSession gives the session channel the device opened at login,
	// once, if it offered one; it is closed if the connection ends first.
	// Nil when none was asked for or offered.
	loginSession <-chan ssh.NewChannel

	closeOnce sync.Once
	mu        sync.Mutex  // guards the fields below
	stream    net.Conn    // the relay's second protocol: the stream to the device, as its SSH client uses it
	relay     *ssh.Client // the SSH relay, for a server that predates it
	inner     *ssh.Client // the end-to-end connection, when made
	closed    bool
}

// withSignals is ctx cancelled also by SIGTERM and SIGHUP (a closed
// terminal, or ssh ending its ProxyCommand), so that the session is closed
// on the way out rather than left to time out. Ctrl-C already cancels the
// context main passes in. On Windows, Go delivers a console's closing, a
// logoff and a shutdown as SIGTERM, and SIGHUP never comes.
func withSignals(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
}

// reach opens a session on the device o names and the end-to-end SSH
// connection to it. The caller must close the link.
func (a *app) reach(ctx context.Context, o reachOptions) (*link, *ssh.Client, error) {
	l, err := a.openLink(ctx, o)
	if err != nil {
		return nil, nil, err
	}
	nc, err := l.dialDevice(ctx)
	if err != nil {
		l.close()
		return nil, nil, err
	}
	client, err := l.deviceSSH(ctx, nc)
	if err != nil {
		l.close()
		return nil, nil, err
	}
	l.progress.clear()
	return l, client, nil
}

// openLink does steps 1 to 5: a session on the device, active, and the
// relay dialed. On error nothing is left open.
func (a *app) openLink(ctx context.Context, o reachOptions) (*link, error) {
	ref, err := parseDeviceRef(o.device, o.fleet)
	if err != nil {
		return nil, err
	}
	c, err := a.connect()
	if err != nil {
		return nil, err
	}
	key, err := engineerssh.NewSessionKey()
	if err != nil {
		return nil, err
	}
	l := &link{a: a, c: c, device: apitype.Device{Name: ref.name, Fleet: ref.fleet}, key: key, code: o.code, stockSSH: o.stockSSH,
		version: engineerssh.ClientVersion, progress: newProgress(a.io.Err, terminalFd(a.io.Err) >= 0, a.now)}
	if o.loginSession {
		l.version += " " + sshalgo.LoginSessionWord
	}
	l.progress.set("asking " + ref.name + " to connect…")
	req := apitype.CreateSessionRequest{
		PublicKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key.PublicKey()))),
		Ports:     o.ports, Reason: o.reason,
	}
	resp, err := l.create(ctx, ref, req)
	if apiclient.IsCode(err, apitype.CodeReauthRequired) && ctx.Err() == nil {
		// The fleet asks for a fresh second factor: ask for the code
		// (not under porthole proxy, whose stdin is ssh's), send it and
		// ask again, once.
		l.progress.clear()
		if err = a.reauthAndRetry(ctx, c, err, !o.stockSSH, "connect"); err == nil {
			l.progress.set("asking " + ref.name + " to connect…")
			resp, err = l.create(ctx, ref, req)
		}
	}
	if err != nil {
		l.progress.clear()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	l.opened, l.session = resp, resp.Session
	l.device = apitype.Device{ID: resp.Session.DeviceID, Name: resp.Session.Device, Fleet: resp.Session.Fleet}
	if ctx.Err() != nil {
		l.close()
		return nil, ctx.Err()
	}
	if err := l.up(ctx); err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}

// create asks the server for a session on the device ref names, in one
// request; a server that predates that route is asked in two, the device
// looked up first. A device the server did not find, or found in several
// fleets, is looked up as it was before, for the words that say which
// fleets and how to name one. Ctrl-C during a request must not lose the
// session's id, or the session would stay open until the device's connect
// timeout: the request runs to its end (the client bounds it), then Ctrl-C
// counts.
func (l *link) create(ctx context.Context, ref deviceRef, req apitype.CreateSessionRequest) (*apitype.CreateSessionResponse, error) {
	byName := req
	byName.Device, byName.Fleet = ref.name, ref.fleet
	resp, err := l.c.CreateSessionByName(context.WithoutCancel(ctx), byName)
	var ae *apiclient.Error
	if !errors.As(err, &ae) || (ae.Code != apitype.CodeNotFound && ae.Code != apitype.CodeConflict && ae.Status != http.StatusMethodNotAllowed) {
		return resp, err
	}
	dev, rerr := resolveDevice(ctx, l.c, ref)
	if rerr != nil {
		return nil, rerr
	}
	if ae.Status != http.StatusMethodNotAllowed {
		return nil, err // found now: the server's words stand
	}
	return l.c.CreateSession(context.WithoutCancel(ctx), dev.ID, req)
}

// up checks the session's papers, waits for it and dials the relay.
func (l *link) up(ctx context.Context) error {
	cert, hostCA, err := engineerssh.ParsePapers(l.opened, l.key.PublicKey())
	if err != nil {
		return err
	}
	l.cert, l.hostCA = cert, hostCA
	if l.signer, err = ssh.NewCertSigner(cert, l.key); err != nil {
		return fmt.Errorf("the server's session certificate does not fit the key: %w", err)
	}
	if l.opened.FourEyesRequest != "" && l.session.State == apitype.SessionRequested {
		// The device is asked only once a second engineer approves, and
		// the relay holds no stream for the session until then.
		if err := l.waitSecondEngineer(ctx); err != nil {
			return err
		}
	}
	err = l.dialStream(ctx)
	if !errors.Is(err, relayproto.ErrNotSupported) {
		return err
	}
	if err := l.waitActive(ctx); err != nil {
		return err
	}
	return l.dialRelay(ctx)
}

// dialStream reaches the device through the relay's second protocol, on
// the port of the relay the session was placed on (the server's own with
// one node): it dials at once, while the device is being
// woken, and the relay holds the stream until the device comes. Meanwhile
// the session is followed, for the progress line and for the words if it
// closes instead. relayproto.ErrNotSupported: the server predates it.
func (l *link) dialStream(ctx context.Context) error {
	addr, cfg := l.c.RelayAddr()
	if placed := l.opened.Relay2Addr; placed != "" {
		// The relay node the session was placed on, where its device
		// goes too; every node presents the server's pinned certificate.
		addr = placed
	}
	dctx, cancel := context.WithTimeout(ctx, relayHandshakeTimeout)
	defer cancel()
	// Through the proxy the API calls take, if any: the relay is on the
	// same port. A network that passes HTTPS but not the relay's ALPN
	// protocol (a firewall that inspects what TLS clients ask for) still
	// passes a WebSocket: that is tried next, or first if
	// PORTHOLE_TRANSPORT=websocket says so.
	var conn *relayproto.Conn
	var err error
	if l.a.io.Getenv(envTransport) != "websocket" {
		conn, err = relayproto.DialEngineer(dctx, addr, cfg, l.c.DialContext, l.signer, l.cert)
	}
	if conn == nil && !errors.Is(err, relayproto.ErrNotSupported) && dctx.Err() == nil {
		wsConn, wsErr := relayproto.DialEngineerWebSocket(dctx, addr, cfg, l.c.DialContext, l.signer, l.cert)
		if wsErr == nil {
			conn, err = wsConn, nil
		} else if err == nil {
			err = wsErr
		}
	}
	switch {
	case errors.Is(err, relayproto.ErrNotSupported):
		return err
	case err != nil && ctx.Err() != nil:
		return ctx.Err()
	case relayproto.ClosedByPeer(err):
		return relayTurnedAway(addr, err)
	case err != nil:
		return &userError{msg: fmt.Sprintf("cannot reach the Porthole relay at %s: %s", addr, dialWords(err)), err: err}
	}
	// The SSH version line goes out with the hello: the device answers its
	// own and its key exchange as soon as the relay joins them, a round
	// trip sooner than if it waited for ours. (Stock ssh writes its own.)
	var early net.Conn = conn
	if !l.stockSSH {
		if early, err = engineerssh.NewEarlyVersion(conn, l.version); err != nil {
			conn.Close()
			return &userError{msg: fmt.Sprintf("lost the connection to the relay at %s: %v", addr, err), err: err}
		}
	}
	l.mu.Lock()
	closed := l.closed
	l.stream = early
	l.mu.Unlock()
	if closed {
		conn.Close()
		return context.Canceled
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	replied := make(chan error, 1)
	go func() { replied <- conn.Wait() }()
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watched := make(chan error, 1)
	go func() { watched <- l.waitActive(wctx) }()
	for {
		select {
		case err := <-replied:
			stopWatch()
			if watched != nil {
				<-watched // it writes l.session and the progress line
			}
			if err == nil {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if w := l.why(ctx); w != "" {
				return &userError{msg: w, err: err} // the session closed meanwhile
			}
			if re, ok := errors.AsType[*relayproto.ReplyError](err); ok {
				return &userError{msg: engineerssh.RelayRefusalWords(re, l.device.Name), err: err}
			}
			if relayproto.ClosedByPeer(err) {
				return relayTurnedAway(addr, err)
			}
			return &userError{msg: fmt.Sprintf("lost the connection to the relay while reaching %s: %v", l.device.Name, err), err: err}
		case err := <-watched:
			watched = nil
			if err != nil { // closed instead, or the server failed
				conn.Close()
				<-replied
				return err
			}
			// active: the relay's word is on its way
		}
	}
}

// waitActive follows the session until it is active. Each long poll waits
// for the state after the one seen, so that the progress line follows
// connecting → waiting_consent → active.
func (l *link) waitActive(ctx context.Context) error {
	s := l.session
	for {
		switch s.State {
		case apitype.SessionActive:
			l.session = s
			return nil
		case apitype.SessionClosed:
			l.session = s
			return &userError{msg: sessionEndWords(s, l.device.Name)}
		case apitype.SessionWaitingConsent:
			// "waiting for the owner of dev1 to approve (4:32 left)"
			stop := l.approvalCountdown(ctx, s.ID)
			next, err := l.c.WaitSession(ctx, s.ID, nextState(s.State), pollWait)
			stop()
			if err != nil {
				return err
			}
			s = *next
			continue
		default:
			l.progress.set("asking " + l.device.Name + " to connect…")
		}
		next, err := l.c.WaitSession(ctx, s.ID, nextState(s.State), pollWait)
		if err != nil {
			return err
		}
		s = *next
	}
}

// nextState is the state to long-poll for after st. The server asks the
// device first (connecting); a device whose owner must approve then says
// so (waiting_consent).
func nextState(st string) string {
	switch st {
	case apitype.SessionRequested:
		return apitype.SessionConnecting
	case apitype.SessionConnecting:
		return apitype.SessionWaitingConsent
	}
	return apitype.SessionActive
}

// dialRelay does step 5's first half: TCP and SSH to the relay.
func (l *link) dialRelay(ctx context.Context) error {
	addr := l.opened.RelayAddr
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("the server named its relay %q, which is not host:port: tell your operator", addr)
	}
	ctx, cancel := context.WithTimeout(ctx, relayHandshakeTimeout)
	defer cancel()
	// The SSH relay's own port, through the proxy the API calls take if
	// one applies (a proxy may allow CONNECT to 443 only, and say so).
	nc, err := l.c.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil && context.Cause(ctx) == context.DeadlineExceeded {
			return &userError{msg: fmt.Sprintf("the Porthole relay at %s did not answer in time: check your network, or tell your operator", addr), err: err}
		}
		if errors.Is(err, context.Canceled) {
			return err
		}
		return &userError{msg: fmt.Sprintf("cannot reach the Porthole relay at %s: %s", addr, dialWords(err)), err: err}
	}
	banners := &engineerssh.BannerLog{}
	hostErr := &engineerssh.HostKeyError{}
	cfg := &ssh.ClientConfig{
		User:              l.session.ID,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(l.signer)},
		HostKeyCallback:   hostErr.Wrap(engineerssh.HostCertCallback(l.hostCA, []string{host}, "the relay at "+addr)),
		HostKeyAlgorithms: engineerssh.HostKeyAlgos,
		BannerCallback:    banners.Add,
	}
	client, err := clientHandshake(ctx, nc, addr, cfg)
	switch {
	case err == nil:
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.closed {
			client.Close()
			return context.Canceled
		}
		l.relay = client
		return nil
	case hostErr.Err != nil:
		return &userError{msg: hostErr.Err.Error(), err: err}
	case isAuthFailure(err):
		if w := l.why(ctx); w != "" {
			return &userError{msg: w, err: err} // the session closed meanwhile
		}
		why := banners.Last()
		if why == "" {
			why = "it did not accept the session certificate"
		}
		return &userError{msg: "the Porthole relay refused the login: " + why, err: err}
	case relayproto.ClosedByPeer(err):
		return relayTurnedAway(addr, err)
	case errors.Is(err, context.DeadlineExceeded):
		return &userError{msg: fmt.Sprintf("the Porthole relay at %s did not finish the SSH handshake in time", addr), err: err}
	case errors.Is(err, context.Canceled):
		return err
	}
	return &userError{msg: fmt.Sprintf("the SSH handshake with the Porthole relay at %s failed: %v", addr, err), err: err}
}

// dialDevice opens the relay channel to the device's SSH server.
func (l *link) dialDevice(ctx context.Context) (net.Conn, error) {
	l.mu.Lock()
	relay, stream := l.relay, l.stream
	l.mu.Unlock()
	if stream != nil {
		return stream, nil
	}
	nc, err := relay.DialContext(ctx, "tcp", net.JoinHostPort(l.session.ID, "22"))
	if err != nil {
		var oce *ssh.OpenChannelError
		if errors.As(err, &oce) {
			return nil, &userError{msg: fmt.Sprintf("the relay could not reach %s: %s", l.device.Name, oce.Message), err: err}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &userError{msg: fmt.Sprintf("lost the connection to the relay while reaching %s: %v", l.device.Name, err), err: err}
	}
	return nc, nil
}

// deviceSSH runs step 6 over nc: the end-to-end SSH with the device.
func (l *link) deviceSSH(ctx context.Context, nc net.Conn) (*ssh.Client, error) {
	banners := &engineerssh.BannerLog{}
	hostErr := &engineerssh.HostKeyError{}
	ask := &codeAsker{l: l, banners: banners}
	auth := []ssh.AuthMethod{ssh.PublicKeys(l.signer)}
	if l.code != "" {
		auth = append(auth, ssh.KeyboardInteractive(ask.answer))
	} else {
		auth = append(auth, ssh.RetryableAuthMethod(ssh.KeyboardInteractive(ask.answer), 3))
	}
	principals := l.opened.HostPrincipals
	cfg := &ssh.ClientConfig{
		Config:            sshalgo.Client(), // ML-KEM, and AES-GCM or ChaCha20, as the device prefers
		User:              l.session.ID,     // the device goes by the certificate, not the name
		Auth:              auth,
		HostKeyCallback:   hostErr.Wrap(engineerssh.HostCertCallback(l.hostCA, principals, l.device.Name)),
		HostKeyAlgorithms: engineerssh.HostKeyAlgos,
		BannerCallback:    banners.Add,
		ClientVersion:     l.version,
	}
	hctx, cancel := context.WithTimeout(ctx, deviceHandshakeTimeout)
	defer cancel()
	conn, chans, reqs, err := clientConn(hctx, nc, net.JoinHostPort(principals[0], "22"), cfg)
	var client *ssh.Client
	if err == nil {
		if sshalgo.OffersLoginSession([]byte(l.version)) && sshalgo.OffersLoginSession(conn.ServerVersion()) {
			l.loginSession, chans = engineerssh.HoldLoginSession(chans)
		}
		client = ssh.NewClient(conn, chans, reqs)
	}
	switch {
	case err == nil:
		l.progress.clear()
		banners.Flush(l.a.io.Err)
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.closed {
			client.Close()
			return nil, context.Canceled
		}
		l.inner = client
		return client, nil
	case hostErr.Err != nil:
		return nil, &userError{msg: hostErr.Err.Error(), err: err}
	case ask.err != nil:
		return nil, ask.err
	case isAuthFailure(err):
		if w := l.why(ctx); w != "" {
			return nil, &userError{msg: w, err: err} // the session closed meanwhile
		}
		why := banners.Last()
		if why == "" {
			why = "it did not accept the session certificate"
		}
		return nil, &userError{msg: fmt.Sprintf("%s refused the login: %s", l.device.Name, why), err: err}
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case hctx.Err() != nil:
		return nil, &userError{msg: fmt.Sprintf("%s did not finish the SSH handshake within %s", l.device.Name, humanize.Duration(deviceHandshakeTimeout)), err: err}
	}
	if w := l.why(ctx); w != "" {
		return nil, &userError{msg: w, err: err}
	}
	return nil, &userError{msg: fmt.Sprintf("the SSH handshake with %s failed: %v", l.device.Name, err), err: err}
}

// why says why the session ended, if the server says it has; "" if it is
// still open or cannot be asked. It asks even when ctx has been cancelled
// (Ctrl-C), for a few seconds at most.
func (l *link) why(ctx context.Context) string {
	return l.whyUnless(context.WithoutCancel(ctx))
}

// whyWait is how long the server is given to say why a session's
// connection ended. The connection may end a moment before the server hears
// why (the device's tunnel_down); a device that dropped off the relay
// without a word (a power cut, its network cut) is given 5 s to say why
// before the server closes its sessions as device_disconnected (package
// daemon's deviceLeftGrace): wait past that, so that the engineer reads
// that reason rather than a bare "the connection ended".
const whyWait = 8 * time.Second

// whyUnless is why, given up as soon as ctx ends.
func (l *link) whyUnless(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, whyWait+2*time.Second)
	defer cancel()
	s, err := l.c.WaitSession(ctx, l.session.ID, apitype.SessionClosed, whyWait)
	if err != nil || s.State != apitype.SessionClosed {
		return ""
	}
	return sessionEndWords(*s, l.device.Name)
}

// close ends the connections and closes the session on the server. It may
// be called more than once and from several goroutines (Ctrl-C cutting a
// copy short); every call returns once the session is closed, so that the
// program does not exit before the server has heard.
func (l *link) close() { l.closeWithin(closeTimeout) }

// closeWithin is close, giving the server at most d to hear of it.
func (l *link) closeWithin(d time.Duration) { l.closeOnce.Do(func() { l.closeNow(d) }) }

func (l *link) closeNow(d time.Duration) {
	l.mu.Lock()
	l.closed = true
	inner, relay, stream := l.inner, l.relay, l.stream
	l.mu.Unlock()
	l.progress.clear()
	if inner != nil {
		inner.Close()
	}
	if stream != nil {
		stream.Close()
	}
	if relay != nil {
		relay.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if _, err := l.c.CloseSession(ctx, l.session.ID); err != nil {
		fmt.Fprintf(l.a.io.Err, "porthole: could not close session %s (%v): it closes by itself when idle, or run `porthole close %s`\n",
			l.session.ID, err, l.session.ID)
	}
}

// clientHandshake runs an SSH client handshake over nc, cut short when ctx
// ends.
func clientHandshake(ctx context.Context, nc net.Conn, addr string, cfg *ssh.ClientConfig) (*ssh.Client, error) {
	conn, chans, reqs, err := clientConn(ctx, nc, addr, cfg)
	if err != nil {
		return nil, err
	}
	return ssh.NewClient(conn, chans, reqs), nil
}

// clientConn is clientHandshake's connection, before the channels the
// server opens are served.
func clientConn(ctx context.Context, nc net.Conn, addr string, cfg *ssh.ClientConfig) (ssh.Conn, <-chan ssh.NewChannel, <-chan *ssh.Request, error) {
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	conn, chans, reqs, err := ssh.NewClientConn(nc, addr, cfg)
	if !stop() {
		if err == nil {
			conn.Close()
		}
		nc.Close()
		return nil, nil, nil, context.Cause(ctx)
	}
	if err != nil {
		nc.Close()
		return nil, nil, nil, err
	}
	return conn, chans, reqs, nil
}

// isAuthFailure reports whether an SSH handshake failed at authentication.
func isAuthFailure(err error) bool {
	return err != nil && strings.Contains(err.Error(), "unable to authenticate")
}

// dialWords is a failed dial in words: the proxy's, if it failed there
// (proxydial.Error says which proxy and why), else the cause without the
// "dial tcp 1.2.3.4:5:" prefix.
func dialWords(err error) string {
	if pe, ok := errors.AsType[*proxydial.Error](err); ok {
		return pe.Message()
	}
	return unwrapOp(err).Error()
}

// unwrapOp drops the "dial tcp 1.2.3.4:5:" prefix of a dial error.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// codeAsker answers the device's keyboard-interactive questions (the
// owner's support code): with --code, or by asking on the terminal.
type codeAsker struct {
	l       *link
	banners *engineerssh.BannerLog
	tries   int
	err     error // why no answer could be given, to report rather than "unable to authenticate"
}

func (c *codeAsker) answer(name, instruction string, questions []string, echos []bool) ([]string, error) {
	if len(questions) == 0 {
		return nil, nil // some servers send an empty round first
	}
	c.tries++
	l := c.l
	if l.code != "" {
		answers := make([]string, len(questions))
		for i := range answers {
			answers[i] = l.code
		}
		return answers, nil
	}
	fd := terminalFd(l.a.io.In)
	if fd < 0 {
		c.err = &userError{msg: fmt.Sprintf("%s asks for its owner's support code: give it with --code CODE", l.device.Name)}
		return nil, c.err
	}
	l.progress.clear()
	c.banners.Flush(l.a.io.Err) // "wrong support code; 3 tries left"
	w := l.a.io.Err
	for _, s := range []string{name, instruction} {
		if s = strings.TrimSpace(s); s != "" {
			fmt.Fprintln(w, s)
		}
	}
	answers := make([]string, len(questions))
	for i, q := range questions {
		b, err := readSecret(fd, w, q)
		fmt.Fprintln(w)
		if err != nil {
			c.err = fmt.Errorf("reading the answer to %q: %w", strings.TrimSpace(q), err)
			return nil, c.err
		}
		answers[i] = strings.TrimSpace(string(b))
	}
	return answers, nil
}
