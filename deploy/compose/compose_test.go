// Package compose_test keeps deploy/compose honest where Docker cannot run:
// it parses compose.yaml and the Dockerfile and checks that every build,
// file, script and command they name exists in this repository and in our
// built programs (against their own --help), that only the server
// publishes ports and on the server's default ports, and that the devices
// are built on Debian, Ubuntu, Fedora and Arch Linux. The entrypoint scripts are also
// run for real, against real servers (entrypoint_test.go).
package compose_test

import (
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/porthole/porthole/agent"
	"github.com/porthole/porthole/agent/agentstate"
	"github.com/porthole/porthole/daemon"
	"github.com/porthole/porthole/e2e"
)

// repoRoot is the repository, relative to this directory.
const repoRoot = "../.."

// serverService is the compose service that runs portholed; every other
// service is a device or the engineer's CLI and publishes nothing.
const serverService = "portholed"

var (
	bins   e2e.Binaries
	binDir string
)

func TestMain(m *testing.M) { e2e.Main(m, "porthole-compose-bin-", &bins, &binDir) }

// defaultPorts are the API's, the broker's and the relay's ports when
// portholed's config leaves them empty (daemon.Config.Validate).
func defaultPorts(t *testing.T) map[string]int {
	t.Helper()
	cfg, err := daemon.ParseConfig([]byte("data_dir: /var/lib/portholed\n"))
	if err != nil {
		t.Fatal(err)
	}
	port := func(addr string) int {
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(p)
		return n
	}
	return map[string]int{"API": port(cfg.Listen), "BROKER": port(cfg.Broker.Listen), "RELAY": port(cfg.Relay.Listen)}
}

// imageOf returns the service's Dockerfile (parsed) and build stage.
func imageOf(t *testing.T, name string, svc service) (*dockerfile, *stage) {
	t.Helper()
	if svc.Image != "" {
		t.Fatalf("service %s pulls image %s: build it from this repository instead", name, svc.Image)
	}
	df := parseDockerfile(t, filepath.Join(svc.Build.Context, svc.Build.Dockerfile))
	st := df.stage(svc.Build.Target)
	if st == nil {
		t.Fatalf("service %s builds target %q, which %s does not have", name, svc.Build.Target, df.path)
	}
	return df, st
}

// entrypointOf returns what the service runs: compose's entrypoint, else
// its image's ENTRYPOINT.
func entrypointOf(t *testing.T, name string, svc service) ([]string, *stage) {
	t.Helper()
	_, st := imageOf(t, name, svc)
	if len(svc.Entrypoint) > 0 {
		return svc.Entrypoint, st
	}
	return st.entrypoint(t), st
}

// sourceOf maps a path inside the stage's image back to the file of this
// repository a COPY put there ("" if none did).
func sourceOf(st *stage, path string) string {
	for _, op := range st.copies() {
		if op.from != "" || len(op.srcs) != 1 {
			continue
		}
		if op.dest == path || strings.HasSuffix(op.dest, "/") && op.dest+filepath.Base(op.srcs[0]) == path {
			return filepath.Join(repoRoot, op.srcs[0])
		}
	}
	return ""
}

func TestServicesBuildFromThisRepository(t *testing.T) {
	t.Parallel()
	cf := loadCompose(t, nil)
	if len(cf.Services) == 0 {
		t.Fatal("compose.yaml has no services")
	}
	for name, svc := range cf.Services {
		if fi, err := os.Stat(svc.Build.Context); err != nil || !fi.IsDir() {
			t.Errorf("service %s: build context %q is not a directory", name, svc.Build.Context)
			continue
		}
		if abs, _ := filepath.Abs(svc.Build.Context); abs != mustAbs(t, repoRoot) {
			t.Errorf("service %s: build context %s; want the repository's root (the Dockerfile copies go.mod and deploy/compose/)", name, svc.Build.Context)
		}
		df, st := imageOf(t, name, svc)
		for arg := range svc.Build.Args {
			if _, ok := df.args[arg]; !ok {
				t.Errorf("service %s: build arg %s is not an ARG of %s", name, arg, df.path)
			}
		}
		if base := df.baseImage(st, svc.Build.Args); strings.Contains(base, "$") || base == "" {
			t.Errorf("service %s: base image %q is not resolved", name, base)
		}
		// Its entrypoint is a script this stage copies from deploy/compose,
		// or one of our programs.
		ep, _ := entrypointOf(t, name, svc)
		if len(ep) == 0 {
			t.Errorf("service %s: no entrypoint", name)
			continue
		}
		if isOurs(ep[0]) {
			if !builtInto(st, ep[0]) {
				t.Errorf("service %s: entrypoint %s is not copied from the build stage", name, ep[0])
			}
		} else if src := sourceOf(st, ep[0]); src == "" {
			t.Errorf("service %s: entrypoint %s is not copied into the image from this repository", name, ep[0])
		} else if !strings.HasPrefix(src, filepath.Join(repoRoot, "deploy/compose")+"/") {
			t.Errorf("service %s: entrypoint %s comes from %s; want a script in deploy/compose", name, ep[0], src)
		}
	}
}

