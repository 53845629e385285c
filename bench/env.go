package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/internal/emptyhome"
)

// Names the benchmark gives what it makes.
const (
	benchFleet  = "bench"
	benchDevice = "dev1"
	adminEmail  = "bench@porthole.invalid"
	// adminPassword is long enough for any policy; it never leaves the run.
	adminPassword = "bench password, thrown away with the run"
)

// binaries are the built programs.
type binaries struct {
	server, agent, cli string
}

// buildBinaries compiles portholed, porthole-agent and porthole from the
// module that holds this package into dir, as `make build` does.
func buildBinaries(ctx context.Context, dir string) (binaries, error) {
	root, err := moduleRoot()
	if err != nil {
		return binaries{}, err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", dir+"/",
		"./cmd/portholed", "./cmd/porthole-agent", "./cmd/porthole")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return binaries{}, fmt.Errorf("go build: %w\n%s", err, out)
	}
	return binaries{
		server: filepath.Join(dir, "portholed"),
		agent:  filepath.Join(dir, "porthole-agent"),
		cli:    filepath.Join(dir, "porthole"),
	}, nil
}

// agentSizeARM64 builds porthole-agent for linux/arm64 as `make build`
// does (static, stripped) into dir and returns its size.
func agentSizeARM64(ctx context.Context, dir string) (int64, error) {
	root, err := moduleRoot()
	if err != nil {
		return 0, err
	}
	out := filepath.Join(dir, "linux-arm64", "porthole-agent")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./cmd/porthole-agent")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("go build for linux/arm64: %w\n%s", err, msg)
	}
	fi, err := os.Stat(out)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// moduleRoot is the directory of go.mod: from the working directory
