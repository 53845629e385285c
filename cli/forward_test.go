package cli

import (
	"strings"
	"testing"
)

func TestParseForwardSpec(t *testing.T) {
	tests := []struct {
		spec string
		want forwardSpec
		err  string
	}{
		{"8080:80", forwardSpec{bind: "127.0.0.1", local: 8080, remote: 80}, ""},
		{"0:22", forwardSpec{bind: "127.0.0.1", local: 0, remote: 22}, ""},
		{"0.0.0.0:8080:80", forwardSpec{bind: "0.0.0.0", local: 8080, remote: 80}, ""},
		{"localhost:8080:80", forwardSpec{bind: "localhost", local: 8080, remote: 80}, ""},
		{"[::1]:8080:80", forwardSpec{bind: "::1", local: 8080, remote: 80}, ""},
		{"8080", forwardSpec{}, "local and a remote port"},
		{"8080:0", forwardSpec{}, "remote port"},
		{"8080:65536", forwardSpec{}, "remote port"},
		{"x:80", forwardSpec{}, "local port"},
		{"-1:80", forwardSpec{}, "local port"},
		{":8080:80", forwardSpec{}, "bind address is empty"},
		{"[::1:8080:80", forwardSpec{}, "brackets"},
		{"[nope]:8080:80", forwardSpec{}, "not an IPv6 address"},
		{"a:b:c:d", forwardSpec{}, "local and a remote port"},
	}
	for _, tt := range tests {
		got, err := parseForwardSpec(tt.spec)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseForwardSpec(%q) = %+v, %v; want an error with %q", tt.spec, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseForwardSpec(%q) = %+v, %v; want %+v", tt.spec, got, err, tt.want)
		}
	}
}