// builtInto reports whether the stage copies path from the build stage's
// output of one of our programs.
func builtInto(st *stage, path string) bool {
	for _, op := range st.copies() {
		if op.from != "" && (op.dest == path || op.dest == filepath.Dir(path)+"/") && len(op.srcs) == 1 && filepath.Base(op.srcs[0]) == filepath.Base(path) {
			return true
		}
	}
	return false
}

func mustAbs(t *testing.T, p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	df := parseDockerfile(t, "Dockerfile")
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	stages := map[string]bool{}
	for _, st := range df.stages {
		base := df.baseImage(st, nil)
		// The Go builder is the release go.mod asks for.
		if strings.HasPrefix(base, "golang:") {
			if tag := strings.TrimPrefix(base, "golang:"); !strings.HasPrefix(tag, string(goVersion[1])) {
				t.Errorf("stage %s builds with %s; go.mod asks for go %s", st.name, base, goVersion[1])
			}
			checkGoBuild(t, st)
		}
		for _, op := range st.copies() {
			if op.from != "" {
				// Only from an earlier stage, and only what it built.
				if !stages[op.from] {
					t.Errorf("%s:%d: COPY --from=%s: no earlier stage of that name", df.path, op.line, op.from)
				} else if from := df.stage(op.from); !slices.ContainsFunc(op.srcs, func(s string) bool { return builds(from, s) }) {
					t.Errorf("%s:%d: COPY --from=%s %v: that stage builds no such program", df.path, op.line, op.from, op.srcs)
				}
				continue
			}
			for _, src := range op.srcs {
				matches, _ := filepath.Glob(filepath.Join(repoRoot, src))
				if len(matches) == 0 {
					t.Errorf("%s:%d: COPY %s: no such file in the repository", df.path, op.line, src)
				}
				if strings.HasSuffix(src, ".sh") {
					if fi, err := os.Stat(filepath.Join(repoRoot, src)); err == nil && fi.Mode()&0o111 == 0 {
						t.Errorf("%s is not executable", src)
					}
				}
			}
		}
		stages[st.name] = true
	}
	for _, want := range []string{"build", "server", "cli", "device"} {
		if !stages[want] {
			t.Errorf("%s has no stage %q", df.path, want)
		}
	}
}

// goBuild is the build stage's `go build` line.
var goBuild = regexp.MustCompile(`go build .*-o (/\S+/) ((?:\./cmd/\S+ ?)+)`)

// builds reports whether the build stage's go build puts src (/out/NAME)
// there.
func builds(st *stage, src string) bool {
	for _, in := range st.instrs {
		if m := goBuild.FindStringSubmatch(in.rest); in.cmd == "RUN" && m != nil {
			for _, pkg := range strings.Fields(m[2]) {
				if m[1]+filepath.Base(pkg) == src {
					return true
				}
			}
		}
	}
	return false
}

