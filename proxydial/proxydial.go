// Package proxydial dials TCP connections through an HTTP CONNECT proxy,
// chosen for each target the way net/http chooses one (HTTPS_PROXY,
// NO_PROXY), so that the agent and the engineer's CLI reach their server
// from networks whose only way out is a proxy. It links only the standard
// library and golang.org/x/net, so the agent may use it.
//
// # Protocol flow
//
// For a target host:port that a proxy applies to:
//
//  1. TCP to the proxy (and TLS with it, for an https:// proxy URL);
//  2. "CONNECT host:port HTTP/1.1" with "Host: host:port", and
//     "Proxy-Authorization: Basic ..." when the proxy URL holds a user name
//     and password;
//  3. the proxy's answer must be "200": anything else is an *Error naming
//     the proxy and the status line it sent, and the connection is closed;
//  4. from then on the connection is a byte stream to the target. Bytes the
//     proxy sent right after its answer are kept for the first reads.
//
// Whatever runs inside (TLS to the server, with its certificate pinned)
// runs end to end: the proxy sees only the target's address and ciphertext.
package proxydial

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// DialFunc dials a connection, as net.Dialer's DialContext does.
type DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// maxAnswer bounds the proxy's answer to a CONNECT (status line and
// headers).
const maxAnswer = 64 << 10

// Dialer dials through the proxy that Proxy picks for each target. The
// zero value follows the environment (HTTPS_PROXY, NO_PROXY) and dials with
// a net.Dialer.
type Dialer struct {
	// Proxy picks the proxy for a target; a nil URL means none. Nil:
	// FromEnvironment, read at each dial.
	Proxy ProxyFunc
	// Forward dials the proxy, or the target itself when no proxy
	// applies. Nil: a net.Dialer's.
	Forward DialFunc
	// TLSConfig is for an https:// proxy (the connection to the proxy
	// itself). Nil: the system's roots. An empty ServerName is the proxy
	// URL's host.
	TLSConfig *tls.Config
}

// Dial is a Dialer following the environment.
func Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d Dialer
	return d.DialContext(ctx, network, addr)
}

// DialContext connects to addr (host:port) through the proxy that
// d.Proxy picks for it, or directly when none applies. Failures at the
// proxy are *Error.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	pick := d.Proxy
	if pick == nil {
		pick = FromEnvironment()
	}
	proxy, err := pick(addr)
	if err != nil {
		return nil, err
	}
	forward := d.Forward
	if forward == nil {
		var nd net.Dialer
		forward = nd.DialContext
	}
	if proxy == nil {
		return forward(ctx, network, addr)
	}
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("proxydial: cannot carry %s to %s through the proxy %s: only TCP", network, addr, proxy.Redacted())
	}
	return d.tunnel(ctx, forward, proxy, addr)
}

