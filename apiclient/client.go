// Package apiclient is the Go client of Porthole's HTTP API, used by the
// engineer CLI and by the agent's enrollment. It pins the server's TLS
// certificate by fingerprint when one is given (Porthole servers usually run
// with a self-signed certificate) and otherwise trusts the system roots. It
// reaches the server through the HTTP CONNECT proxy the environment names
// (HTTPS_PROXY, NO_PROXY; see package proxydial) unless told otherwise.
package apiclient

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/proxydial"
)

// Options configures a Client. The zero value talks to a server whose
// certificate the system trusts, without a token.
type Options struct {
	// Token is the bearer token; empty for unauthenticated calls (login,
	// enroll).
	Token string
	// Fingerprint pins the server certificate ("sha256:<hex>" of its DER).
	// Empty: verify against the system roots.
	Fingerprint string
	// Timeout bounds each request; zero means 30 s.
	Timeout time.Duration
	// Device, instead of Token, authenticates a device's own calls (its
	// support requests, its uploads) with its enrolled key.
	Device *DeviceCredentials
	// NetDial dials the server's host:port. Nil: through the HTTP CONNECT
	// proxy HTTPS_PROXY names, unless NO_PROXY excludes the server, else
	// directly (proxydial.Dial).
	NetDial proxydial.DialFunc
	// Now is the clock a device's credentials are made by, before any
	// correction learnt from the server. Nil: time.Now.
	Now func() time.Time
}

// DeviceCredentials are an enrolled device's identity: each request
// carries a credential signed with its key for that one request
// (control.SignDeviceRequest), which the server accepts once, within
// minutes.
type DeviceCredentials struct {
	Fleet, Device string
	Key           ed25519.PrivateKey
}

// Client calls one Porthole server. It is safe for concurrent use.
type Client struct {
	base   *url.URL
	token  string
	device *DeviceCredentials
	http   *http.Client
	dial   proxydial.DialFunc
	// clockOffset is the server's clock less this one's, in nanoseconds,
	// as a device learnt it from a refusal (see learnClock).
	clockOffset atomic.Int64
	now         func() time.Time
}

// Error is an error answered by the server, with the message it gave for
// people.
type Error struct {
	Status  int
	Code    string // one of the apitype.Code* constants
	Message string
}

func (e *Error) Error() string { return e.Message }

// IsCode reports whether err is an *Error with the given code.
func IsCode(err error, code string) bool {
	var ae *Error
	return errors.As(err, &ae) && ae.Code == code
}

// ErrFingerprintMismatch means the server presented a certificate other than
// the pinned one.
var ErrFingerprintMismatch = errors.New("apiclient: server certificate does not match the pinned fingerprint")

// New returns a client of the server at baseURL (https://host:port).
func New(baseURL string, opts Options) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("server address %q is not a URL like https://porthole.example.com:8443", baseURL)
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	dial := opts.NetDial
	if dial == nil {
		dial = (&proxydial.Dialer{Proxy: proxydial.FromEnvironment(), Forward: (&net.Dialer{Timeout: 30 * time.Second}).DialContext}).DialContext
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// A proxy is taken by dial, not by net/http's Proxy, so that the API
	// and the relay (DialContext) go the same way and fail in the same
	// words. The pin still holds through a proxy: CONNECT makes a tunnel
	// in which the TLS handshake runs end to end with the server, and the
	// pin is checked against the certificate the server itself shows.
	// A proxy that terminated TLS would show its own, and be refused.
	tr.Proxy = nil
	tr.DialContext = dial
	if opts.Fingerprint != "" {
		want, err := parseFingerprint(opts.Fingerprint)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = &tls.Config{
			// The chain is not verified against roots: the pin replaces it.
			InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 {
					return ErrFingerprintMismatch
				}
				got := sha256.Sum256(cs.PeerCertificates[0].Raw)
				if subtle.ConstantTimeCompare(got[:], want) != 1 {
					return fmt.Errorf("%w (got %s, pinned %s): the server's certificate changed, or this is not your server",
						ErrFingerprintMismatch, Fingerprint(cs.PeerCertificates[0]), opts.Fingerprint)
				}
				return nil
			},
		}
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Client{base: u, token: opts.Token, device: opts.Device, http: &http.Client{Transport: tr, Timeout: timeout}, dial: dial, now: now}, nil
}

// DialContext dials addr (host:port) the way the client reaches the API:
// through the same proxy, if one applies. The relay's connections use it.
func (c *Client) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return c.dial(ctx, network, addr)
}