// upwards, else from this source file's location.
func moduleRoot() (string, error) {
	starts := []string{}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, here, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(here))
	}
	for _, dir := range starts {
		for d := dir; ; d = filepath.Dir(d) {
			if data, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil &&
				strings.Contains(string(data), "module github.com/porthole/porthole\n") {
				return d, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", fmt.Errorf("cannot find Porthole's go.mod above %v: run from the repository", starts)
}

// porthole is one Porthole deployment on loopback: a server with every
// role, one enrolled device with its agent running, and the engineer's
// CLI logged in.
type porthole struct {
	log  *slog.Logger
	dir  string
	bins binaries

	dataDir, config string
	url, fp         string // the API, as the benchmark reaches it
	publicURL       string // the API, as the CLI and the agent reach it
	apiPort         int
	brokerPort      int
	relayPort       int
	proxies         []*delayProxy // in front of every listener, if any
	server          *proc
	api             *apiclient.Client // logged in as the admin

	agentState string
	agent      *proc

	cliEnv    []string // PORTHOLE_* and a private HOME for porthole and stock ssh
	sshConfig string   // an ssh_config with `porthole ssh-config`'s block

	metricsOnce sync.Once
	metrics     *http.Client // for /metrics; see metricsClient
}

// startPorthole initialises a server in dir/server with bins, starts it,
// logs in, enrolls benchDevice and runs its agent. With a oneWay delay,
// the CLI and the agent reach the API, the broker and the relay only
// through delayProxies: every link has a round trip of 2×oneWay.
func startPorthole(ctx context.Context, log *slog.Logger, dir string, bins binaries, oneWay time.Duration) (_ *porthole, err error) {
	p := &porthole{log: log, dir: dir, bins: bins, dataDir: filepath.Join(dir, "server")}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	for _, port := range []*int{&p.apiPort, &p.brokerPort, &p.relayPort} {
		if *port, err = freePort(); err != nil {
			return nil, err
		}
	}
	p.url = fmt.Sprintf("https://127.0.0.1:%d", p.apiPort)
	p.publicURL = p.url
	public := fmt.Sprintf(`public_url: %s
broker:
  listen: 127.0.0.1:%d
relay:
  listen: 127.0.0.1:%d
`, p.url, p.brokerPort, p.relayPort)
	if oneWay > 0 {
		var ports []int
		for _, port := range []int{p.apiPort, p.brokerPort, p.relayPort} {
			proxy, err := startDelayProxy(fmt.Sprintf("127.0.0.1:%d", port), oneWay)
			if err != nil {
				return nil, err
			}
			p.proxies = append(p.proxies, proxy)
			ports = append(ports, proxy.port())
		}
		p.publicURL = fmt.Sprintf("https://127.0.0.1:%d", ports[0])
		public = fmt.Sprintf(`public_url: %s
broker:
  listen: 127.0.0.1:%d
  public_url: mqtts://127.0.0.1:%d
relay:
  listen: 127.0.0.1:%d
  public_addr: 127.0.0.1:%d
`, p.publicURL, p.brokerPort, ports[1], p.relayPort, ports[2])
	}

	out, err := runOutput(ctx, baseEnv(dir), adminPassword+"\n", bins.server, "init", "--data", p.dataDir,
		"--admin-email", adminEmail, "--password-stdin", "--public-url", p.publicURL,
		"--broker-listen", fmt.Sprintf("127.0.0.1:%d", p.brokerPort),
		"--relay-listen", fmt.Sprintf("127.0.0.1:%d", p.relayPort))
	if err != nil {
		return nil, err
	}
	secret := regexp.MustCompile(`secret=([A-Z2-7]+)`).FindStringSubmatch(out)
	fp := regexp.MustCompile(`fingerprint: (sha256:[0-9a-f]+)`).FindStringSubmatch(out)
	if secret == nil || fp == nil {
		return nil, fmt.Errorf("portholed init printed no TOTP secret or TLS fingerprint:\n%s", out)
	}
	p.fp = fp[1]
	// The config init wrote listens on every interface; this one keeps the
	// API on loopback too, and logs only problems.
	p.config = filepath.Join(p.dataDir, "bench.yaml")
	config := fmt.Sprintf("data_dir: .\nlisten: 127.0.0.1:%d\n%slog:\n  level: warn\n", p.apiPort, public)
	if err := os.WriteFile(p.config, []byte(config), 0o600); err != nil {
		return nil, err
	}
	if err := p.startServer(ctx); err != nil {
		return nil, err
	}

	if err := p.login(ctx, secret[1], adminPassword); err != nil {
		return nil, err
	}
	tok, err := p.api.CreateEnrollmentToken(ctx, benchFleet, apitype.CreateEnrollmentTokenRequest{})
	if err != nil {
		return nil, fmt.Errorf("creating an enrollment token: %w", err)
	}

	// The device: the real agent, enrolled, idling on MQTT. Its owner
	// lets the fleet's engineers in without a support code (consent:
	// auto, as for a fleet its operator owns), so that what is timed is
	// the machines, not a person reading out a code. Its socket for the
	// owner is the run's own.
	p.agentState = filepath.Join(dir, benchDevice)
	if _, err := runOutput(ctx, baseEnv(dir), "", bins.agent, "enroll", "--server", p.publicURL,
		"--token", tok.Token, "--fingerprint", p.fp, "--name", benchDevice, "--state", p.agentState); err != nil {
		return nil, err
	}
	if p.agent, err = startAgent(bins.agent, "porthole-agent", dir, p.agentState); err != nil {
		return nil, err
	}
	if err := p.waitOnline(ctx, benchDevice, 30*time.Second); err != nil {
		return nil, err
	}

	// Stock OpenSSH through porthole proxy.
	cfg, err := runOutput(ctx, p.cliEnv, "", bins.cli, "ssh-config")
	if err != nil {
		return nil, err
	}
	p.sshConfig = filepath.Join(dir, "porthole_ssh_config")
	if err := os.WriteFile(p.sshConfig, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	return p, nil
}

// login logs in as the admin (TOTP secret and password as init took
// them), creates benchFleet and sets up the CLI's environment, with a
// private HOME in p.dir.
func (p *porthole) login(ctx context.Context, secret, password string) error {
	anon, err := apiclient.New(p.url, apiclient.Options{Fingerprint: p.fp})
	if err != nil {
		return err
	}
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		return fmt.Errorf("making a TOTP code: %w", err)
	}
	login, err := anon.Login(ctx, apitype.LoginRequest{Email: adminEmail, Password: password, TOTP: code})
	if err != nil {
		return fmt.Errorf("logging in as the admin: %w", err)
	}
	if p.api, err = apiclient.New(p.url, apiclient.Options{Token: login.Token, Fingerprint: p.fp}); err != nil {
		return err
	}
	if _, err := p.api.CreateFleet(ctx, benchFleet); err != nil {
		return fmt.Errorf("creating fleet %s: %w", benchFleet, err)
	}
	home := filepath.Join(p.dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	p.cliEnv = append(baseEnv(home),
		"PORTHOLE_SERVER="+p.publicURL, "PORTHOLE_TOKEN="+login.Token, "PORTHOLE_FINGERPRINT="+p.fp,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "TERM=xterm")
	return nil
}

// baseEnv is a minimal environment for children: PATH and a HOME of the
// run's own, so that the user's ssh config, known hosts and Porthole login
// play no part.
func baseEnv(home string) []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LANG=C.UTF-8"}
}

// startServer runs `portholed serve` and waits until it answers.
func (p *porthole) startServer(ctx context.Context) error {
	srv, err := startProc("portholed", filepath.Join(p.dir, "portholed.log"), baseEnv(p.dir),
		p.bins.server, "serve", "--config", p.config)
	if err != nil {
		return err
	}
	p.server = srv
	return p.waitHealthy(ctx, 60*time.Second)
}

// waitHealthy polls /healthz until the server answers 200.
func (p *porthole) waitHealthy(ctx context.Context, timeout time.Duration) error {
	c, err := apiclient.New(p.url, apiclient.Options{Fingerprint: p.fp, Timeout: time.Second})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		err := c.Do(ctx, http.MethodGet, "/healthz", nil, nil, nil)
		if err == nil {
			return nil
		}
		if p.server.exited() {
			return p.server.failed("exited while starting")
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return p.server.failed(fmt.Sprintf("did not answer /healthz within %v (%v)", timeout, err))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// restartServer stops portholed and starts it again on the same data,
// returning when the new one answers; it reports how long the stop took
// and when the new process began.
func (p *porthole) restartServer(ctx context.Context) (stopTook time.Duration, started time.Time, err error) {
	t0 := time.Now()
	if err := p.server.stop(60 * time.Second); err != nil {
		return 0, time.Time{}, err
	}
	stopTook = time.Since(t0)
	started = time.Now()
	return stopTook, started, p.startServer(ctx)
}

// waitOnline waits until the server shows the device online.
func (p *porthole) waitOnline(ctx context.Context, name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ds, err := p.api.Devices(ctx, apiclient.DeviceFilter{Fleet: benchFleet, Name: name})
		if err == nil && len(ds) == 1 && ds[0].Online {
			return nil
		}
		if p.agent != nil && p.agent.exited() {
			return p.agent.failed("exited")
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s was not online within %v (%v); agent log:\n%s", name, timeout, err, tailFile(p.agent.logPath, 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitIdle waits until the relay carries no connection: the last
// session's engineer has gone and the device has closed its relay
// connection, so the next session starts from an idle device.
func (p *porthole) waitIdle() {
	if !waitIdlePort(p.relayPort, 5*time.Second) {
		p.log.Warn("the relay still has connections 5 s after a session ended")
	}
}

// cmd is the porthole CLI with args.
func (p *porthole) cmd(args ...string) *exec.Cmd {
	c := exec.Command(p.bins.cli, args...)
	c.Env = p.cliEnv
	return c
}

// stockSSH is OpenSSH's program (ssh or scp) set up by `porthole
// ssh-config`, reaching the device as benchDevice.porthole.
func (p *porthole) stockSSH(program string, args ...string) *exec.Cmd {
	c := exec.Command(program, append([]string{"-F", p.sshConfig, "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"}, args...)...)
	c.Env = p.cliEnv
	return c
}

// cpu is the CPU time of the relay (portholed) and of the device's side
// (the agent and what it started).
func (p *porthole) cpu() (relay, device time.Duration, err error) {
	if relay, err = cpuTime(p.server.pid()); err != nil {
		return 0, 0, err
	}
	device, err = cpuTime(p.agent.pid())
	return relay, device, err
}

// close stops the agent and the server.
func (p *porthole) close() {
	if err := p.agent.stop(10 * time.Second); err != nil {
		p.log.Warn("stopping the agent", "err", err)
	}
	if err := p.server.stop(60 * time.Second); err != nil {
		p.log.Warn("stopping the server", "err", err)
	}
	for _, proxy := range p.proxies {
		proxy.close()
	}
}

// startAgent writes the owner's config of a bench device (consent: auto,
// so that what is timed is the machines, not a person reading out a code;
// its socket in dir) and runs its agent on state, logging to dir. The
// device's shells, like sshd's (see openssh.go), start in an empty home:
// bash reads ~/.bashrc for a command over SSH (SSH_CLIENT is set, as sshd
// sets it), and this machine's root .bashrc alone (pyenv) takes longer
// than a login; so the agent runs in a mount namespace of its own where
// root's home is empty, where it may.
func startAgent(bin, name, dir, state string) (*proc, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	config := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(config, fmt.Appendf(nil, "consent: auto\nsocket: %s\n", filepath.Join(dir, "agent.sock")), 0o600); err != nil {
		return nil, err
	}
	cmd, env := emptyhome.Wrap(dir, []string{bin, "run", "--state", state, "--config", config})
	return startProc(name, filepath.Join(dir, "agent.log"), append(baseEnv(dir), env...), cmd[0], cmd[1:]...)
}