// checkGoBuild: the packages go build names are our commands.
func checkGoBuild(t *testing.T, st *stage) {
	found := false
	for _, in := range st.instrs {
		m := goBuild.FindStringSubmatch(in.rest)
		if in.cmd != "RUN" || m == nil {
			continue
		}
		found = true
		for _, pkg := range strings.Fields(m[2]) {
			if !isOurs(pkg) {
				t.Errorf("stage %s builds %s, not one of our programs %v", st.name, pkg, ours)
			}
			if _, err := os.Stat(filepath.Join(repoRoot, pkg, "main.go")); err != nil {
				t.Errorf("stage %s builds %s: %v", st.name, pkg, err)
			}
		}
		if !strings.Contains(in.rest, "CGO_ENABLED=0") {
			t.Errorf("stage %s: go build without CGO_ENABLED=0; the binaries must be static to run on any distribution", st.name)
		}
	}
	if !found {
		t.Errorf("stage %s runs no go build -o DIR/ ./cmd/...", st.name)
	}
}

// TestDockerignoreKeepsTheSources: the Dockerfile's own ignore file must
// not hide what the build copies.
func TestDockerignoreKeepsTheSources(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("Dockerfile.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	needed := []string{"go.mod", "go.sum", "cmd/portholed/main.go", "agent/config.go", "deploy/compose/server-entrypoint.sh", "deploy/compose/device-entrypoint.sh"}
	for line := range strings.Lines(string(data)) {
		pat := strings.TrimSpace(line)
		if pat == "" || strings.HasPrefix(pat, "#") {
			continue
		}
		pat = strings.TrimPrefix(pat, "**/")
		for _, p := range needed {
			for dir := p; dir != "."; dir = filepath.Dir(dir) {
				if ok, _ := filepath.Match(pat, dir); ok {
					t.Errorf("Dockerfile.dockerignore: %q hides %s, which the build needs", line, p)
				}
				if ok, _ := filepath.Match(pat, filepath.Base(dir)); ok && strings.Contains(line, "**/") {
					t.Errorf("Dockerfile.dockerignore: %q hides %s, which the build needs", line, p)
				}
			}
		}
	}
}

// deviceImages are the device containers' base images: one per
// distribution, each an official image at a release (Arch Linux, a
// rolling release, has none: base is its latest snapshot), and whether
// useradd, which the device stage runs, comes with it (Fedora's image
// lacks shadow-utils, which the stage installs with dnf).
var deviceImages = map[string]struct {
	tag      *regexp.Regexp
	useradd  bool
	installs string // what the device stage runs to get useradd otherwise
}{
	"debian":    {regexp.MustCompile(`^[a-z]+-slim$`), true, ""},
	"ubuntu":    {regexp.MustCompile(`^\d+\.04$`), true, ""}, // an LTS release
	"fedora":    {regexp.MustCompile(`^\d+$`), false, "dnf -y install shadow-utils"},
	"archlinux": {regexp.MustCompile(`^base$`), true, ""}, // base holds shadow
}

// TestDevicesAreDebianUbuntuFedoraArch: one device per distribution, each
// publishing nothing, enrolling with the server's service name, valid
// names and consent modes.
func TestDevicesAreDebianUbuntuFedoraArch(t *testing.T) {
	t.Parallel()
	cf := loadCompose(t, nil)
	ports := defaultPorts(t)
	var distros, names []string
	for name, svc := range cf.Services {
		if name == serverService || slices.Contains(svc.Profiles, "cli") {
			continue
		}
		df, st := imageOf(t, name, svc)
		if st.name != "device" {
			t.Errorf("service %s builds %s; every service but %s and the CLI is a device", name, st.name, serverService)
		}
		base := df.baseImage(st, svc.Build.Args)
		repo, tag, _ := strings.Cut(base, ":")
		distros = append(distros, repo)
		if img, ok := deviceImages[repo]; !ok {
			t.Errorf("service %s is built on %s, which this test does not know", name, base)
		} else {
			if !img.tag.MatchString(tag) {
				t.Errorf("service %s is built on %s; want %s at a tag matching %s", name, base, repo, img.tag)
			}
			if !img.useradd && !slices.ContainsFunc(st.instrs, func(in instr) bool {
				return in.cmd == "RUN" && strings.Contains(in.rest, img.installs)
			}) {
				t.Errorf("service %s is built on %s, which lacks useradd; the device stage does not run %q", name, base, img.installs)
			}
		}
		env := svc.Environment
		dev := env["PORTHOLE_DEVICE_NAME"]
		if err := agent.CheckName(dev); err != nil {
			t.Errorf("service %s: PORTHOLE_DEVICE_NAME: %v", name, err)
		}
		names = append(names, dev)
		if cfg := fmt.Sprintf("consent: %s\n", env["PORTHOLE_CONSENT"]); env["PORTHOLE_CONSENT"] == "" {
			t.Errorf("service %s sets no PORTHOLE_CONSENT", name)
		} else if _, err := agent.ParseConfig([]byte(cfg)); err != nil {
			t.Errorf("service %s: PORTHOLE_CONSENT: %v", name, err)
		}
		if want := fmt.Sprintf("https://%s:%d", serverService, ports["API"]); env["PORTHOLE_SERVER"] != want {
			t.Errorf("service %s: PORTHOLE_SERVER=%s; want %s, the server service's API", name, env["PORTHOLE_SERVER"], want)
		}
		for _, k := range []string{"PORTHOLE_ENROLL_TOKEN", "PORTHOLE_FINGERPRINT"} {
			if _, ok := env[k]; !ok {
				t.Errorf("service %s does not pass %s through from the environment", name, k)
			}
		}
		if c := svc.DependsOn[serverService].Condition; c != "service_healthy" {
			t.Errorf("service %s: depends_on %s with condition %q; want service_healthy, so that it enrolls with a server that answers", name, serverService, c)
		}
		if !slices.ContainsFunc(svc.Volumes, func(v string) bool { return strings.HasSuffix(v, ":"+agentstate.DefaultDir) }) {
			t.Errorf("service %s keeps no volume at %s: the device would lose its key and enrollment with its container", name, agentstate.DefaultDir)
		}
	}
	slices.Sort(distros)
	if want := slices.Sorted(maps.Keys(deviceImages)); !slices.Equal(distros, want) {
		t.Errorf("devices are built on %v; want one each of %v", distros, want)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(names)))) != len(names) {
		t.Errorf("device names %v are not distinct", names)
	}
}