// Fingerprint formats a certificate's pin: "sha256:" and the hex SHA-256 of
// its DER encoding.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func parseFingerprint(s string) ([]byte, error) {
	h, ok := strings.CutPrefix(s, "sha256:")
	b, err := hex.DecodeString(h)
	if !ok || err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("fingerprint %q is not of the form sha256:<64 hex digits>", s)
	}
	return b, nil
}

// FetchFingerprint connects to the server without verifying its certificate
// and returns the certificate's fingerprint and whether the system roots
// trust it, for trust on first use. Nothing is sent but the TLS handshake.
// dial reaches the server; nil: as Options.NetDial's nil does.
func FetchFingerprint(ctx context.Context, baseURL string, dial proxydial.DialFunc) (fp string, systemTrusted bool, err error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" {
		return "", false, fmt.Errorf("server address %q is not a URL like https://porthole.example.com:8443", baseURL)
	}
	if u.Scheme != "https" {
		return "", false, fmt.Errorf("server address %q must start with https://", baseURL)
	}
	host := ServerAddr(u)
	if dial == nil {
		dial = proxydial.Dial
	}
	nc, err := dial(ctx, "tcp", host)
	if err != nil {
		return "", false, fmt.Errorf("cannot reach %s: %w", host, err)
	}
	defer nc.Close()
	conn := tls.Client(nc, &tls.Config{InsecureSkipVerify: true, ServerName: u.Hostname()})
	if err := conn.HandshakeContext(ctx); err != nil {
		return "", false, fmt.Errorf("cannot reach %s: %w", host, err)
	}
	cs := conn.ConnectionState()
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, verr := leaf.Verify(x509.VerifyOptions{DNSName: u.Hostname(), Intermediates: inter})
	return Fingerprint(leaf), verr == nil, nil
}

// Do sends a request with a JSON body (in may be nil) and decodes a JSON
// answer into out (may be nil). Non-2xx answers become *Error. path is the
// escaped path under the server's base URL ("/api/v1/fleets/" +
// PathSegment(name)).
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("apiclient: encode %s %s: %w", method, path, err)
		}
		body = b
	}
	resp, err := c.send(ctx, method, path, query, body, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("reading the server's answer to %s %s: %w", method, path, err)
	}
	if err := answerError(resp, data, method, path); err != nil {
		return err
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("the server's answer to %s %s is not what this client understands: %w", method, path, err)
	}
	return nil
}

// send sends method to path?query with body (nil: none) of contentType,
// authorized as the client is, and returns the answer unread, whatever its
// status. A device refused for its clock corrects for it by the server's
// Date and sends once more.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, body []byte, contentType string) (*http.Response, error) {
	u := *c.base
	// path arrives escaped (callers escape each segment with PathSegment),
	// so a name holding "/" or "?" stays one segment.
	u.RawPath = c.base.EscapedPath() + path
	p, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return nil, fmt.Errorf("apiclient: request path %q: %w", path, err)
	}
	u.Path = p
	if query != nil {
		u.RawQuery = query.Encode()
	}
	tries, clockFixed := 0, false
	for {
		tries++
		var r io.Reader
		if body != nil {
			r = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
		if err != nil {
			return nil, fmt.Errorf("apiclient: %w", err)
		}
		if body != nil {
			req.Header.Set("Content-Type", contentType)
		}
		req.Header.Set("Accept", "application/json")
		c.authorize(req, body)
		resp, err := c.http.Do(req)
		if again(ctx, method, resp, err, tries) {
			if resp != nil {
				resp.Body.Close()
			}
			continue
		}
		if err != nil {
			if errors.Is(err, ErrFingerprintMismatch) {
				return nil, err
			}
			return nil, fmt.Errorf("cannot reach the Porthole server at %s: %w", c.base.Host, err)
		}
		if !clockFixed && c.device != nil && c.learnClock(resp) {
			clockFixed = true
			resp.Body.Close()
			continue
		}
		return resp, nil
	}
}

// retryWaits are the pauses before each new try of a request that may be
// sent again (again).
var retryWaits = []time.Duration{200 * time.Millisecond, 600 * time.Millisecond}

