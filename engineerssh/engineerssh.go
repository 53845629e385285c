// Package engineerssh is the engineer's side of the end-to-end SSH with a
// device, shared by the porthole CLI and the web console's browser
// terminal (compiled to WebAssembly): the session key, the checks of the
// papers the API answers a new session with, the device's host
// certificate checked against the host CA for the names the API gives, the
// banners a device explains a refusal in, the relay's refusals in words,
// the early version line, and the shell or command started on a session
// channel with its requests sent at once (on the channel the device opens
// at login, where it offers one).
package engineerssh

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/relay/relayproto"
)

// ClientVersion is the identification the CLI's SSH client sends to
// devices (see EarlyVersion).
const ClientVersion = "SSH-2.0-Porthole"

// HostKeyAlgos are the host key algorithms asked of the relay and
// devices: certificates first, since only a certificate from the host CA
// is ever trusted. Plain keys come last only so that a server without a
// certificate is refused by HostCertCallback in plain words, rather than
// with "no common algorithm".
var HostKeyAlgos = []string{
	ssh.CertAlgoED25519v01, ssh.CertAlgoECDSA256v01, ssh.CertAlgoECDSA384v01, ssh.CertAlgoECDSA521v01,
	ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01,
	ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256,
}

// NewSessionKey makes the engineer's key for one session, in memory.
func NewSessionKey() (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("making a key: %w", err)
	}
	return ssh.NewSignerFromKey(priv)
}

// ParsePapers reads the certificate and host CA the server answered
// with, and checks that the certificate is for key.
func ParsePapers(r *apitype.CreateSessionResponse, key ssh.PublicKey) (*ssh.Certificate, ssh.PublicKey, error) {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(r.Certificate))
	cert, ok := pub.(*ssh.Certificate)
	if err != nil || !ok || cert.CertType != ssh.UserCert {
		return nil, nil, errors.New("the server answered without a valid session certificate: tell your operator")
	}
	if !bytes.Equal(cert.Key.Marshal(), key.Marshal()) {
		return nil, nil, errors.New("the server certified another key than the one porthole sent: tell your operator")
	}
	hostCA, _, _, _, err := ssh.ParseAuthorizedKey([]byte(r.HostCA))
	if err != nil {
		return nil, nil, errors.New("the server answered without a valid host CA key: tell your operator")
	}
	if len(r.HostPrincipals) == 0 {
		return nil, nil, errors.New("the server did not say which names the device's host certificate carries: tell your operator")
	}
	if r.RelayAddr == "" {
		return nil, nil, errors.New("the server did not say where its relay is: it may run without the relay role; tell your operator")
	}
	return cert, hostCA, nil
}

// HostCertCallback accepts only a host certificate signed by ca, valid
// now, for one of principals. what names the host in errors.
func HostCertCallback(ca ssh.PublicKey, principals []string, what string) ssh.HostKeyCallback {
	return func(_ string, _ net.Addr, key ssh.PublicKey) error {
		cert, ok := key.(*ssh.Certificate)
		if !ok || cert.CertType != ssh.HostCert {
			return fmt.Errorf("%s showed a host key that is not certified by the Porthole host CA: refusing to connect", what)
		}
		if !bytes.Equal(cert.SignatureKey.Marshal(), ca.Marshal()) {
			return fmt.Errorf("%s showed a host certificate from another CA than this server's: refusing to connect", what)
		}
		checker := &ssh.CertChecker{}
		var last error
		for _, p := range principals {
			if last = checker.CheckCert(p, cert); last == nil {
				return nil
			}
		}
		return fmt.Errorf("%s showed a host certificate that is not valid for %s (%v): refusing to connect",
			what, strings.Join(principals, " or "), last)
	}
}

// HostKeyError keeps what a host key callback refused, since x/crypto
// wraps it in a generic handshake error.
type HostKeyError struct{ Err error }

func (h *HostKeyError) Wrap(cb ssh.HostKeyCallback) ssh.HostKeyCallback {
	return func(host string, remote net.Addr, key ssh.PublicKey) error {
		h.Err = cb(host, remote, key)
		return h.Err
	}
}

// BannerLog keeps the banners an SSH server sent during login: the relay
// and the device say there why they refused one.
type BannerLog struct {
	mu    sync.Mutex
	msgs  []string
	shown int
}

func (b *BannerLog) Add(msg string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.msgs = append(b.msgs, msg)
	return nil
}

// last is the latest banner, without the "porthole: " or "porthole
// relay: " its senders begin with; "" if none came.
func (b *BannerLog) Last() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.msgs) == 0 {
		return ""
	}
	m := strings.TrimSpace(b.msgs[len(b.msgs)-1])
	for _, prefix := range []string{"porthole relay: ", "porthole: "} {
		m = strings.TrimPrefix(m, prefix)
	}
	return m
}

// flush writes the banners not yet shown.
func (b *BannerLog) Flush(w io.Writer) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.msgs[b.shown:] {
		fmt.Fprint(w, strings.TrimRight(m, "\r\n")+"\n")
	}
	b.shown = len(b.msgs)
}

// EarlyVersion sends the SSH client's identification line (RFC 4253 §4.2)
// at once, before x/crypto's client starts, and drops the client's own
// later write of that same line, its first write. The device's server
// sends its key exchange only once it has read the client's line: sent
// early, it waits at the relay with the hello, and the device answers as
// soon as the relay joins the two.
type EarlyVersion struct {
	net.Conn
	line    []byte
	dropped atomic.Bool // the client's own version line went by
}

func NewEarlyVersion(c net.Conn, version string) (*EarlyVersion, error) {
	e := &EarlyVersion{Conn: c, line: []byte(version + "\r\n")}
	if _, err := c.Write(e.line); err != nil {
		return nil, err
	}
	return e, nil
}

// SentEarlyVersion is NewEarlyVersion for a line that was sent on c
// already (by the web console's page, ahead of its client).
func SentEarlyVersion(c net.Conn, version string) *EarlyVersion {
	return &EarlyVersion{Conn: c, line: []byte(version + "\r\n")}
}

func (e *EarlyVersion) Write(p []byte) (int, error) {
	if e.dropped.CompareAndSwap(false, true) {
		if !bytes.Equal(p, e.line) {
			return 0, fmt.Errorf("porthole: the SSH client's first write is not its version line %q", e.line)
		}
		return len(p), nil
	}
	return e.Conn.Write(p)
}

// RelayRefusalWords says why the relay refused an engineer's stream to
// device, and what to do.
func RelayRefusalWords(re *relayproto.ReplyError, device string) string {
	switch re.Code {
	case relayproto.CodeNoDevice:
		return fmt.Sprintf("%s did not come to the relay in time; try again", device)
	case relayproto.CodeUnavailable:
		return fmt.Sprintf("the Porthole relay could not take the session just now (%s); try again in a moment", strings.TrimPrefix(re.Error(), "porthole relay: "))
	}
	return "the Porthole relay refused the session: " + re.Error()
}
