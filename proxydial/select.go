package proxydial

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// ProxyFunc picks the proxy for a target host:port: nil for none.
type ProxyFunc func(addr string) (*url.URL, error)

// Direct picks no proxy.
func Direct(string) (*url.URL, error) { return nil, nil }

// FromEnvironment picks proxies as net/http does for an https:// URL: the
// proxy HTTPS_PROXY names (https_proxy first; a bare host:port means
// http://), except for the targets NO_PROXY (no_proxy) names, localhost
// and loopback addresses. Every target is looked up as an https:// URL to
// it would be, since what the agent and the CLI send is TLS (a plain
// mqtt:// broker's stream goes through the tunnel all the same): HTTP_PROXY
// and ALL_PROXY are not used. The environment is read now; a value that is
// not a proxy URL makes every dial fail, saying so.
func FromEnvironment() ProxyFunc { return FromGetenv(os.Getenv) }

// FromGetenv is FromEnvironment with getenv standing in for os.Getenv.
func FromGetenv(getenv func(string) string) ProxyFunc {
	httpsProxy, noProxy := lookup(getenv, "https_proxy", "HTTPS_PROXY"), lookup(getenv, "no_proxy", "NO_PROXY")
	if httpsProxy == "" {
		return Direct
	}
	raw := httpsProxy
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := ParseURL(raw)
	if err != nil {
		err = fmt.Errorf("proxydial: HTTPS_PROXY: %w", err)
		return func(string) (*url.URL, error) { return nil, err }
	}
	return Fixed(u, noProxy)
}

// lookup is the first of names set, as net/http looks them up.
func lookup(getenv func(string) string, names ...string) string {
	for _, n := range names {
		if v := getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// Fixed picks proxy for every target except those noProxy names (as
// NO_PROXY does: "host.example,.example.com,10.0.0.0/8,*"), localhost and
// loopback addresses.
func Fixed(proxy *url.URL, noProxy string) ProxyFunc {
	np := parseNoProxy(noProxy)
	return func(addr string) (*url.URL, error) {
		if np.direct(addr) {
			return nil, nil
		}
		return proxy, nil
	}
}

// Setting words, for a config file: no proxy at all.
const (
	SettingDirect = "direct"
	SettingNone   = "none" // the same as SettingDirect
)

// ParseSetting reads a proxy setting as a config file holds it: "" for
// the environment (FromGetenv), "direct" or "none" for no proxy (Direct),
// or a proxy URL (ParseURL) for that proxy whatever HTTPS_PROXY says,
// except for the targets NO_PROXY names, localhost and loopback (Fixed).
// getenv stands in for os.Getenv; nil is os.Getenv.
func ParseSetting(s string, getenv func(string) string) (ProxyFunc, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	s = strings.TrimSpace(s)
	switch s {
	case "":
		return FromGetenv(getenv), nil
	case SettingDirect, SettingNone:
		return Direct, nil
	}
	u, err := ParseURL(s)
	if err != nil {
		return nil, err
	}
	return Fixed(u, lookup(getenv, "no_proxy", "NO_PROXY")), nil
}

// ParseURL reads a proxy URL: http:// or https://, a host, an optional
// port (80 or 443 when left out), an optional user name and password, and
// nothing else.
func ParseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		// url.Error repeats the whole string, password and all.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%q is not a proxy URL like http://proxy.example.com:3128: %w", redact(s), err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%q is not an HTTP proxy URL: it must start with http:// (or https://), like http://proxy.example.com:3128", u.Redacted())
	case u.Hostname() == "":
		return nil, fmt.Errorf("%q names no host", u.Redacted())
	case u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return nil, fmt.Errorf("%q has a path, query or fragment; a proxy URL is only scheme, user, host and port", u.Redacted())
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%q has no valid port", u.Redacted())
		}
	}
	u.Path = ""
	return u, nil
}

// redact hides what follows "user:" in a string that does not parse as a
// URL, so an error never shows a proxy's password.
func redact(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		scheme, rest = "", s
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok {
		return s
	}
	if user, _, ok := strings.Cut(userinfo, ":"); ok {
		userinfo = user + ":xxxxx"
	}
	if scheme != "" {
		scheme += "://"
	}
	return scheme + userinfo + "@" + host
}
