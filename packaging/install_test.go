package packaging_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// release is a release's files by name, as a local server serves them.
type release map[string]string

// sums is SHA256SUMS for r, in sha256sum's format.
func (r release) sums() string {
	var names []string
	for name := range r {
		names = append(names, name)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, name := range names {
		h := sha256.Sum256([]byte(r[name]))
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(h[:]), name)
	}
	return b.String()
}

// TestInstallAgent runs scripts/install-agent.sh against a release on a
// local HTTP server: it picks the file for the method and architecture out
// of SHA256SUMS, installs it when its SHA-256 matches, and refuses, leaving
// everything as it was, when the file (or SHA256SUMS, against a pinned
// hash) was tampered with.
func TestInstallAgent(t *testing.T) {
	files := release{
		"porthole-agent-linux-amd64":            "agent for amd64\n",
		"porthole-agent-linux-arm64":            "agent for arm64\n",
		"porthole-agent-linux-armv7":            "agent for armv7\n",
		"porthole-agent-linux-amd64.cdx.json":   "{}\n",
		"porthole-agent_1.2.0-1_amd64.deb":      "deb for amd64\n",
		"porthole-agent_1.2.0-1_armhf.deb":      "deb for armhf\n",
		"porthole-agent-1.2.0-1.x86_64.rpm":     "rpm for x86_64\n",
		"porthole_1.2.0-1_amd64.deb":            "the CLI, not the agent\n",
		"portholed_1.2.0-1_amd64.deb":           "the server, not the agent\n",
		"porthole-linux-armv7":                  "the CLI, not the agent\n",
		"porthole-agent-linux-armv7.cdx.json":   "{}\n",
		"porthole-agent_1.2.0-1_arm64.deb.asc":  "not a package\n",
		"porthole-agent-1.2.0-1.aarch64.rpm.gz": "not a package\n",
	}
	sums := files.sums()
	sumsHash := sha256.Sum256([]byte(sums))

	for _, tt := range []struct {
		name   string
		args   []string
		served map[string]string // what the server sends instead of the release's file
		old    string            // an installed agent before the run
		want   string            // the file installed or downloaded; "" for a refusal
		err    string            // in the refusal's words
	}{
		{name: "binary", args: []string{"--method", "binary", "--arch", "amd64"}, want: "porthole-agent-linux-amd64"},
		{name: "binary for this machine", args: []string{"--method", "binary"}, want: "porthole-agent-linux-" + pkgArch()},
		{name: "binary armv7", args: []string{"--method", "binary", "--arch", "armv7"}, want: "porthole-agent-linux-armv7"},
		{name: "binary replaces the old one", args: []string{"--method", "binary", "--arch", "arm64"}, old: "old agent\n", want: "porthole-agent-linux-arm64"},
		{name: "deb armhf", args: []string{"--method", "deb", "--arch", "armv7", "--download-only", "DL"}, want: "porthole-agent_1.2.0-1_armhf.deb"},
		{name: "rpm x86_64", args: []string{"--method", "rpm", "--arch", "amd64", "--download-only", "DL"}, want: "porthole-agent-1.2.0-1.x86_64.rpm"},
		{name: "pinned SHA256SUMS", args: []string{"--method", "binary", "--arch", "amd64", "--sums-sha256", hex.EncodeToString(sumsHash[:])}, want: "porthole-agent-linux-amd64"},

		{name: "tampered binary", args: []string{"--method", "binary", "--arch", "amd64"}, old: "old agent\n",
			served: map[string]string{"porthole-agent-linux-amd64": "agent for amd64, with a back door\n"},
			err:    "refusing porthole-agent-linux-amd64: its SHA-256 is"},
		{name: "tampered deb", args: []string{"--method", "deb", "--arch", "amd64", "--download-only", "DL"},
			served: map[string]string{"porthole-agent_1.2.0-1_amd64.deb": "deb for amd64, rebuilt\n"},
			err:    "the download is damaged or was tampered with, and nothing was installed"},
		{name: "tampered SHA256SUMS", args: []string{"--method", "binary", "--arch", "amd64", "--sums-sha256", hex.EncodeToString(sumsHash[:])},
			served: map[string]string{"SHA256SUMS": strings.Replace(sums, "agent-linux-arm64", "agent-linux-arm65", 1)},
			err:    "refusing: SHA256SUMS has SHA-256"},
		{name: "no rpm for arm64", args: []string{"--method", "rpm", "--arch", "arm64", "--download-only", "DL"},
			err: "lists 0 files for rpm on arm64"},
		{name: "file missing", args: []string{"--method", "binary", "--arch", "amd64"},
			served: map[string]string{"porthole-agent-linux-amd64": ""}, err: "could not fetch"},
		{name: "unknown arch", args: []string{"--method", "binary", "--arch", "mips"}, err: "--arch mips: choose amd64, arm64 or armv7"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				name := strings.TrimPrefix(r.URL.Path, "/rel/1.2.0/")
				body, ok := files[name]
				if name == "SHA256SUMS" {
					body, ok = sums, true
				}
				if s, tampered := tt.served[name]; tampered {
					body, ok = s, s != ""
				}
				if !ok {
					http.NotFound(w, r)
					return
				}
				fmt.Fprint(w, body)
			}))
			defer srv.Close()

			dir := t.TempDir()
			prefix, dl := filepath.Join(dir, "usr"), filepath.Join(dir, "dl")
			installed := filepath.Join(prefix, "bin", "porthole-agent")
			if tt.old != "" {
				if err := os.MkdirAll(filepath.Dir(installed), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(installed, []byte(tt.old), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			args := []string{filepath.Join(root, "scripts", "install-agent.sh"), "--prefix", prefix}
			for _, a := range tt.args {
				args = append(args, strings.ReplaceAll(a, "DL", dl))
			}
			args = append(args, srv.URL+"/rel/1.2.0/")
			cmd := exec.Command("sh", args...) // sh: dash here, as on a small device
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TMPDIR=" + dir}
			out, err := cmd.CombinedOutput()

			if tt.want == "" {
				if err == nil || !strings.Contains(string(out), tt.err) {
					t.Fatalf("install-agent.sh %v: %v\n%s\nwant it refused with %q", tt.args, err, out, tt.err)
				}
				if data, _ := os.ReadFile(installed); string(data) != tt.old {
					t.Errorf("after the refusal %s holds %q; want %q, as before", installed, data, tt.old)
				}
				if entries, _ := os.ReadDir(dl); len(entries) > 0 {
					t.Errorf("after the refusal %s holds %v; want nothing", dl, entries)
				}
				return
			}
			if err != nil {
				t.Fatalf("install-agent.sh %v: %v\n%s", tt.args, err, out)
			}
			path := installed
			if slices.Contains(tt.args, "--download-only") {
				path = filepath.Join(dl, tt.want)
			}
			data, err := os.ReadFile(path)
			if err != nil || string(data) != files[tt.want] {
				t.Fatalf("%s holds %q (%v); want %s's %q\n%s", path, data, err, tt.want, files[tt.want], out)
			}
			if fi, _ := os.Stat(path); path == installed && fi.Mode().Perm() != 0o755 {
				t.Errorf("%s has mode %v; want 0755", path, fi.Mode())
			}
		})
	}

	// Plain http to another machine is refused before anything is
	// fetched: SHA256SUMS could be swapped on the way with the package.
	out, err := exec.Command("sh", filepath.Join(root, "scripts", "install-agent.sh"), "--download-only", t.TempDir(), "http://downloads.example.com/porthole/1.2.0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is plain http: use https") {
		t.Errorf("install-agent.sh on plain http: %v\n%s\nwant it refused", err, out)
	}
}
