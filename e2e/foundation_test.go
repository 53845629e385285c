package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/store/storetest"
	"github.com/pquerna/otp/totp"
)

var bins Binaries

func TestMain(m *testing.M) { Main(m, "porthole-e2e-bin-", &bins, nil) }

func TestFoundationSQLite(t *testing.T) {
	t.Parallel()
	testFoundation(t, "sqlite")
}

func TestFoundationPostgres(t *testing.T) {
	t.Parallel()
	testFoundation(t, storetest.PostgresDSN(t))
}

// testFoundation walks the path a new operator takes: init, serve, log in
// with password and TOTP, make a fleet and an enrollment token, enroll a
// device with the real agent, and see it listed.
func testFoundation(t *testing.T, database string) {
	tmp := t.TempDir()
	data := filepath.Join(tmp, "data")
	port := FreePort(t)
	server := fmt.Sprintf("https://127.0.0.1:%d", port)
	env := Env{"HOME": tmp, "XDG_CONFIG_HOME": filepath.Join(tmp, "config")}
	const email, password = "ops@example.com", "correct horse battery staple"

	// init: keys, config, database, first admin with TOTP.
	r := MustRun(t, env, password+"\n", bins.Server, "init", "--data", data,
		"--admin-email", email, "--password-stdin", "--public-url", server, "--database", database,
		"--broker-listen", fmt.Sprintf("127.0.0.1:%d", FreePort(t)), "--relay-listen", fmt.Sprintf("127.0.0.1:%d", FreePort(t)))
	secret := regexp.MustCompile(`secret=([A-Z2-7]+)`).FindStringSubmatch(r.Stdout)
	if secret == nil {
		t.Fatalf("init printed no TOTP secret:\n%s", r.Stdout)
	}
	if strings.Contains(r.Stdout, password) {
		t.Error("init echoed a password it was given on stdin")
	}
	for _, f := range []string{"control_key", "user_ca", "host_ca", "relay_host_key", "tls.key"} {
		fi, err := os.Stat(filepath.Join(data, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v; want 0600", f, fi.Mode().Perm())
		}
	}
	if r := Run(t, env, password+"\n", bins.Server, "init", "--data", data, "--admin-email", email, "--password-stdin"); r.Err == nil || !strings.Contains(r.Stderr, "refusing to overwrite") {
		t.Errorf("a second init over the same dir: err=%v stderr=%q; want a refusal", r.Err, r.Stderr)
	}

	srv := Start(t, env, bins.Server, "serve", "--config", filepath.Join(data, "portholed.yaml"))
	waitHealthy(t, srv, server)

	// login with password and TOTP; the CLI pins the self-signed certificate.
	code := func() string {
		c, err := totp.GenerateCode(secret[1], time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	first := code()
	r = MustRun(t, env, email+"\n"+password+"\n"+first+"\n", bins.CLI, "login", server)
	if out := r.Stdout + r.Stderr; !strings.Contains(out, "pinned") || !strings.Contains(out, "sha256:") {
		t.Errorf("first login does not say it pinned the certificate:\n%s", out)
	}
	// The same code cannot log in twice.
	if r := Run(t, env, email+"\n"+password+"\n"+first+"\n", bins.CLI, "login", server); r.Err == nil {
		t.Error("a TOTP code was accepted twice")
	}

	MustRun(t, env, "", bins.CLI, "fleets", "create", "acme")
	r = MustRun(t, env, "", bins.CLI, "enroll-token", "create", "--fleet", "acme", "--uses", "2", "--ttl", "1h")
	out := r.Stdout + r.Stderr
	token := regexp.MustCompile(`--token (\S+)`).FindStringSubmatch(out)
	fp := regexp.MustCompile(`--fingerprint (sha256:[0-9a-f]+)`).FindStringSubmatch(out)
	if token == nil || fp == nil {
		t.Fatalf("enroll-token create did not print the enroll command with token and fingerprint:\n%s", out)
	}

	state := filepath.Join(tmp, "dev1")
	MustRun(t, env, "", bins.Agent, "enroll", "--server", server, "--token", token[1],
		"--fingerprint", fp[1], "--name", "dev1", "--state", state)
	fi, err := os.Stat(filepath.Join(state, "device_key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("device key: %v, mode %v; want 0600", err, fi.Mode())
	}
	// The same name again, from another device: refused, clearly, and the
	// token's second use is not spent.
	r = Run(t, env, "", bins.Agent, "enroll", "--server", server, "--token", token[1],
		"--fingerprint", fp[1], "--name", "dev1", "--state", filepath.Join(tmp, "dev1-again"))
	if r.Err == nil || !strings.Contains(r.Stderr, "already enrolled") {
		t.Errorf("second enroll of dev1: err=%v stderr=%q; want 'already enrolled'", r.Err, r.Stderr)
	}
	MustRun(t, env, "", bins.Agent, "enroll", "--server", server, "--token", token[1],
		"--fingerprint", fp[1], "--name", "dev2", "--state", filepath.Join(tmp, "dev2"))

	r = MustRun(t, env, "", bins.CLI, "devices", "--fleet", "acme", "--json")
	var devices []struct {
		Name, Fleet string
		Online      bool
	}
	if err := json.Unmarshal([]byte(r.Stdout), &devices); err != nil {
		t.Fatalf("devices --json is not a JSON array: %v\n%s", err, r.Stdout)
	}
	var names []string
	for _, d := range devices {
		if d.Fleet != "acme" {
			t.Errorf("device %s in fleet %q; want acme", d.Name, d.Fleet)
		}
		names = append(names, d.Name)
	}
	if strings.Join(names, ",") != "dev1,dev2" {
		t.Errorf("devices = %v; want [dev1 dev2]", names)
	}
	r = MustRun(t, env, "", bins.CLI, "devices")
	if !strings.Contains(r.Stdout, "dev1") || !strings.Contains(r.Stdout, "never") {
		t.Errorf("devices table does not show dev1 as never seen:\n%s", r.Stdout)
	}
}

// TestDemoScript runs the README's first command's script against the
// freshly built binaries, so the demo cannot rot.
func TestDemoScript(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	cmd := exec.Command("bash", "../scripts/demo.sh")
	cmd.Env = append(os.Environ(), "BIN="+filepath.Dir(bins.Server), "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out)
	}
	for _, want := range []string{
		"already enrolled",               // a second enrollment of a name
		"Linux",                          // uname -a on field-cam-7 through the relay
		"needs its owner's support code", // kitchen-amp refused without one
		"gain reset",                     // and reached with the owner's code
		"support_code_accepted",          // the owner's log shows it
		"hash chain is intact",           // porthole audit --verify
		"the owner of kitchen-amp ended this session", // the kill switch
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	// In namespaces, both routers let out only TCP 443, and everything
	// above went through it.
	if strings.Contains(string(out), "behind a NAT router") && !strings.Contains(string(out), "blocked by its router; to 443: open") {
		t.Errorf("the demo in namespaces did not show that only 443 gets out:\n%s", out)
	}
}

func waitHealthy(t *testing.T, p *Proc, server string) {
	t.Helper()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // only a liveness probe
	}}
	WaitFor(t, 20*time.Second, "portholed to answer /healthz", func() bool {
		if p.Exited() {
			t.Fatalf("portholed exited:\n%s", p.Stderr())
		}
		resp, err := client.Get(server + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}
