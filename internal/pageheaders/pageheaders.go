// Package pageheaders sets the headers every HTML page Porthole serves
// carries (the web console, the SSO sign-in pages, the owner's local
// page): its Content-Security-Policy, no framing, no type sniffing and no
// referrer. Each page adds what is its own.
package pageheaders

import "net/http"

// Set sets on h the page's policy csp and the headers every page carries.
func Set(h http.Header, csp string) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY") // for browsers older than frame-ancestors
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}
