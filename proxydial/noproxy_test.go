package proxydial

import (
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/http/httpproxy"
	"golang.org/x/net/idna"
)

// asNetHTTP says whether net/http's rules (golang.org/x/net/http/httpproxy,
// which noProxy stands in for) send a dial to addr direct, given noProxy.
func asNetHTTP(noProxy, addr string) bool {
	pick := (&httpproxy.Config{HTTPSProxy: "http://proxy.test:3128", NoProxy: noProxy}).ProxyFunc()
	p, err := pick(&url.URL{Scheme: "https", Host: addr})
	return p == nil && err == nil
}

// TestNoProxyAsNetHTTP: noProxy decides as net/http does, rule by rule.
func TestNoProxyAsNetHTTP(t *testing.T) {
	t.Parallel()
	lists := []string{
		"",
		"*",
		"example.com",
		".example.com",
		"*.example.com",
		"Example.COM:8443, .lan",
		"10.0.0.0/8, 192.168.1.5:8443, [2001:db8::1]:443, 2001:db8::/64",
		" , :443, [], *, x",
		"bücher.example, xn--caf-dma.example",
		"*foo.example, .., .",
	}
	addrs := []string{
		"example.com:443", "www.example.com:443", "EXAMPLE.com:8443", "notexample.com:443",
		"example.com", "printer.lan:22", "lan:22", "10.1.2.3:443", "192.168.1.5:8443",
		"192.168.1.5:443", "[2001:db8::1]:443", "[2001:db8::1]:80", "[2001:db8::42]:1",
		"localhost:443", "127.0.0.2:443", "[::1]:443", "[::ffff:127.0.0.1]:443",
		"bücher.example:443", "xn--bcher-kva.example:443", "café.example:443", "CAFÉ.example:443",
		"foo.example:443", "x:1", "", ":443", "[bad:443",
	}
	for _, list := range lists {
		np := parseNoProxy(list)
		for _, addr := range addrs {
			if got, want := np.direct(addr), asNetHTTP(list, addr); got != want {
				t.Errorf("NO_PROXY=%q, %q: direct = %v; want %v, as net/http", list, addr, got, want)
			}
		}
	}
}

// TestToASCII: international names as IDNA's lookup profile writes
// them, for names already in lower case and normal form.
func TestToASCII(t *testing.T) {
	t.Parallel()
	for _, name := range []string{
		"example.com", "bücher.example", "Bücher.example", "café", "münchen.de", "ü", "аб.рф",
		"中文.example", "ドメイン名例.jp", "a-ü-b.example", "🙂.example", "ελληνικά.gr",
	} {
		want, err := idna.Lookup.ToASCII(name)
		if err != nil {
			t.Fatalf("idna.Lookup.ToASCII(%q): %v", name, err)
		}
		if got, ok := toASCII(name); !ok || got != strings.ToLower(want) {
			t.Errorf("toASCII(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
}

// FuzzNoProxy: for any NO_PROXY list and target in ASCII, noProxy
// decides as net/http does.
func FuzzNoProxy(f *testing.F) {
	f.Add("example.com, 10.0.0.0/8, [::2]:443", "www.example.com:443")
	f.Add("*.lan:22", "printer.lan:22")
	f.Add("192.0.2.1", "192.0.2.1:8443")
	f.Fuzz(func(t *testing.T, list, addr string) {
		if !isASCII(list) || !isASCII(addr) {
			t.Skip()
		}
		if got, want := parseNoProxy(list).direct(addr), asNetHTTP(list, addr); got != want {
			t.Fatalf("NO_PROXY=%q, %q: direct = %v; want %v, as net/http", list, addr, got, want)
		}
	})
}
