package cli

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/proxydial"
)

// Environment variables that stand in for a login.
const (
	envServer      = "PORTHOLE_SERVER"
	envToken       = "PORTHOLE_TOKEN"
	envFingerprint = "PORTHOLE_FINGERPRINT"
)

// target is the server a command talks to and how it proves who it is.
type target struct {
	server       string // normalized URL; "" when none is known
	token        string // bearer token; "" when not logged in
	tokenFromEnv bool
	fingerprint  string    // certificate pin; "" to trust the system roots
	expires      time.Time // of a saved token; zero when unknown
}

// resolveTarget merges, in order of precedence, the --server flag, the
// environment and the saved login. A saved token goes only to the server
// it was issued by: pointing porthole at another server must never hand
// that server our token.
func resolveTarget(flagServer string, getenv func(string) string, c Config) (target, error) {
	raw := flagServer
	if raw == "" {
		raw = getenv(envServer)
	}
	if raw == "" {
		raw = c.Server
	}
	if raw == "" {
		return target{}, nil
	}
	server, err := normalizeServer(raw)
	if err != nil {
		return target{}, err
	}
	t := target{server: server, fingerprint: getenv(envFingerprint)}
	if t.fingerprint == "" {
		t.fingerprint = c.Pins[server]
	}
	if tok := getenv(envToken); tok != "" {
		t.token, t.tokenFromEnv = tok, true
	} else if saved, err := normalizeServer(c.Server); err == nil && saved == server {
		t.token, t.expires = c.Token, c.ExpiresAt
	}
	return t, nil
}

// normalizeServer turns what a person types ("porthole.example.com:8443",
// "https://porthole.example.com/") into the one form used as the key of a
// pin: https, lower-case host, no default port, no trailing slash. Plain
// http is refused: it would carry passwords and tokens in the clear.
func normalizeServer(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q is not a server address like https://porthole.example.com:8443", raw)
	}
	if u.Scheme != "https" {
		return "", fmt.Errorf("%q does not use https: porthole sends passwords and tokens only over TLS", raw)
	}
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if p := u.Port(); p != "" && p != "443" {
		host += ":" + p
	}
	return "https://" + host + strings.TrimRight(u.EscapedPath(), "/"), nil
}

// connect returns a client of the server the command should talk to, with
// the login for it, or says how to log in.
func (a *app) connect() (*apiclient.Client, error) {
	_, c, err := a.loadConfig()
	if err != nil {
		return nil, err
	}
	t, err := resolveTarget(a.server, a.io.Getenv, c)
	if err != nil {
		return nil, err
	}
	a.target = t
	switch {
	case t.server == "":
		return nil, notLoggedIn("not logged in: run `porthole login SERVER`, or set %s and %s", envServer, envToken)
	case t.token == "":
		return nil, notLoggedIn("not logged in to %s: run `porthole login %s`, or set %s", t.server, t.server, envToken)
	case !t.expires.IsZero() && !a.now().Before(t.expires):
		return nil, notLoggedIn("your login to %s expired at %s: run `porthole login`", t.server, formatTime(t.expires))
	}
	return apiclient.New(t.server, apiclient.Options{Token: t.token, Fingerprint: t.fingerprint, NetDial: a.netDial()})
}

// netDial reaches the server, and the relay on its port: through the HTTP
// CONNECT proxy HTTPS_PROXY names, unless NO_PROXY lists the server (nor
// for localhost and loopback), as curl and Go's net/http do.
func (a *app) netDial() proxydial.DialFunc {
	return (&proxydial.Dialer{Proxy: proxydial.FromGetenv(a.io.Getenv)}).DialContext
}

// withClient connects, runs call, and on success tells the user what was
// done (done and args as for fmt.Printf) on stderr.
func (a *app) withClient(call func(*apiclient.Client) error, done string, args ...any) error {
	c, err := a.connect()
	if err != nil {
		return err
	}
	if err := call(c); err != nil {
		return err
	}
	fmt.Fprintf(a.io.Err, done+"\n", args...)
	return nil
}
