// Package systemd_test checks the shipped systemd units and sysusers file:
// the hardening they promise, that ExecStart runs our real programs with
// subcommands and flags they have (against their own --help), that their
// paths are the agent's and the server's defaults, and, where systemd's
// tools are installed, that systemd-analyze verifies them and rates their
// exposure low, and that systemd-sysusers creates what the units run as.
package systemd_test

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/porthole/porthole/agent"
	"github.com/porthole/porthole/agent/agentowner"
	"github.com/porthole/porthole/agent/agentstate"
	"github.com/porthole/porthole/daemon"
	"github.com/porthole/porthole/e2e"
)

var binDir string

func TestMain(m *testing.M) {
	var bins e2e.Binaries
	e2e.Main(m, "porthole-systemd-bin-", &bins, &binDir)
}

// unit is a parsed unit file: section -> key -> values in order (a key may
// repeat; an empty assignment resets the list, as systemd does).
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		case strings.HasSuffix(line, "\\"):
			t.Fatalf("%s:%d: continuation lines are not used in our units", path, n)
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: %q is not KEY=VALUE in a section", path, n, line)
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if v == "" {
				u[section][k] = []string{""}
			} else {
				u[section][k] = append(u[section][k], v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// get returns the key's one value in [Service] (or "" when unset); it fails
// the test if the key is set more than once.
func (u unit) get(t *testing.T, key string) string {
	t.Helper()
	vs := u["Service"][key]
	if len(vs) > 1 {
		t.Errorf("[Service] %s is set %d times; want once", key, len(vs))
	}
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

// hardening is what both units must set, with these values.
var hardening = map[string]string{
	"NoNewPrivileges":       "yes",
	"ProtectSystem":         "strict",
	"ProtectHome":           "yes",
	"PrivateTmp":            "yes",
	"Restart":               "on-failure",
	"RestrictSUIDSGID":      "yes",
	"RestrictRealtime":      "yes",
	"RestrictNamespaces":    "yes",
	"LockPersonality":       "yes",
	"ProtectKernelModules":  "yes",
	"ProtectKernelTunables": "yes",
	"ProtectControlGroups":  "yes",
	"AmbientCapabilities":   "",
}

func TestHardening(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"portholed.service", "porthole-agent.service"} {
		u := parseUnit(t, name)
		for k, want := range hardening {
			vs, ok := u["Service"][k]
			if got := strings.Join(vs, " "); !ok || got != want {
				t.Errorf("%s: %s=%s; want %s=%s", name, k, got, k, want)
			}
		}
		if u["Install"]["WantedBy"] == nil {
			t.Errorf("%s has no [Install] WantedBy: systemctl enable would do nothing", name)
		}
	}
}

func TestPortholedUnit(t *testing.T) {
	t.Parallel()
	u := parseUnit(t, "portholed.service")
	users := sysusers(t)
	if user := u.get(t, "User"); user == "" || user == "root" || !slices.Contains(users.users, user) {
		t.Errorf("portholed runs as User=%q; want a user of its own that porthole.conf creates (%v)", user, users.users)
	}
	// No capability at all: its default ports are above 1024.
	if caps := u.get(t, "CapabilityBoundingSet"); caps != "" {
		t.Errorf("CapabilityBoundingSet=%s; want none (the README's drop-in adds CAP_NET_BIND_SERVICE for 443)", caps)
	}
	state := u.get(t, "StateDirectory")
	argv := execStart(t, u)
	if filepath.Base(argv[0]) != "portholed" || !slices.Equal(argv[1:2], []string{"serve"}) {
		t.Fatalf("ExecStart runs %v; want portholed serve", argv)
	}
	if err := checkCommand(argv); err != nil {
		t.Error(err)
	}
	config := flagValue(argv, "--config")
	if want := filepath.Join("/var/lib", state, daemon.ConfigFileName); config != want {
		t.Errorf("ExecStart reads --config %s; want %s, the one portholed init --data /var/lib/%s writes (StateDirectory=%s)", config, want, state, state)
	}
	if home := users.home["portholed"]; home != filepath.Join("/var/lib", state) {
		t.Errorf("porthole.conf gives portholed the home %s; want its data dir /var/lib/%s", home, state)
	}
}

func TestAgentUnit(t *testing.T) {
	t.Parallel()
	u := parseUnit(t, "porthole-agent.service")
	argv := execStart(t, u)
	if filepath.Base(argv[0]) != "porthole-agent" || !slices.Equal(argv[1:2], []string{"run"}) {
		t.Fatalf("ExecStart runs %v; want porthole-agent run", argv)
	}
	if err := checkCommand(argv); err != nil {
		t.Error(err)
	}
	// The paths are the agent's defaults, so that porthole-agent request,
	// status, log ... find them without flags.
	state := flagValue(argv, "--state")
	if state != agentstate.DefaultDir {
		t.Errorf("ExecStart --state %s; want the agent's default %s", state, agentstate.DefaultDir)
	}
	if c := flagValue(argv, "--config"); c != agent.DefaultConfigFile {
		t.Errorf("ExecStart --config %s; want the agent's default %s", c, agent.DefaultConfigFile)
	}
	if got := filepath.Join("/var/lib", u.get(t, "StateDirectory")); got != agentstate.DefaultDir {
		t.Errorf("StateDirectory makes %s; want %s", got, agentstate.DefaultDir)
	}
	if got := filepath.Join("/etc", u.get(t, "ConfigurationDirectory")); got != filepath.Dir(agent.DefaultConfigFile) {
		t.Errorf("ConfigurationDirectory makes %s; want %s", got, filepath.Dir(agent.DefaultConfigFile))
	}
	if got := filepath.Join("/run", u.get(t, "RuntimeDirectory")); got != filepath.Dir(agentowner.DefaultSocket) {
		t.Errorf("RuntimeDirectory makes %s; want %s, where the agent's socket is", got, filepath.Dir(agentowner.DefaultSocket))
	}
	if want := filepath.Join(agentstate.DefaultDir, agentstate.EnrollmentFile); !slices.Equal(u["Unit"]["ConditionPathExists"], []string{want}) {
		t.Errorf("ConditionPathExists=%v; want %s, which enroll writes last", u["Unit"]["ConditionPathExists"], want)
	}

	// Owners in group porthole reach the socket and the log: the directories
	// are the group's, searchable by it, closed to others.
	if g := u.get(t, "Group"); g != agentstate.OwnerGroup || !slices.Contains(sysusers(t).groups, g) {
		t.Errorf("Group=%s; want %s, which porthole.conf creates", g, agentstate.OwnerGroup)
	}
	for _, k := range []string{"RuntimeDirectoryMode", "StateDirectoryMode"} {
		mode, err := strconv.ParseUint(u.get(t, k), 8, 32)
		if err != nil {
			t.Errorf("%s=%s: %v", k, u.get(t, k), err)
			continue
		}
		if fs.FileMode(mode)&0o010 == 0 || fs.FileMode(mode)&0o027 != 0 {
			t.Errorf("%s=%#o; want the group to search it and others nothing, with no group write", k, mode)
		}
	}
	if u.get(t, "User") != "root" {
		t.Errorf("User=%s; the agent runs as root to switch to run_as", u.get(t, "User"))
	}
	// Capabilities: only what run_as needs.
	caps := strings.Fields(u.get(t, "CapabilityBoundingSet"))
	allowed := []string{"CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_KILL"}
	for _, c := range caps {
		if !slices.Contains(allowed, c) {
			t.Errorf("CapabilityBoundingSet has %s; want only %v", c, allowed)
		}
	}
	for _, c := range []string{"CAP_SETUID", "CAP_SETGID"} {
		if !slices.Contains(caps, c) {
			t.Errorf("CapabilityBoundingSet lacks %s, which run_as needs", c)
		}
	}
}

// execStart returns [Service] ExecStart's words; the program must be an
// absolute path.
func execStart(t *testing.T, u unit) []string {
	t.Helper()
	argv := strings.Fields(u.get(t, "ExecStart"))
	if len(argv) == 0 || !filepath.IsAbs(argv[0]) {
		t.Fatalf("ExecStart=%v; want an absolute path and arguments", argv)
	}
	return argv
}

func flagValue(argv []string, name string) string {
	for i, a := range argv {
		if a == name && i+1 < len(argv) {
			return argv[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// checkCommand runs argv with our built program and --help appended, so
// that cobra parses the subcommand and every flag and then only prints
// help; an unknown subcommand or flag fails there. The help's usage line
// must then be for the subcommand argv names.
func checkCommand(argv []string) error {
	prog := filepath.Base(argv[0])
	if !slices.Contains([]string{"portholed", "porthole-agent", "porthole"}, prog) {
		return fmt.Errorf("%s is not one of our programs", argv[0])
	}
	cmd := exec.Command(filepath.Join(binDir, prog), append(slices.Clone(argv[1:]), "--help")...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + os.TempDir()}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("`%s` is refused by %s: %v: %s", strings.Join(argv, " "), prog, err, strings.TrimSpace(string(out)))
	}
	want := prog
	for _, a := range argv[1:] {
		if strings.HasPrefix(a, "-") {
			break
		}
		want += " " + a
	}
	if !regexp.MustCompile(`(?m)^Usage:\n  ` + regexp.QuoteMeta(want) + `\b`).Match(out) {
		return fmt.Errorf("`%s`: the help printed is not for `%s`:\n%s", strings.Join(argv, " "), want, out)
	}
	return nil
}

type sysusersFile struct {
	users, groups []string
	home          map[string]string
}

// sysusers parses porthole.conf (sysusers.d(5): g and u lines; a u line
// makes a group of the same name too).
func sysusers(t *testing.T) sysusersFile {
	t.Helper()
	data, err := os.ReadFile("porthole.conf")
	if err != nil {
		t.Fatal(err)
	}
	s := sysusersFile{home: map[string]string{}}
	field := regexp.MustCompile(`"[^"]*"|\S+`)
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := field.FindAllString(line, -1)
		switch f[0] {
		case "g":
			s.groups = append(s.groups, f[1])
		case "u":
			s.users = append(s.users, f[1])
			s.groups = append(s.groups, f[1])
			if len(f) > 4 {
				s.home[f[1]] = f[4]
			}
		default:
			t.Errorf("porthole.conf: %q: want only g and u lines", line)
		}
	}
	return s
}

// TestSysusersCreatesThem runs systemd-sysusers on porthole.conf in a
// scratch root and checks the user and group appear there.
func TestSysusersCreatesThem(t *testing.T) {
	t.Parallel()
	path, err := exec.LookPath("systemd-sysusers")
	if err != nil {
		t.Skip("systemd-sysusers is not installed")
	}
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf, _ := filepath.Abs("porthole.conf")
	out, err := exec.Command(path, "--root="+root, conf).CombinedOutput()
	if err != nil {
		if os.Geteuid() != 0 {
			t.Skipf("systemd-sysusers --root needs root here: %v: %s", err, out)
		}
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
	group, _ := os.ReadFile(filepath.Join(root, "etc/group"))
	if !regexp.MustCompile(`(?m)^portholed:x:\d+:\d+:[^:]*:/var/lib/portholed:/usr/sbin/nologin$`).Match(passwd) {
		t.Errorf("no portholed user with home /var/lib/portholed and no login shell in:\n%s", passwd)
	}
	if !regexp.MustCompile(`(?m)^` + agentstate.OwnerGroup + `:x:\d+:`).Match(group) {
		t.Errorf("no %s group in:\n%s", agentstate.OwnerGroup, group)
	}
}

// TestSystemdAnalyze runs systemd-analyze verify on both units (with our
// built programs in ExecStart, since verify checks it can run them) and
// fails on any complaint, unknown keys included; and holds their exposure
// under a ceiling (systemd-analyze security, 0-100 scale).
func TestSystemdAnalyze(t *testing.T) {
	t.Parallel()
	path, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	dir := t.TempDir()
	exposure := map[string]int{"portholed.service": 20, "porthole-agent.service": 50}
	var units []string
	for name := range exposure {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		data = []byte(strings.ReplaceAll(string(data), "ExecStart=/usr/local/bin/", "ExecStart="+binDir+"/"))
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, p)
	}
	out, err := exec.Command(path, append([]string{"verify", "--man=no"}, units...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify complains (exit status: %v):\n%s", err, out)
	}
	for name, ceiling := range exposure {
		cmd := exec.Command(path, "security", "--offline=yes", "--threshold="+strconv.Itoa(ceiling), filepath.Join(dir, name))
		if out, err := cmd.CombinedOutput(); err != nil {
			overall := regexp.MustCompile(`Overall exposure level.*`).Find(out)
			if overall == nil {
				t.Logf("systemd-analyze security --offline: %v (too old a systemd?)\n%s", err, out)
				continue
			}
			t.Errorf("%s: %s; want at most %d.%d", name, overall, ceiling/10, ceiling%10)
		}
	}
}

// TestREADMECommands: our programs in the README's sh blocks, with real
// subcommands and flags, and the files it installs exist here.
func TestREADMECommands(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	in := false
	var lines []string
	for line := range strings.Lines(string(data)) {
		switch {
		case strings.HasPrefix(line, "```sh"):
			in = true
		case strings.HasPrefix(line, "```"):
			in = false
		case in:
			lines = append(lines, line)
		}
	}
	text := strings.ReplaceAll(strings.Join(lines, ""), "\\\n", " ")
	for line := range strings.Lines(text) {
		words := strings.Fields(line)
		// sudo, and sudo -u USER, before the program.
		if len(words) > 0 && words[0] == "sudo" {
			words = words[1:]
			if len(words) > 1 && words[0] == "-u" {
				words = words[2:]
			}
		}
		if len(words) == 0 {
			continue
		}
		if words[0] == "install" {
			for _, w := range words[1:] {
				if !strings.HasPrefix(w, "deploy/") {
					continue
				}
				if _, err := os.Stat(filepath.Join("../..", w)); err != nil {
					t.Errorf("README installs %s: %v", w, err)
				}
			}
			continue
		}
		if words[0] == "systemctl" && len(words) > 1 {
			for _, w := range words[2:] {
				if !strings.HasPrefix(w, "-") {
					if _, err := os.Stat(w + ".service"); err != nil {
						t.Errorf("README: `%s`: no unit %s here", strings.TrimSpace(line), w)
					}
				}
			}
			continue
		}
		if !slices.Contains([]string{"portholed", "porthole-agent", "porthole"}, words[0]) {
			continue
		}
		checked++
		if err := checkCommand(words); err != nil {
			t.Errorf("README: %v", err)
		}
	}
	if checked < 5 {
		t.Errorf("only %d of our commands found in the README; is the parser still reading it?", checked)
	}
}
