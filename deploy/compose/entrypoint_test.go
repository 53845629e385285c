package compose_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/agent"
	"github.com/porthole/porthole/agent/agentstate"
	"github.com/porthole/porthole/daemon"
	"github.com/porthole/porthole/e2e"
)

// baseEnv is what every entrypoint run here gets: our freshly built
// programs first on PATH, and a home of its own.
func baseEnv(t *testing.T) e2e.Env {
	return e2e.Env{"PATH": binDir + string(os.PathListSeparator) + os.Getenv("PATH"), "HOME": t.TempDir()}
}

// healthy reports whether the API at server answers /healthz over TLS with
// the certificate whose fingerprint is fp.
func healthy(server, fp string) bool {
	tr := &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, // checked by fingerprint below, as the CLI pins it
		VerifyConnection: func(cs tls.ConnectionState) error {
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if "sha256:"+hex.EncodeToString(sum[:]) != fp {
				return errors.New("not the certificate init printed")
			}
			return nil
		},
	}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	resp, err := c.Get(server + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// TestServerEntrypoint runs server-entrypoint.sh as the container would,
// on an empty data volume: it must init (printing the admin's credentials
// and the fingerprint once) with the host and ports it was given, and
// serve; started again on the same volume it must only serve.
func TestServerEntrypoint(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(data, 0o700); err != nil { // a fresh volume: there, and empty
		t.Fatal(err)
	}
	api, broker, relay := e2e.FreePort(t), e2e.FreePort(t), e2e.FreePort(t)
	env := baseEnv(t)
	for k, v := range map[string]string{
		"PORTHOLE_DATA": data, "PORTHOLE_HOST": "127.0.0.1", "PORTHOLE_ADMIN_EMAIL": "ops@example.com",
		"PORTHOLE_API_PORT": strconv.Itoa(api), "PORTHOLE_BROKER_PORT": strconv.Itoa(broker), "PORTHOLE_RELAY_PORT": strconv.Itoa(relay),
	} {
		env[k] = v
	}
	server := fmt.Sprintf("https://127.0.0.1:%d", api)

	first := e2e.Start(t, env, "bash", "server-entrypoint.sh")
	var fp string
	e2e.WaitFor(t, 30*time.Second, "the first start to init and serve", func() bool {
		if first.Exited() {
			t.Fatalf("server-entrypoint.sh exited:\n%s\n%s", first.Stdout(), first.Stderr())
		}
		if m := regexp.MustCompile(`fingerprint: (sha256:[0-9a-f]{64})`).FindStringSubmatch(first.Stdout()); m != nil {
			fp = m[1]
		}
		return fp != "" && healthy(server, fp)
	})
	out := first.Stdout()
	for _, want := range []string{"Administrator: ops@example.com", "Password:", "otpauth://totp/"} {
		if !strings.Contains(out, want) {
			t.Errorf("the first start's log lacks %q, which the README tells people to read there:\n%s", want, out)
		}
	}
	cfg, err := daemon.LoadConfig(filepath.Join(data, daemon.ConfigFileName))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PublicURL != server {
		t.Errorf("public_url %s; want %s", cfg.PublicURL, server)
	}
	if want := fmt.Sprintf("mqtts://127.0.0.1:%d", broker); cfg.Broker.PublicURL != want {
		t.Errorf("broker.public_url %s; want %s", cfg.Broker.PublicURL, want)
	}
	if want := fmt.Sprintf("127.0.0.1:%d", relay); cfg.Relay.PublicAddr != want {
		t.Errorf("relay.public_addr %s; want %s", cfg.Relay.PublicAddr, want)
	}
	first.Stop(t)

	again := e2e.Start(t, env, "bash", "server-entrypoint.sh")
	e2e.WaitFor(t, 30*time.Second, "the second start to serve", func() bool {
		if again.Exited() {
			t.Fatalf("server-entrypoint.sh exited on the second start:\n%s\n%s", again.Stdout(), again.Stderr())
		}
		return healthy(server, fp)
	})
	if strings.Contains(again.Stdout()+again.Stderr(), "Password:") {
		t.Errorf("the second start made a new administrator:\n%s", again.Stdout())
	}
}

// TestServerEntrypointRefusesAForeignVolume: a data volume with files but
// no config is left alone, with words on how to start afresh.
func TestServerEntrypointRefusesAForeignVolume(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	stray := filepath.Join(data, "something")
	if err := os.WriteFile(stray, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := baseEnv(t)
	env["PORTHOLE_DATA"] = data
	r := e2e.Run(t, env, "", "bash", "server-entrypoint.sh")
	if r.Err == nil || !strings.Contains(r.Stderr, "docker compose down --volumes") {
		t.Errorf("err=%v stderr=%q; want a failure saying how to start afresh", r.Err, r.Stderr)
	}
	if ents, _ := os.ReadDir(data); len(ents) != 1 {
		t.Errorf("the volume was changed: %v", ents)
	}
}

// devServer starts `portholed dev` and returns its PORTHOLE_ lines.
func devServer(t *testing.T) map[string]string {
	t.Helper()
	p := e2e.Start(t, baseEnv(t), bins.Server, "dev", "--listen", "127.0.0.1:0")
	vars := map[string]string{}
	e2e.WaitFor(t, 30*time.Second, "portholed dev to start", func() bool {
		if p.Exited() {
			t.Fatalf("portholed dev exited:\n%s", p.Stderr())
		}
		for _, m := range regexp.MustCompile(`(?m)^(PORTHOLE_[A-Z_]+)=(\S+)$`).FindAllStringSubmatch(p.Stdout(), -1) {
			vars[m[1]] = m[2]
		}
		return vars["PORTHOLE_ENROLL_TOKEN"] != ""
	})
	return vars
}

// online reports whether the engineer's CLI lists the device as online.
func online(t *testing.T, dev map[string]string, name string) bool {
	env := baseEnv(t)
	for _, k := range []string{"PORTHOLE_SERVER", "PORTHOLE_TOKEN", "PORTHOLE_FINGERPRINT"} {
		env[k] = dev[k]
	}
	env["XDG_CONFIG_HOME"] = env["HOME"]
	r := e2e.MustRun(t, env, "", bins.CLI, "devices", "--json")
	var devices []struct {
		Name   string `json:"name"`
		Online bool   `json:"online"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &devices); err != nil {
		t.Fatalf("porthole devices --json: %v\n%s", err, r.Stdout)
	}
	for _, d := range devices {
		if d.Name == name {
			return d.Online
		}
	}
	return false
}

// poll is e2e.WaitFor at a pace that suits checks which start a process.
func poll(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestDeviceEntrypoint runs device-entrypoint.sh with each device
// service's environment from compose.yaml, against a real server: on the
// first start it writes the owner's config, enrolls with the token and
// comes online, and its healthcheck passes; started again without the
// token it only runs.
func TestDeviceEntrypoint(t *testing.T) {
	t.Parallel()
	dev := devServer(t)
	cf := loadCompose(t, nil)
	for name, svc := range cf.Services {
		if name == serverService || svc.Build.Target != "device" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tmp := t.TempDir()
			state, config := filepath.Join(tmp, "state"), filepath.Join(tmp, "etc", "agent.yaml")
			env := baseEnv(t)
			for k, v := range svc.Environment {
				env[k] = v
			}
			// What differs from the container: the server, and paths a test
			// may use.
			env["PORTHOLE_SERVER"] = dev["PORTHOLE_SERVER"]
			env["PORTHOLE_ENROLL_TOKEN"] = dev["PORTHOLE_ENROLL_TOKEN"]
			env["PORTHOLE_FINGERPRINT"] = dev["PORTHOLE_FINGERPRINT"]
			env["PORTHOLE_STATE"] = state
			env["PORTHOLE_AGENT_CONFIG"] = config
			env["PORTHOLE_SOCKET"] = filepath.Join(tmp, "agent.sock")
			if u := env["PORTHOLE_RUN_AS"]; u != "" {
				if _, err := user.Lookup(u); err != nil || os.Geteuid() != 0 {
					t.Logf("no user %s here (or not root): the agent runs shells as itself", u)
					env["PORTHOLE_RUN_AS"] = ""
				}
			}
			devName := svc.Environment["PORTHOLE_DEVICE_NAME"]

			p := e2e.Start(t, env, "bash", "device-entrypoint.sh")
			poll(t, 30*time.Second, devName+" to enroll and come online", func() bool {
				if p.Exited() {
					t.Fatalf("device-entrypoint.sh exited:\n%s", p.Stderr())
				}
				return online(t, dev, devName)
			})
			health := slices.Concat(svc.Healthcheck.Test[1:], []string{"--config", config})
			poll(t, 10*time.Second, "the healthcheck to pass", func() bool {
				cmd := exec.Command(filepath.Join(binDir, health[0]), health[1:]...)
				return cmd.Run() == nil
			})
			cfg, err := agent.LoadConfig(config)
			if err != nil {
				t.Fatalf("the config the entrypoint wrote: %v", err)
			}
			if string(cfg.Consent.Mode) != svc.Environment["PORTHOLE_CONSENT"] || cfg.RunAs != env["PORTHOLE_RUN_AS"] {
				t.Errorf("config consent %q run_as %q; want %q and %q", cfg.Consent.Mode, cfg.RunAs, svc.Environment["PORTHOLE_CONSENT"], env["PORTHOLE_RUN_AS"])
			}
			if _, err := os.Stat(filepath.Join(state, agentstate.EnrollmentFile)); err != nil {
				t.Errorf("the entrypoint checks for %s, which enroll did not write: %v", agentstate.EnrollmentFile, err)
			}
			p.Stop(t)

			// The container again: enrolled, no token, the same volume.
			env["PORTHOLE_ENROLL_TOKEN"] = ""
			again := e2e.Start(t, env, "bash", "device-entrypoint.sh")
			poll(t, 10*time.Second, "the agent to run again", func() bool {
				if again.Exited() {
					t.Fatalf("device-entrypoint.sh exited on the second start:\n%s", again.Stderr())
				}
				return exec.Command(filepath.Join(binDir, health[0]), health[1:]...).Run() == nil
			})
			if strings.Contains(again.Stderr(), "enrolling") {
				t.Errorf("the second start enrolled again:\n%s", again.Stderr())
			}
		})
	}
}

// TestDeviceEntrypointWithoutToken: a device not enrolled yet, started
// without a token, says what to do and exits 0 (restart: on-failure leaves
// it stopped until it is started with one).
func TestDeviceEntrypointWithoutToken(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	env := baseEnv(t)
	env["PORTHOLE_SERVER"] = "https://portholed:8443"
	env["PORTHOLE_DEVICE_NAME"] = "debian-box"
	env["PORTHOLE_STATE"] = filepath.Join(tmp, "state")
	env["PORTHOLE_AGENT_CONFIG"] = filepath.Join(tmp, "agent.yaml")
	r := e2e.Run(t, env, "", "bash", "device-entrypoint.sh")
	if r.Err != nil || !strings.Contains(r.Stderr, "PORTHOLE_ENROLL_TOKEN") || !strings.Contains(r.Stderr, "porthole enroll-token create") {
		t.Errorf("err=%v stderr=%q; want exit 0 and words on how to pass a token", r.Err, r.Stderr)
	}
	if _, err := os.Stat(env["PORTHOLE_STATE"]); err == nil {
		t.Error("the state dir was made without an enrollment")
	}
}

// TestDeviceEntrypointRefusesBadSettings: values that would write a wrong
// config (or inject keys into it) are refused before anything is written.
func TestDeviceEntrypointRefusesBadSettings(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ key, value string }{
		{"PORTHOLE_CONSENT", "always"},
		{"PORTHOLE_CONSENT", "auto\nrun_as: root"},
		{"PORTHOLE_ALLOW_PORTS", "22; rm"},
		{"PORTHOLE_ALLOW_PORTS", "22,\nconsent: auto"},
		{"PORTHOLE_RUN_AS", "root\nconsent: auto"},
	} {
		t.Run(tt.key+"="+strconv.Quote(tt.value), func(t *testing.T) {
			t.Parallel()
			tmp := t.TempDir()
			env := baseEnv(t)
			env["PORTHOLE_STATE"] = filepath.Join(tmp, "state")
			env["PORTHOLE_AGENT_CONFIG"] = filepath.Join(tmp, "agent.yaml")
			env["PORTHOLE_ENROLL_TOKEN"] = "phe_unused"
			env[tt.key] = tt.value
			r := e2e.Run(t, env, "", "bash", "device-entrypoint.sh")
			if r.Err == nil || !strings.Contains(r.Stderr, tt.key) {
				t.Errorf("err=%v stderr=%q; want a failure naming %s", r.Err, r.Stderr, tt.key)
			}
			if _, err := os.Stat(env["PORTHOLE_AGENT_CONFIG"]); err == nil {
				t.Error("a config was written anyway")
			}
		})
	}
}