// TestOneHostName: the name the server is reached by is one setting,
// PORTHOLE_HOST, which the server writes into its certificate and config
// and every client service dials; by default the server's service name.
func TestOneHostName(t *testing.T) {
	t.Parallel()
	api := defaultPorts(t)["API"]
	for _, host := range []string{"", "porthole.example.com"} {
		env := map[string]string{}
		want := serverService
		if host != "" {
			env["PORTHOLE_HOST"], want = host, host
		}
		cf := loadCompose(t, env)
		if got := cf.Services[serverService].Environment["PORTHOLE_HOST"]; got != want {
			t.Errorf("PORTHOLE_HOST=%q: the server is told it is %q; want %q", host, got, want)
		}
		for name, svc := range cf.Services {
			if name == serverService {
				continue
			}
			if got, url := svc.Environment["PORTHOLE_SERVER"], fmt.Sprintf("https://%s:%d", want, api); got != url {
				t.Errorf("PORTHOLE_HOST=%q: service %s dials %s; want %s", host, name, got, url)
			}
		}
	}
}

// TestOnlyTheServerPublishesPorts: the devices (and the CLI) publish
// nothing; the server publishes its three default ports, each on the same
// port outside as inside, since the addresses it tells devices and
// engineers carry the inside port.
func TestOnlyTheServerPublishesPorts(t *testing.T) {
	t.Parallel()
	cf := loadCompose(t, nil)
	want := defaultPorts(t)
	for name, svc := range cf.Services {
		if name != serverService {
			if len(svc.Ports) > 0 {
				t.Errorf("service %s publishes ports %v; only %s may", name, svc.Ports, serverService)
			}
			continue
		}
		var got []int
		for _, p := range svc.Ports {
			hostPort, containerPort, ok := strings.Cut(p, ":")
			if !ok || strings.Count(p, ":") != 1 || hostPort != containerPort {
				t.Errorf("service %s publishes %q; want PORT:PORT (the same inside and out)", name, p)
				continue
			}
			n, err := strconv.Atoi(containerPort)
			if err != nil {
				t.Errorf("service %s publishes %q: not a port", name, p)
			}
			got = append(got, n)
		}
		wantList := []int{want["API"], want["BROKER"], want["RELAY"]}
		if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(wantList))) {
			t.Errorf("service %s publishes %v; want portholed's defaults %v (API, broker, relay)", name, got, wantList)
		}
		// The entrypoint's own defaults are the same ports.
		script, err := os.ReadFile("server-entrypoint.sh")
		if err != nil {
			t.Fatal(err)
		}
		for role, port := range want {
			re := regexp.MustCompile(`PORTHOLE_` + role + `_PORT:-(\d+)`)
			m := re.FindSubmatch(script)
			if m == nil || string(m[1]) != strconv.Itoa(port) {
				t.Errorf("server-entrypoint.sh: PORTHOLE_%s_PORT default is not %d", role, port)
			}
			if _, ok := svc.Environment["PORTHOLE_"+role+"_PORT"]; ok {
				t.Errorf("service %s sets PORTHOLE_%s_PORT: then the published ports no longer match", name, role)
			}
		}
	}
	if _, ok := cf.Services[serverService]; !ok {
		t.Fatalf("compose.yaml has no %s service", serverService)
	}
}

