package proxydial

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode"
)

// scriptedConn is a proxy that answers with the bytes it holds, whatever
// is sent to it.
type scriptedConn struct {
	answer *bytes.Reader
}

func (c *scriptedConn) Read(p []byte) (int, error)       { return c.answer.Read(p) }
func (c *scriptedConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *scriptedConn) Close() error                     { return nil }
func (c *scriptedConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *scriptedConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *scriptedConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptedConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptedConn) SetWriteDeadline(time.Time) error { return nil }

var _ net.Conn = (*scriptedConn)(nil)

// printable reports whether s holds nothing that would drive a terminal.
func printable(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsGraphic(r) })
}

// FuzzProxyAnswer: whatever a proxy answers to the CONNECT, the dial
// gives a tunnel only for a 200, and the tunnel then reads exactly the
// bytes that followed the answer's header, none lost or doubled; any
// other answer is an *Error whose message shows neither the proxy's
// password nor anything that would drive a terminal.
func FuzzProxyAnswer(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 Connection established\r\n\r\nSSH-2.0-OpenSSH\r\n",
		"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello world",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n",
		"HTTP/1.1 403 \x1b[31mForbidden\r\n\r\n",
		"SSH-2.0-OpenSSH\r\n",
		"HTTP/1.1 200",
		"",
	} {
		f.Add([]byte(s))
	}
	proxy := &url.URL{Scheme: "http", User: url.UserPassword("ann", "s3cret-pw"), Host: "proxy.example:3128"}
	f.Fuzz(func(t *testing.T, answer []byte) {
		d := &Dialer{Proxy: always(proxy), Forward: func(context.Context, string, string) (net.Conn, error) {
			return &scriptedConn{answer: bytes.NewReader(answer)}, nil
		}}
		c, err := d.DialContext(context.Background(), "tcp", "device.example:443")
		if err != nil {
			var pe *Error
			msg := err.Error()
			if !errors.As(err, &pe) || strings.Contains(msg, "s3cret") || !printable(msg) {
				t.Fatalf("answer %q: %v", answer, msg)
			}
			return
		}
		end := bytes.Index(answer, []byte("\n\r\n"))
		if lf := bytes.Index(answer, []byte("\n\n")); lf >= 0 && (end < 0 || lf < end) {
			end = lf - 1
		}
		if !bytes.HasPrefix(answer, []byte("HTTP/")) || end < 0 {
			t.Fatalf("answer %q gave a tunnel", answer)
		}
		got, err := io.ReadAll(c)
		if want := answer[end+3:]; err != nil || !bytes.Equal(got, want) {
			t.Fatalf("answer %q: the tunnel reads %q, %v; want %q", answer, got, err, want)
		}
	})
}

// FuzzParseURL: a proxy URL from a config file or the environment,
// written as scheme://user:password@host plus the rest. What ParseURL
// accepts is an http or https URL of a host and a valid port that parses
// back to itself; what it refuses, it says without the password.
func FuzzParseURL(f *testing.F) {
	f.Add("http", "ann", "s3cret-pw", "proxy.example:3128", "")
	f.Add("https", "", "p@ss:word", "[::1]", "/")
	f.Add("http", "ann", "s3cret-pw", "proxy.example:0", "")
	f.Add("socks5", "a b", "s3cret-pw", "proxy.example", "/path?q#f")
	f.Add("http", "ann", "s3cret%zz", "proxy.example", "")
	f.Add("HTTP", "%41", "s3cret-pw", "proxy.example:99999", "")
	f.Fuzz(func(t *testing.T, scheme, user, password, host, rest string) {
		s := scheme + "://" + user + ":" + password + "@" + host + rest
		u, err := ParseURL(s)
		if err != nil {
			secret := len(password) >= 4 && !strings.Contains(scheme+"://"+user+":@"+host+rest, password)
			if secret && strings.Contains(err.Error(), password) {
				t.Fatalf("ParseURL(%q): %v", s, err)
			}
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Hostname() == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("ParseURL(%q) = %#v", s, u)
		}
		again, err := ParseURL(u.String())
		if err != nil || again.String() != u.String() {
			t.Fatalf("ParseURL(%q) = %q, which parses as %v, %v", s, u, again, err)
		}
	})
}
