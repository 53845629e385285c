package cli

import (
	"io/fs"
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

func TestIsLocalPath(t *testing.T) {
	for _, tt := range []struct {
		goos, arg string
		want      bool
	}{
		{"linux", "/tmp/a:b", true},
		{"linux", "./a:b", true},
		{"linux", "c:/tmp", false}, // a device named c
		{"darwin", "dev1:/tmp", false},
		{"windows", `C:\logs\amp.log`, true},
		{"windows", `c:\logs`, true},
		{"windows", "c:logs", true}, // relative to drive C's current directory
		{"windows", "C:/logs", true},
		{"windows", `\\server\share\a.txt`, true},
		{"windows", `\logs`, true},
		{"windows", `.\a:b`, true},
		{"windows", "dev1:/tmp", false},
		{"windows", "c.acme:/tmp", false}, // the one-letter device, with its fleet
		{"windows", "kitchen-amp", false},
	} {
		if got := isLocalPath(tt.goos, tt.arg); got != tt.want {
			t.Errorf("isLocalPath(%s, %q) = %v; want %v", tt.goos, tt.arg, got, tt.want)
		}
	}
}

// TestCheckLocalName tries names a hostile device could list to have a
// download write outside its destination, into a stream or to a device.
func TestCheckLocalName(t *testing.T) {
	for _, tt := range []struct {
		goos, name string
		ok         bool
	}{
		{"linux", "amp.log", true},
		{"linux", "a:b", true},
		{"linux", `a\b`, true}, // a plain name on Unix
		{"linux", "..", false},
		{"linux", ".", false},
		{"linux", "", false},
		{"linux", "../../.bashrc", false},
		{"linux", "a/b", false},
		{"linux", "a\x00b", false},
		{"windows", "amp.log", true},
		{"windows", "console.log", true},
		{"windows", "COM10", true},
		{"windows", `..\..\AppData\evil.exe`, false},
		{"windows", `a\b`, false},
		{"windows", "C:evil", false},
		{"windows", "a.txt:hidden", false},
		{"windows", "CON", false},
		{"windows", "nul.txt", false},
		{"windows", "Com1", false},
		{"windows", "LPT9.log", false},
		{"windows", "aux ", false},
	} {
		err := checkLocalName(tt.goos, tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("checkLocalName(%s, %q) = %v; want ok %v", tt.goos, tt.name, err, tt.ok)
		}
	}
}

func TestUploadPerm(t *testing.T) {
	for _, tt := range []struct {
		goos string
		mode fs.FileMode
		want fs.FileMode
	}{
		{"linux", 0o664, 0o664},
		{"linux", 0o777 | fs.ModeDir, 0o777},
		{"darwin", 0o600, 0o600},
		{"windows", 0o666, 0o644},              // what Go says of a writable file
		{"windows", 0o444, 0o444},              // read-only
		{"windows", 0o777 | fs.ModeDir, 0o755}, // a directory
	} {
		if got := uploadPerm(tt.goos, tt.mode); got != tt.want {
			t.Errorf("uploadPerm(%s, %v) = %v; want %v", tt.goos, tt.mode, got, tt.want)
		}
	}
}