// TestVolumes: named volumes are declared, bind mounts name files that
// exist.
func TestVolumes(t *testing.T) {
	t.Parallel()
	cf := loadCompose(t, nil)
	for name, svc := range cf.Services {
		for _, v := range svc.Volumes {
			src, dst, ok := strings.Cut(v, ":")
			if !ok || !strings.HasPrefix(dst, "/") {
				t.Errorf("service %s: volume %q is not SOURCE:/PATH", name, v)
				continue
			}
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				if _, err := os.Stat(src); err != nil {
					t.Errorf("service %s mounts %s: %v", name, src, err)
				}
			} else if _, ok := cf.Volumes[src]; !ok {
				t.Errorf("service %s uses volume %s, which compose.yaml does not declare", name, src)
			}
		}
	}
}

// TestEnvironmentIsRead: every PORTHOLE_ variable a service sets is read by
// what the service runs (its entrypoint script, or our program's help
// lists it), so a misspelt one cannot be silently ignored.
func TestEnvironmentIsRead(t *testing.T) {
	t.Parallel()
	cf := loadCompose(t, nil)
	for name, svc := range cf.Services {
		ep, st := entrypointOf(t, name, svc)
		var reader string
		if len(ep) > 0 && isOurs(ep[0]) {
			out, err := exec.Command(filepath.Join(binDir, filepath.Base(ep[0])), "--help").Output()
			if err != nil {
				t.Fatal(err)
			}
			reader = string(out)
		} else if len(ep) > 0 {
			data, err := os.ReadFile(sourceOf(st, ep[0]))
			if err != nil {
				t.Errorf("service %s: %v", name, err)
				continue
			}
			reader = string(data)
		}
		for k := range svc.Environment {
			if !regexp.MustCompile(`\b` + k + `\b`).MatchString(reader) {
				t.Errorf("service %s sets %s, which %v never reads", name, k, ep)
			}
		}
	}
}

// TestCommandsAreOurs: the healthchecks, and every command the entrypoint
// scripts run, name our programs with subcommands and flags they have.
func TestCommandsAreOurs(t *testing.T) {
	t.Parallel()
	cf := loadCompose(t, nil)
	for name, svc := range cf.Services {
		test := svc.Healthcheck.Test
		if name != serverService && !slices.Contains(svc.Profiles, "cli") && len(test) == 0 {
			t.Errorf("device %s has no healthcheck", name)
		}
		if len(test) == 0 {
			continue
		}
		if test[0] != "CMD" || len(test) < 2 {
			t.Errorf("service %s: healthcheck %v; want [\"CMD\", program, ...]", name, test)
			continue
		}
		argv := test[1:]
		switch {
		case isOurs(argv[0]):
			if err := checkCommand(argv); err != nil {
				t.Errorf("service %s healthcheck: %v", name, err)
			}
		case argv[0] == "bash" || argv[0] == "sh":
		default:
			t.Errorf("service %s: healthcheck runs %s, which is neither ours nor a shell", name, argv[0])
		}
	}
	scripts, _ := filepath.Glob("*.sh")
	if len(scripts) < 2 {
		t.Fatalf("found scripts %v; want the server's and the device's entrypoints", scripts)
	}
	for _, s := range scripts {
		data, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, words := range shellCommands(string(data)) {
			words = commandWords(words)
			if len(words) == 0 || !isOurs(words[0]) {
				continue
			}
			n++
			if err := checkCommand(words); err != nil {
				t.Errorf("%s: %v", s, err)
			}
		}
		if n == 0 {
			t.Errorf("%s runs none of our programs; is the parser still reading it?", s)
		}
	}
}