// again reports whether a request that ended with resp or err is sent
// once more, after waiting its turn. A GET or HEAD is, when it did not
// reach a server or its answer was lost (a node that died under it) or it
// was answered 502, 503 or 504 (a load balancer with no node for it yet,
// a node going away). A PUT or DELETE only when it provably reached no
// server (its connection could not be made): sent twice, a PUT could undo
// a change made in between, and a DELETE would report the thing already
// gone. A POST never: it could open a second session.
func again(ctx context.Context, method string, resp *http.Response, err error, tries int) bool {
	if tries > len(retryWaits) || ctx.Err() != nil || errors.Is(err, ErrFingerprintMismatch) {
		return false
	}
	switch method {
	case http.MethodGet, http.MethodHead:
		if err == nil && resp.StatusCode != http.StatusBadGateway && resp.StatusCode != http.StatusServiceUnavailable &&
			resp.StatusCode != http.StatusGatewayTimeout {
			return false
		}
	case http.MethodPut, http.MethodDelete:
		if dialErr := (*net.OpError)(nil); err == nil || !errors.As(err, &dialErr) || dialErr.Op != "dial" {
			return false
		}
	default:
		return false
	}
	t := time.NewTimer(retryWaits[tries-1])
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// ServerTime asks the server for its time: the Date of its answer to
// GET /healthz, which comes over the connection this client checked (the
// pin), so no one between can forge or replay it. A Date has whole
// seconds: half a second is added, the mean of what it dropped.
func (c *Client) ServerTime(ctx context.Context) (time.Time, error) {
	resp, err := c.send(ctx, http.MethodGet, "/healthz", nil, nil, "")
	if err != nil {
		return time.Time{}, err
	}
	resp.Body.Close()
	t, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return time.Time{}, fmt.Errorf("the server at %s did not say its time (Date: %q)", c.base.Host, resp.Header.Get("Date"))
	}
	return t.Add(500 * time.Millisecond), nil
}

// authorize sets req's Authorization: the bearer token, or a device's
// credential made for this one request and its body.
func (c *Client) authorize(req *http.Request, body []byte) {
	switch {
	case c.token != "":
		req.Header.Set("Authorization", "Bearer "+c.token)
	case c.device != nil:
		d := c.device
		now := c.now().Add(time.Duration(c.clockOffset.Load()))
		digest := control.BodyDigest(body)
		req.Header.Set(control.ContentDigestHeader, control.FormatContentDigest(digest))
		req.Header.Set("Authorization", apitype.DeviceAuthScheme+" "+d.Fleet+"/"+d.Device+" "+
			control.SignDeviceRequest(d.Key, d.Fleet, d.Device, req.Method, req.URL.RequestURI(), digest, now))
	}
}

// learnClock reports whether resp refused a device's credential for its
// time, and if so sets the client's clock offset from the server's Date.
// The answer comes over the TLS connection the client checked, from the
// server whose clock the credential must match.
func (c *Client) learnClock(resp *http.Response) bool {
	if resp.StatusCode != http.StatusUnauthorized ||
		!strings.Contains(resp.Header.Get("Www-Authenticate"), `error="clock_skew"`) {
		return false
	}
	server, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return false
	}
	c.clockOffset.Store(int64(server.Sub(c.now())))
	return true
}

// answerError turns a non-2xx answer into an *Error, as Do does.
func answerError(resp *http.Response, body []byte, method, path string) error {
	if resp.StatusCode/100 == 2 {
		return nil
	}
	var eb apitype.ErrorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error.Message != "" {
		return &Error{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	return &Error{Status: resp.StatusCode, Code: apitype.CodeInternal,
		Message: fmt.Sprintf("the server answered %s to %s %s", resp.Status, method, path)}
}

// Enroll asks the server to enroll a device. The enrollment token in req
// authenticates it.
func (c *Client) Enroll(ctx context.Context, req apitype.EnrollRequest) (*apitype.EnrollResponse, error) {
	var resp apitype.EnrollResponse
	if err := c.Do(ctx, http.MethodPost, "/api/v1/enroll", nil, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// RelayAddr is the server's "host:port", where its relay also listens
// (ALPN relayproto.ALPN), and the TLS configuration that reaches it as
// this client reaches the API (the same pin).
func (c *Client) RelayAddr() (string, *tls.Config) {
	var cfg *tls.Config
	if tr, ok := c.http.Transport.(*http.Transport); ok && tr.TLSClientConfig != nil {
		cfg = tr.TLSClientConfig.Clone()
	}
	return ServerAddr(c.base), cfg
}

// ServerAddr is the "host:port" a server's https:// URL names, with 443
// when it names no port: where its API, broker and relay all listen.
func ServerAddr(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), "443")
}
