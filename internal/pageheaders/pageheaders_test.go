package pageheaders

import (
	"net/http"
	"testing"
)

func TestSet(t *testing.T) {
	h := http.Header{}
	Set(h, "default-src 'none'")
	for k, want := range map[string]string{"Content-Security-Policy": "default-src 'none'", "X-Frame-Options": "DENY",
		"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %q; want %q", k, got, want)
		}
	}
}