// TestScriptsParse: bash -n on every script (shellcheck too, when it is
// installed), and each is executable.
func TestScriptsParse(t *testing.T) {
	t.Parallel()
	scripts, _ := filepath.Glob("*.sh")
	for _, s := range scripts {
		if out, err := exec.Command("bash", "-n", s).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", s, err, out)
		}
		if fi, err := os.Stat(s); err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("%s is not executable", s)
		}
		data, _ := os.ReadFile(s)
		if !strings.HasPrefix(string(data), "#!/usr/bin/env bash\n") {
			t.Errorf("%s does not start with #!/usr/bin/env bash", s)
		}
		if !strings.Contains(string(data), "set -euo pipefail") {
			t.Errorf("%s does not set -euo pipefail", s)
		}
	}
	if path, err := exec.LookPath("shellcheck"); err == nil {
		if out, err := exec.Command(path, scripts...).CombinedOutput(); err != nil {
			t.Errorf("shellcheck: %v\n%s", err, out)
		}
	} else {
		t.Log("shellcheck is not installed; bash -n only")
	}
}

// TestREADMECommands: the README's commands run our programs with real
// subcommands and flags, directly or through docker compose run/exec, and
// name services that exist.
func TestREADMECommands(t *testing.T) {
	t.Parallel()
	cf := loadCompose(t, nil)
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, words := range shellCommands(shBlocks(string(data))) {
		words = commandWords(words)
		if len(words) == 0 {
			continue
		}
		line := strings.Join(words, " ")
		var argv []string
		switch {
		case isOurs(words[0]):
			argv = words
		case len(words) >= 3 && words[0] == "docker" && words[1] == "compose":
			sub, rest := words[2], words[3:]
			// docker compose's own options before the service: only
			// these, and -e/--env take a value.
			for len(rest) > 0 && strings.HasPrefix(rest[0], "-") {
				if rest[0] == "-e" || rest[0] == "--env" {
					rest = rest[1:]
				}
				rest = rest[1:]
			}
			switch sub {
			case "run", "exec":
				if len(rest) == 0 {
					t.Errorf("README: `%s` names no service", line)
					continue
				}
				svc, ok := cf.Services[rest[0]]
				if !ok {
					t.Errorf("README: `%s`: compose.yaml has no service %s", line, rest[0])
					continue
				}
				argv = rest[1:]
				if sub == "run" {
					ep, _ := entrypointOf(t, rest[0], svc)
					argv = append(ep, argv...)
				}
			case "logs", "stop", "start", "restart", "ps", "build", "up", "down", "rm", "pull":
				for _, w := range rest {
					if _, ok := cf.Services[w]; !ok {
						t.Errorf("README: `%s`: compose.yaml has no service %s", line, w)
					}
				}
				continue
			default:
				t.Errorf("README: `%s`: docker compose %s is not one this test knows", line, sub)
				continue
			}
		default:
			continue
		}
		if len(argv) == 0 || !isOurs(argv[0]) {
			continue
		}
		checked++
		if err := checkCommand(argv); err != nil {
			t.Errorf("README: %v", err)
		}
	}
	if checked < 8 {
		t.Errorf("only %d of our commands found in the README's sh blocks; is the parser still reading it?", checked)
	}
}

// shBlocks returns the contents of a Markdown file's ```sh blocks.
func shBlocks(md string) string {
	var b strings.Builder
	in := false
	for line := range strings.Lines(md) {
		switch {
		case strings.HasPrefix(line, "```sh"):
			in = true
		case strings.HasPrefix(line, "```"):
			in = false
		case in:
			b.WriteString(line)
		}
	}
	return b.String()
}
