package cli

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/apitype"
)

// sshConfigAPI is a fake server answering GET /api/v1/ca with a fresh host
// CA, and the CA's authorized_keys line.
func sshConfigAPI(t *testing.T) (*fakeAPI, string) {
	t.Helper()
	hostCA := newTestSigner(t)
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hostCA.PublicKey())))
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/ca": answer(apitype.CAKeys{HostCA: line, UserCA: line, RelayAddr: "relay.example.com:2222"}),
	})
	return f, line
}

func TestSSHConfigPrints(t *testing.T) {
	f, hostCA := sshConfigAPI(t)
	env := f.loggedIn(t)
	// A config dir with a space and a %, which ssh would read as a token.
	env["XDG_CONFIG_HOME"] = filepath.Join(t.TempDir(), "my 100%")
	r := mustRun(t, env, "", "ssh-config")
	dir := filepath.Join(env["XDG_CONFIG_HOME"], "porthole")
	kh, err := os.ReadFile(filepath.Join(dir, "known_hosts"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "@cert-authority *.porthole " + hostCA + "\n"; string(kh) != want {
		t.Errorf("known_hosts = %q; want %q", kh, want)
	}
	if fi, err := os.Stat(filepath.Join(dir, "agent")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("agent socket dir: %v, %v; want a 0700 directory", fi, err)
	}
	exe, _ := os.Executable()
	esc := strings.ReplaceAll(dir, "%", "%%")
	for _, want := range []string{
		sshConfigBegin + "\n",
		"\nHost *.porthole\n",
		"\n    ProxyCommand " + shellQuote(strings.ReplaceAll(exe, "%", "%%")) + " proxy --agent-socket '" + esc + "/agent/%n.sock' %n\n",
		"\n    IdentityAgent \"" + esc + "/agent/%n.sock\"\n",
		"\n    IdentityFile none\n",
		"\n    UserKnownHostsFile \"" + esc + "/known_hosts\"\n",
		"\n    StrictHostKeyChecking yes\n",
		"\n    ForwardAgent no\n",
		"\nHost *\n" + sshConfigEnd + "\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("ssh-config output lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "--write") {
		t.Errorf("stderr does not say how to install the block: %q", r.stderr)
	}

	// What ssh itself makes of it, where ssh is installed.
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no ssh here to read the block")
	}
	cfg := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(cfg, []byte(r.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	got := sshG(t, cfg, "Dev1.Acme.porthole")
	for _, want := range []string{
		"identityagent " + dir + "/agent/Dev1.Acme.porthole.sock",
		"userknownhostsfile " + dir + "/known_hosts",
		"stricthostkeychecking true",
		"identityfile none",
		"forwardagent no",
	} {
		if !strings.Contains(got, "\n"+want+"\n") {
			t.Errorf("ssh -G dev1.acme.porthole lacks %q", want)
		}
	}
}

// sshG is `ssh -G -F cfg host`: the configuration ssh would use.
func sshG(t *testing.T, cfg, host string) string {
	t.Helper()
	out, err := exec.Command("ssh", "-G", "-F", cfg, host).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh -G %s: %v\n%s", host, err, out)
	}
	return "\n" + string(out)
}

func TestSSHConfigWrite(t *testing.T) {
	f, _ := sshConfigAPI(t)
	env := f.loggedIn(t)
	home := t.TempDir()
	env["HOME"] = home
	// The user's config, kept by a dotfile manager behind a symlink, starts
	// with options for every host.
	dotfiles := t.TempDir()
	real := filepath.Join(dotfiles, "ssh_config")
	orig := "ServerAliveInterval 42\n\nHost build\n    HostName build.example.com\n"
	if err := os.WriteFile(real, []byte(orig), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(home, ".ssh", "config")); err != nil {
		t.Fatal(err)
	}

	r := mustRun(t, env, "", "ssh-config", "--write")
	if r.stdout != "" {
		t.Errorf("--write printed %q on stdout", r.stdout)
	}
	if fi, err := os.Lstat(filepath.Join(home, ".ssh", "config")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the symlink was replaced: %v, %v", fi, err)
	}
	data, _ := os.ReadFile(real)
	first := string(data)
	if !strings.HasPrefix(first, sshConfigBegin+"\n") || !strings.HasSuffix(first, "\n"+orig) {
		t.Fatalf("the block is not at the top, above the user's config:\n%s", first)
	}
	if fi, _ := os.Stat(real); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v after --write; want the file's own 0640", fi.Mode().Perm())
	}

	// Again: nothing changes.
	r = mustRun(t, env, "", "ssh-config", "--write")
	if data, _ := os.ReadFile(real); string(data) != first || !strings.Contains(r.stderr, "up to date") {
		t.Errorf("a second --write changed the file or did not say it was up to date (%q):\n%s", r.stderr, data)
	}

	// A new host CA replaces the block in place.
	f2, hostCA2 := sshConfigAPI(t)
	env2 := f2.loggedIn(t)
	env2["HOME"], env2["XDG_CONFIG_HOME"] = home, env["XDG_CONFIG_HOME"]
	mustRun(t, env2, "", "ssh-config", "--write")
	data, _ = os.ReadFile(real)
	if strings.Count(string(data), sshConfigBegin) != 1 || !strings.HasSuffix(string(data), "\n"+orig) {
		t.Errorf("the block was not replaced in place:\n%s", data)
	}
	kh, _ := os.ReadFile(filepath.Join(env["XDG_CONFIG_HOME"], "porthole", "known_hosts"))
	if !strings.Contains(string(kh), hostCA2) {
		t.Errorf("known_hosts does not hold the new host CA: %s", kh)
	}

	if _, err := exec.LookPath("ssh"); err != nil {
		return
	}
	// The user's global option still reaches every host, the porthole
	// block reaches only .porthole names.
	if got := sshG(t, real, "build"); !strings.Contains(got, "\nserveraliveinterval 42\n") || strings.Contains(got, "proxycommand") {
		t.Errorf("ssh -G build after --write:\n%s", got)
	}
	if got := sshG(t, real, "dev1.porthole"); !strings.Contains(got, "\nserveraliveinterval 42\n") || !strings.Contains(got, "\nproxycommand ") {
		t.Errorf("ssh -G dev1.porthole after --write:\n%s", got)
	}
}

func TestSpliceSSHConfig(t *testing.T) {
	block := sshConfigBegin + "\nHost *.porthole\nHost *\n" + sshConfigEnd + "\n"
	tests := []struct {
		name, in, want, err string
	}{
		{"empty", "", block, ""},
		{"prepended", "Host a\n", block + "\nHost a\n", ""},
		{"replaced", "Host a\n" + sshConfigBegin + "\nold\n" + sshConfigEnd + "\nHost b\n", "Host a\n" + block + "Host b\n", ""},
		{"no end", sshConfigBegin + "\nold\n", "", "mend or remove"},
	}
	for _, tt := range tests {
		got, err := spliceSSHConfig(tt.in, block)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err = %v; want %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: spliceSSHConfig = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

func TestSSHConfigBlockRefusesUnwritablePaths(t *testing.T) {
	for _, p := range []string{`/home/a"b`, "/home/a\nb", "/home/${HOME}"} {
		if _, err := sshConfigBlock(sshConfigParams{exe: "/usr/bin/porthole", agentDir: p, knownHosts: "/k"}); err == nil {
			t.Errorf("sshConfigBlock took the path %q", p)
		}
	}
	got, err := sshConfigBlock(sshConfigParams{exe: "/opt/it's/porthole", server: "https://p.example.com:8443", serverFlag: true,
		agentDir: "/a", knownHosts: "/k"})
	if err != nil || !strings.Contains(got, `ProxyCommand '/opt/it'\''s/porthole' --server https://p.example.com:8443 proxy`) {
		t.Errorf("sshConfigBlock with a quote in the program's path and --server = %v:\n%s", err, got)
	}
}

func newTestSigner(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
