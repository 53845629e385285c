package cli

import (
	"strings"
	"testing"
)

func TestParseDeviceRef(t *testing.T) {
	tests := []struct {
		name, arg, fleet string
		want             deviceRef
		err              string // part of the error; "" for none
	}{
		{"name", "dev1", "", deviceRef{name: "dev1"}, ""},
		{"name and fleet flag", "dev1", "acme", deviceRef{name: "dev1", fleet: "acme"}, ""},
		{"dotted", "dev1.acme", "", deviceRef{name: "dev1", fleet: "acme"}, ""},
		{"slashed", "acme/dev1", "", deviceRef{name: "dev1", fleet: "acme"}, ""},
		{"dotted and same flag", "dev1.acme", "acme", deviceRef{name: "dev1", fleet: "acme"}, ""},
		{"dotted and other flag", "dev1.acme", "beta", deviceRef{}, "--fleet says beta"},
		{"slashed and other flag", "acme/dev1", "beta", deviceRef{}, "names fleet acme"},
		{"bad flag", "dev1", "Acme!", deviceRef{}, "not a fleet name"},
		{"empty", "", "", deviceRef{}, "not a device"},
		{"upper case", "Dev1", "", deviceRef{}, "not a device"},
		{"trailing dot", "dev1.", "", deviceRef{}, "not a device"},
		{"leading slash", "/dev1", "", deviceRef{}, "not a device"},
		{"three parts", "dev1.acme.porthole", "", deviceRef{}, "not a device"},
		{"two slashes", "a/b/c", "", deviceRef{}, "not a device"},
		{"underscore", "dev_1", "", deviceRef{}, "not a device"},
		{"path-like", "../etc", "", deviceRef{}, "not a device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDeviceRef(tt.arg, tt.fleet)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("parseDeviceRef(%q, %q) = %v, %v; want an error with %q", tt.arg, tt.fleet, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseDeviceRef(%q, %q) = %+v, %v; want %+v", tt.arg, tt.fleet, got, err, tt.want)
			}
		})
	}
}

func TestParseHostRef(t *testing.T) {
	tests := []struct {
		host string
		want deviceRef
		ok   bool
	}{
		{"dev1.porthole", deviceRef{name: "dev1"}, true},
		{"dev1.acme.porthole", deviceRef{name: "dev1", fleet: "acme"}, true},
		{"Dev1.ACME.Porthole", deviceRef{name: "dev1", fleet: "acme"}, true},
		{"dev1", deviceRef{name: "dev1"}, true},
		{"dev1.acme", deviceRef{name: "dev1", fleet: "acme"}, true},
		{"acme/dev1.porthole", deviceRef{}, false}, // it becomes a socket's file name
		{"a.b.c.porthole", deviceRef{}, false},
		{".porthole", deviceRef{}, false},
		{"dev1.porthole.", deviceRef{}, false},
		{"../x.porthole", deviceRef{}, false},
	}
	for _, tt := range tests {
		got, err := parseHostRef(tt.host)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("parseHostRef(%q) = %+v, %v; want %+v (ok %v)", tt.host, got, err, tt.want, tt.ok)
		}
	}
}
