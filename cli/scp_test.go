package cli

import (
	"strings"
	"testing"
)

func TestParseSCPArg(t *testing.T) {
	tests := []struct {
		arg  string
		want scpArg
	}{
		{"dev1:/tmp/x", scpArg{device: "dev1", path: "/tmp/x"}},
		{"dev1:x", scpArg{device: "dev1", path: "x"}},
		{"dev1:", scpArg{device: "dev1", path: "."}},
		{"dev1.acme:/var/log", scpArg{device: "dev1.acme", path: "/var/log"}},
		{"acme/dev1:/var/log", scpArg{device: "acme/dev1", path: "/var/log"}},
		{"dev1:a:b", scpArg{device: "dev1", path: "a:b"}},
		{"file.txt", scpArg{path: "file.txt"}},
		{"./dev1:x", scpArg{path: "./dev1:x"}},
		{"/abs/dev1:x", scpArg{path: "/abs/dev1:x"}},
		// FLEET/DEVICE:PATH wins over a relative local path with a colon,
		// as DEVICE:PATH does with scp; ./dir/dev1:x is the local one.
		{"dir/dev1:x", scpArg{device: "dir/dev1", path: "x"}},
		{"My File:x", scpArg{path: "My File:x"}},
		{":x", scpArg{path: ":x"}},
		{"a.b.c:x", scpArg{path: "a.b.c:x"}},
	}
	for _, tt := range tests {
		got := parseSCPArg(tt.arg)
		if got != tt.want {
			t.Errorf("parseSCPArg(%q) = %+v; want %+v", tt.arg, got, tt.want)
		}
	}
}

func TestPlanSCP(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want scpPlan
		err  string
	}{
		{"upload", []string{"a", "dev1:/tmp"}, scpPlan{device: "dev1", upload: true, sources: []string{"a"}, dst: "/tmp"}, ""},
		{"uploads", []string{"a", "b", "dev1:"}, scpPlan{device: "dev1", upload: true, sources: []string{"a", "b"}, dst: "."}, ""},
		{"download", []string{"dev1:/x", "."}, scpPlan{device: "dev1", sources: []string{"/x"}, dst: "."}, ""},
		{"downloads", []string{"dev1:/x", "dev1:y", "out"}, scpPlan{device: "dev1", sources: []string{"/x", "y"}, dst: "out"}, ""},
		{"both remote", []string{"dev1:/x", "dev2:/y"}, scpPlan{}, "not between two devices"},
		{"none remote", []string{"a", "b"}, scpPlan{}, "write DEVICE:PATH"},
		{"mixed sources", []string{"dev1:/x", "b", "out"}, scpPlan{}, "must all be on the device or all on this machine"},
		{"two devices", []string{"dev1:/x", "dev2:/y", "out"}, scpPlan{}, "two devices"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := planSCP(tt.args)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("planSCP(%q) = %+v, %v; want an error with %q", tt.args, got, err, tt.err)
				}
				return
			}
			if err != nil || got.device != tt.want.device || got.upload != tt.want.upload || got.dst != tt.want.dst ||
				strings.Join(got.sources, "|") != strings.Join(tt.want.sources, "|") {
				t.Fatalf("planSCP(%q) = %+v, %v; want %+v", tt.args, got, err, tt.want)
			}
		})
	}
}
