package proxydial

import (
	"net"
	"net/netip"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// noProxy decides which targets go direct: those a NO_PROXY list names,
// localhost and loopback addresses. It decides as
// golang.org/x/net/http/httpproxy (net/http's ProxyFromEnvironment) does
// for an https:// URL to the target, a rule at a time; TestNoProxyAsNetHTTP
// and FuzzNoProxy hold it to that. It is written out here because
// httpproxy links a second copy of the IDNA and Unicode normalisation
// tables (the standard library's copy is not importable), and the agent
// must stay small; international names are converted to their ASCII
// (punycode) form without those tables: see toASCII.
//
// The list's entries, comma-separated, each case-insensitive:
//
//   - every target
//     10.0.0.0/8, fd00::/8  the addresses in a CIDR block, any port
//     192.0.2.1, [::2]:443  an address, with any port or with that one
//     example.com           example.com and its subdomains
//     .example.com          its subdomains (*.example.com says the same)
//     example.com:8443      the same, on that port only
//
// A name never matches an address, nor an address a name.
type noProxy struct {
	all     bool
	ips     []ipRule
	domains []domainRule
}

// ipRule is an address or a CIDR block of NO_PROXY.
type ipRule struct {
	block *net.IPNet // nil: ip
	ip    net.IP
	port  string // "": any
}

// domainRule is a name of NO_PROXY: host always starts with ".", and
// exact says the name itself matches too, not only its subdomains.
type domainRule struct {
	host  string
	port  string // "": any
	exact bool
}

// parseNoProxy reads a NO_PROXY list, ignoring malformed entries as
// net/http does.
func parseNoProxy(list string) *noProxy {
	np := &noProxy{}
	for p := range strings.SplitSeq(list, ",") {
		p = strings.ToLower(strings.TrimSpace(p))
		if p == "" {
			continue
		}
		if p == "*" {
			return &noProxy{all: true}
		}
		if _, block, err := net.ParseCIDR(p); err == nil {
			np.ips = append(np.ips, ipRule{block: block})
			continue
		}
		host, port, err := net.SplitHostPort(p)
		if err == nil {
			if host == "" {
				continue
			}
			if host[0] == '[' && host[len(host)-1] == ']' {
				host = host[1 : len(host)-1]
			}
		} else {
			host, port = p, ""
		}
		if ip := net.ParseIP(host); ip != nil {
			np.ips = append(np.ips, ipRule{ip: ip, port: port})
			continue
		}
		if host == "" {
			continue
		}
		if strings.HasPrefix(host, "*.") {
			host = host[1:]
		}
		exact := false
		if host[0] != '.' {
			exact, host = true, "."+host
		}
		if v, ok := toASCII(host); ok {
			host = v
		}
		np.domains = append(np.domains, domainRule{host: host, port: port, exact: exact})
	}
	return np
}

// direct says whether a dial to addr (host:port) goes without the proxy.
func (np *noProxy) direct(addr string) bool {
	// As net/http reads an https:// URL to addr: the port is 443 when
	// left out, and the name is in its ASCII form.
	u := url.URL{Host: addr}
	host, port := u.Hostname(), u.Port()
	if v, ok := toASCII(host); ok {
		host = v
	}
	if port == "" {
		port = "443"
	}
	host, port, err := net.SplitHostPort(net.JoinHostPort(host, port))
	if err != nil {
		return true
	}
	if host == "localhost" {
		return true
	}
	var ip net.IP
	if a, err := netip.ParseAddr(host); err == nil {
		ip = net.IP(a.AsSlice())
		if ip.IsLoopback() {
			return true
		}
	}
	if np.all {
		return true
	}
	host = strings.ToLower(strings.TrimSpace(host))
	if ip != nil {
		for _, r := range np.ips {
			if r.block != nil && r.block.Contains(ip) || r.block == nil && r.ip.Equal(ip) && (r.port == "" || r.port == port) {
				return true
			}
		}
		return false
	}
	for _, r := range np.domains {
		if (strings.HasSuffix(host, r.host) || r.exact && host == r.host[1:]) && (r.port == "" || r.port == port) {
			return true
		}
	}
	return false
}

// toASCII is name in ASCII, as IDNA's lookup profile writes it: each
// label that is not ASCII lower-cased and punycoded behind "xn--".
// Unlike golang.org/x/net/idna it neither normalises (NFC) nor maps
// characters beyond lower case, nor rejects what IDNA forbids: a name
// that needs that is one no DNS resolver or certificate would take
// anyway. ok is false when a label cannot be encoded; net/http then
// keeps the name as it is.
func toASCII(name string) (_ string, ok bool) {
	if isASCII(name) {
		return name, true
	}
	labels := strings.Split(name, ".")
	for i, l := range labels {
		if isASCII(l) {
			continue
		}
		p, ok := punycode(strings.ToLower(l))
		if !ok {
			return "", false
		}
		labels[i] = "xn--" + p
	}
	return strings.Join(labels, "."), true
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// punycode encodes s as RFC 3492 says, without the "xn--" prefix.
func punycode(s string) (string, bool) {
	const (
		base, tmin, tmax, skew, damp = 36, 1, 26, 38, 700
		initialBias, initialN        = 72, 128
	)
	if !utf8.ValidString(s) {
		return "", false
	}
	runes := []rune(s)
	out := make([]byte, 0, len(s)+8)
	for _, r := range runes {
		if r < 0x80 {
			out = append(out, byte(r))
		}
	}
	basic := len(out)
	h := basic
	if basic > 0 {
		out = append(out, '-')
	}
	digit := func(d int32) byte {
		if d < 26 {
			return byte('a' + d)
		}
		return byte('0' + d - 26)
	}
	adapt := func(delta, points int32, first bool) int32 {
		if first {
			delta /= damp
		} else {
			delta /= 2
		}
		delta += delta / points
		k := int32(0)
		for delta > ((base-tmin)*tmax)/2 {
			delta /= base - tmin
			k += base
		}
		return k + (base-tmin+1)*delta/(delta+skew)
	}
	n, bias, delta := int32(initialN), int32(initialBias), int32(0)
	for h < len(runes) {
		m := int32(unicode.MaxRune + 1)
		for _, r := range runes {
			if r >= n && r < m {
				m = r
			}
		}
		if (m-n)*int32(h+1) < 0 || delta+(m-n)*int32(h+1) < delta {
			return "", false // overflow
		}
		delta += (m - n) * int32(h+1)
		n = m
		for _, r := range runes {
			if r < n {
				delta++
				if delta < 0 {
					return "", false
				}
			}
			if r != n {
				continue
			}
			q := delta
			for k := int32(base); ; k += base {
				t := k - bias
				t = max(tmin, min(t, tmax))
				if q < t {
					break
				}
				out = append(out, digit(t+(q-t)%(base-t)))
				q = (q - t) / (base - t)
			}
			out = append(out, digit(q))
			bias = adapt(delta, int32(h+1), h == basic)
			delta = 0
			h++
		}
		delta++
		n++
	}
	return string(out), true
}