// tunnel dials the proxy and asks it for a tunnel to addr.
func (d *Dialer) tunnel(ctx context.Context, forward DialFunc, proxy *url.URL, addr string) (_ net.Conn, err error) {
	fail := func(e *Error) error {
		e.Proxy, e.Target = proxy.Redacted(), addr
		return e
	}
	c, err := forward(ctx, "tcp", proxyAddr(proxy))
	if err != nil {
		return nil, fail(&Error{Err: err})
	}
	defer func() {
		if err != nil {
			_ = c.Close()
		}
	}()
	// The exchange ends with ctx: a proxy that does not answer is not
	// waited for longer than the caller would wait for the target. (Not
	// by a deadline on the connection: that could pass a moment before
	// ctx says so, and the caller would not learn it was its timeout.)
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if proxy.Scheme == "https" {
		cfg := d.TLSConfig.Clone()
		if cfg == nil {
			cfg = &tls.Config{}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = proxy.Hostname()
		}
		cfg.NextProtos = []string{"http/1.1"}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fail(&Error{Err: ctxErr(ctx, fmt.Errorf("TLS with the proxy: %w", err))})
		}
		c = tc
	}
	req := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Opaque: addr},
		Host:   addr,
		Header: http.Header{"User-Agent": {"porthole"}},
	}
	if u := proxy.User; u != nil {
		pw, _ := u.Password()
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pw)))
	}
	if err := req.Write(c); err != nil {
		return nil, fail(&Error{Err: ctxErr(ctx, fmt.Errorf("sending the CONNECT: %w", err))})
	}
	br := bufio.NewReader(io.LimitReader(c, maxAnswer))
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isTimeout(err) {
			return nil, fail(&Error{Err: ctxErr(ctx, fmt.Errorf("reading its answer to the CONNECT: %w", err))})
		}
		return nil, fail(&Error{Garbled: true, Err: err})
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fail(&Error{StatusCode: resp.StatusCode, Status: resp.Proto + " " + resp.Status, Auth: proxy.User != nil})
	}
	if !stop() {
		return nil, fail(&Error{Err: ctx.Err()})
	}
	_ = c.SetDeadline(time.Time{})
	if n := br.Buffered(); n > 0 {
		early, _ := br.Peek(n)
		return &earlyConn{Conn: c, early: bytes.Clone(early)}, nil
	}
	return c, nil
}

// ctxErr is ctx's error, wrapped with what was being done, when ctx has
// ended: a deadline the proxy did not meet is the caller's timeout.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// proxyAddr is the proxy's host:port, with its scheme's default port.
func proxyAddr(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// earlyConn is a tunnel whose first bytes the proxy sent together with
// its answer: they are read before the connection's.
type earlyConn struct {
	net.Conn
	early []byte // not read yet; only Read touches it
}

func (c *earlyConn) Read(p []byte) (int, error) {
	if len(c.early) > 0 {
		n := copy(p, c.early)
		c.early = c.early[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// Error is a connection the proxy did not make: it could not be reached,
// it refused the tunnel (Status), or it answered something other than HTTP
// (Garbled).
type Error struct {
	Proxy  string // the proxy's URL, its password left out
	Target string // the host:port asked for
	// StatusCode and Status are the proxy's refusal: 407 and
	// "HTTP/1.1 407 Proxy Authentication Required". Zero and empty when
	// it did not answer in HTTP.
	StatusCode int
	Status     string
	// Auth: the proxy URL held a user name and password.
	Auth bool
	// Garbled: the proxy answered, but not in HTTP; Err says how.
	Garbled bool
	// Err is why there was no answer (or what was garbled); nil for a
	// refusal.
	Err error
}

func (e *Error) Error() string { return "proxydial: " + e.Message() }

// Unwrap is the cause of a failure to reach the proxy.
func (e *Error) Unwrap() error { return e.Err }

// Message says what went wrong in a sentence for a person, with what to
// check.
func (e *Error) Message() string {
	switch {
	case e.Status != "":
		msg := fmt.Sprintf("the proxy %s refused a tunnel to %s: it answered %q", e.Proxy, e.Target, e.Status)
		switch {
		case e.StatusCode == http.StatusProxyAuthRequired && e.Auth:
			msg += "; it did not take the user name and password in the proxy URL"
		case e.StatusCode == http.StatusProxyAuthRequired:
			msg += "; it wants a user name and password: give them in the proxy URL, http://USER:PASSWORD@HOST:PORT"
		case e.StatusCode == http.StatusForbidden:
			msg += "; it does not let this machine tunnel there (its administrator may allow CONNECT to that port), or the target should bypass it (NO_PROXY)"
		}
		return msg
	case e.Garbled:
		return fmt.Sprintf("the proxy %s answered the CONNECT to %s with something other than HTTP (%v): is it an HTTP proxy?", e.Proxy, e.Target, e.Err)
	}
	return fmt.Sprintf("cannot reach %s through the proxy %s: %v", e.Target, e.Proxy, e.Err)
}
