package packaging_test

import (
	"bytes"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/porthole/porthole/agent"
	"github.com/porthole/porthole/agent/agentconsent"
	"github.com/porthole/porthole/agent/agentstate"
)

// The agent package's paths, as the agent itself knows them.
var (
	agentBin      = "/usr/bin/porthole-agent"
	agentUnit     = "/usr/lib/systemd/system/porthole-agent.service"
	agentSysusers = "/usr/lib/sysusers.d/porthole-agent.conf"
	agentWants    = "/etc/systemd/system/multi-user.target.wants/porthole-agent.service"
	agentConfig   = agent.DefaultConfigFile
	agentState    = agentstate.DefaultDir
)

// TestAgentPackage builds the agent's .deb twice (two versions) for this
// machine and takes it through its life with the real dpkg, in this very
// system: install, an owner's edits and an enrolled device's state, upgrade,
// remove, purge. It checks the files, the conffile, the group, the unit, the
// man pages and completions, and which systemctl calls the maintainer
// scripts make with systemd running and without it. The .rpm of the same
// build is read with rpm -qlp. It cleans up after itself, failed or not.
func TestAgentPackage(t *testing.T) {
	needDpkg(t)
	arch := pkgArch()
	dir := t.TempDir()
	const v1, v2 = "0.0.0~test1", "0.0.0~test2"
	buildPackages(t, v1, filepath.Join(dir, "v1"), "porthole-agent/"+arch)
	buildPackages(t, v2, filepath.Join(dir, "v2"), "porthole-agent/"+arch+"/deb")
	deb1 := only(t, filepath.Join(dir, "v1", "*.deb"))
	deb2 := only(t, filepath.Join(dir, "v2", "*.deb"))

	t.Run("rpm", func(t *testing.T) {
		checkAgentRPM(t, only(t, filepath.Join(dir, "v1", "*.rpm")), run(t, "dpkg-deb", "-c", deb1))
	})

	lockSystem(t)
	if status, version := dpkgStatus(t, "porthole-agent"); status != "" {
		if !strings.Contains(version, "~test") {
			t.Skipf("porthole-agent %s is installed on this machine (%s): this test would replace and purge it", version, status)
		}
		t.Logf("purging porthole-agent %s, left by an earlier run of this test", version)
		dpkg(t, noSystemd, "--purge", "porthole-agent")
	}
	for _, p := range []string{agentState, agentConfig} {
		if exists(p) {
			t.Skipf("%s exists on this machine and is no package's: this test would purge it", p)
		}
	}
	_, groupErr := user.LookupGroup(agentstate.OwnerGroup)
	hadGroup := groupErr == nil
	t.Cleanup(func() {
		if status, _ := dpkgStatus(t, "porthole-agent"); status != "" {
			if out, err := exec.Command("dpkg", "--purge", "porthole-agent").CombinedOutput(); err != nil {
				t.Errorf("cleaning up: dpkg --purge porthole-agent: %v\n%s", err, out)
			}
		}
		os.RemoveAll(agentState)
		os.Remove(agentWants)
		if !hadGroup {
			exec.Command("groupdel", agentstate.OwnerGroup).Run()
		}
	})

	// Install, where systemd is not running (as here): the scripts must
	// neither call it nor fail.
	dpkg(t, noSystemd, "--install", deb1)
	checkInstalled(t, v1)
	if exists(agentState) {
		t.Errorf("installing made %s: nothing may be enrolled or started before the owner asks", agentState)
	}
	if exists(agentWants) {
		t.Errorf("installing enabled the agent (%s)", agentWants)
	}
	checkConffile(t, "porthole-agent", agentConfig)
	if cfg, err := agent.LoadConfig(agentConfig); err != nil {
		t.Errorf("the agent refuses the config the package installs: %v", err)
	} else if cfg.Consent.Mode != "" || cfg.AllowPorts != nil {
		t.Errorf("the shipped config sets %+v; want every key commented out (the defaults)", cfg)
	}
	if _, err := user.LookupGroup(agentstate.OwnerGroup); err != nil {
		t.Errorf("no %s group after install: %v", agentstate.OwnerGroup, err)
	}
	checkUnit(t, agentUnit, "porthole-agent.service")
	if data, err := os.ReadFile(agentSysusers); err != nil || !regexp.MustCompile(`(?m)^g `+agentstate.OwnerGroup+`\s`).Match(data) {
		t.Errorf("%s: %v; want it to make group %s:\n%s", agentSysusers, err, agentstate.OwnerGroup, data)
	}
	checkDocs(t, "porthole-agent", "enroll")

	// The device is enrolled and its owner edited the config and enabled
	// the agent, as they would.
	state := map[string]string{agentstate.EnrollmentFile: `{"device":"test"}`, "agent.log": "a line\n"}
	if err := os.Mkdir(agentState, 0o710); err != nil {
		t.Fatal(err)
	}
	for name, text := range state {
		if err := os.WriteFile(filepath.Join(agentState, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	edited, err := os.ReadFile(agentConfig)
	if err != nil {
		t.Fatal(err)
	}
	edited = append(edited, "consent: approve\n"...)
	if err := os.WriteFile(agentConfig, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(agentWants), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(agentUnit, agentWants); err != nil {
		t.Fatal(err)
	}

	// Upgrade, with systemd running: reload, and restart the agent only if
	// it runs (try-restart); nothing else.
	calls := dpkg(t, fakeSystemd, "--install", deb2)
	checkCalls(t, "upgrade", calls, "daemon-reload", "try-restart porthole-agent.service")
	checkInstalled(t, v2)
	for name, text := range state {
		if data, err := os.ReadFile(filepath.Join(agentState, name)); err != nil || string(data) != text {
			t.Errorf("after the upgrade, %s holds %q (%v); want %q, as before", name, data, err, text)
		}
	}
	if data, _ := os.ReadFile(agentConfig); !bytes.Equal(data, edited) {
		t.Errorf("the upgrade changed the owner's %s:\n%s", agentConfig, data)
	}
	if cfg, err := agent.LoadConfig(agentConfig); err != nil || cfg.Consent.Mode != agentconsent.Approve {
		t.Errorf("after the upgrade the agent reads consent %v (%v); want the owner's approve", cfg, err)
	}
	if m, _ := filepath.Glob(agentConfig + ".dpkg-*"); len(m) > 0 {
		t.Errorf("the upgrade left %v: the conffile did not change, so dpkg had nothing to ask", m)
	}
	if !exists(agentWants) {
		t.Error("the upgrade removed the owner's systemctl enable link")
	}

	// Remove, with systemd running: stop the agent, then reload. The
	// owner's config and the device's state stay until purge.
	calls = dpkg(t, fakeSystemd, "--remove", "porthole-agent")
	checkCalls(t, "remove", calls, "stop porthole-agent.service", "daemon-reload")
	if status, _ := dpkgStatus(t, "porthole-agent"); status != "deinstall ok config-files" {
		t.Errorf("after remove, dpkg says %q; want deinstall ok config-files", status)
	}
	for _, p := range []string{agentBin, agentUnit} {
		if exists(p) {
			t.Errorf("%s is still there after remove", p)
		}
	}
	for _, p := range []string{agentConfig, filepath.Join(agentState, agentstate.EnrollmentFile)} {
		if !exists(p) {
			t.Errorf("remove deleted %s; only purge may", p)
		}
	}

	// Purge, without systemd: the device's state, its config and the
	// enable link go; the group stays (files may still be its).
	calls = dpkg(t, noSystemd, "--purge", "porthole-agent")
	checkCalls(t, "purge", calls)
	if status, _ := dpkgStatus(t, "porthole-agent"); status != "" {
		t.Errorf("after purge, dpkg still knows porthole-agent: %q", status)
	}
	for _, p := range []string{agentState, agentConfig, agentWants} {
		if exists(p) {
			t.Errorf("%s is still there after purge", p)
		}
	}
	if _, err := user.LookupGroup(agentstate.OwnerGroup); err != nil {
		t.Errorf("purge removed the %s group: %v; system groups stay", agentstate.OwnerGroup, err)
	}
}

// checkInstalled: dpkg has the version installed, and the binary says it
// is that version, built from this commit.
func checkInstalled(t *testing.T, version string) {
	t.Helper()
	if status, v := dpkgStatus(t, "porthole-agent"); status != "install ok installed" || v != version+"-1" {
		t.Fatalf("dpkg says porthole-agent %q %q; want install ok installed %s-1", status, v, version)
	}
	out := run(t, agentBin, "version")
	if want := "porthole-agent " + version + " (commit " + headCommit(t); !strings.HasPrefix(out, want) {
		t.Errorf("porthole-agent version = %q; want it to start %q", out, want)
	}
}

// checkConffile: dpkg keeps path as a conffile of pkg, root's and not
// writable by others, holding what packaging/ ships.
func checkConffile(t *testing.T, pkg, path string) {
	t.Helper()
	out := run(t, "dpkg-query", "-W", "-f=${Conffiles}", pkg)
	if !regexp.MustCompile(`(?m)^ ` + regexp.QuoteMeta(path) + ` [0-9a-f]{32}$`).MatchString(out) {
		t.Errorf("dpkg's conffiles of %s: %q; want %s", pkg, out, path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || fi.Mode().Perm()&0o022 != 0 {
		t.Errorf("%s: uid %d, mode %v; want root's, not writable by others", path, st.Uid, fi.Mode())
	}
	got, _ := os.ReadFile(path)
	want, _ := os.ReadFile(filepath.Join(root, "packaging", filepath.Base(path)))
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not packaging/%s", path, filepath.Base(path))
	}
}

// checkUnit: the installed unit is deploy/systemd's, running the program
// from /usr/bin.
func checkUnit(t *testing.T, path, name string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(root, "deploy", "systemd", name))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.ReplaceAll(string(src), "ExecStart=/usr/local/bin/", "ExecStart=/usr/bin/")
	if string(got) != want || !strings.Contains(want, "ExecStart=/usr/bin/") {
		t.Errorf("%s is not deploy/systemd/%s with ExecStart in /usr/bin:\n%s", path, name, got)
	}
}

// checkDocs: man finds the program's pages (when man is installed), and
// the installed bash completion, with the installed program, completes sub
// to a subcommand; the zsh and fish files are where those shells look.
func checkDocs(t *testing.T, prog, sub string) {
	t.Helper()
	for _, page := range []string{prog, prog + "-" + sub} {
		want := "/usr/share/man/man1/" + page + ".1.gz"
		if !exists(want) {
			t.Errorf("no man page %s", want)
		}
		if _, err := exec.LookPath("man"); err == nil {
			if out, err := exec.Command("man", "-w", page).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != want {
				t.Errorf("man -w %s = %q (%v); want %s", page, out, err, want)
			}
		}
	}
	for _, f := range []string{"/usr/share/zsh/vendor-completions/_" + prog, "/usr/share/fish/vendor_completions.d/" + prog + ".fish"} {
		if !exists(f) {
			t.Errorf("no completion %s", f)
		}
	}
	// What bash does on TAB after "PROG s": the script asks the program
	// (PROG __complete) and fills COMPREPLY. _get_comp_words_by_ref is
	// bash-completion's; a minimal one stands in where it is not installed.
	script := `
type _get_comp_words_by_ref >/dev/null 2>&1 || _get_comp_words_by_ref() {
	cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} words=("${COMP_WORDS[@]}") cword=$COMP_CWORD
}
. /usr/share/bash-completion/completions/` + prog + `
COMP_WORDS=(` + prog + ` ` + sub[:2] + `) COMP_CWORD=1 COMP_LINE="` + prog + ` ` + sub[:2] + `" COMP_POINT=${#COMP_LINE}
__start_` + prog + ` ` + prog + ` ` + sub[:2] + ` ` + prog + ` 2>/dev/null
printf '%s\n' "${COMPREPLY[@]}"`
	out, err := exec.Command("bash", "-c", script).CombinedOutput()
	if err != nil || !slices.Contains(strings.Fields(string(out)), sub) {
		t.Errorf("bash completion of %q offers %q (%v); want %s among them", prog+" "+sub[:2], out, err, sub)
	}
}

// checkAgentRPM reads the .rpm with rpm: its files are the .deb's (zsh's
// directory aside), agent.yaml is its one config file (noreplace), its
// scripts are there, and it is for this architecture.
func checkAgentRPM(t *testing.T, rpm, debList string) {
	if _, err := exec.LookPath("rpm"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("rpm is not installed; scripts/setup.sh installs it")
		}
		t.Skip("rpm is not installed (scripts/setup.sh installs it): the .rpm is not read")
	}
	files := strings.Fields(run(t, "rpm", "-qlp", rpm))
	var fromDeb []string
	for line := range strings.Lines(debList) {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "d") {
			continue
		}
		p := strings.TrimPrefix(f[len(f)-1], ".")
		p = strings.Replace(p, "/usr/share/zsh/vendor-completions/", "/usr/share/zsh/site-functions/", 1)
		fromDeb = append(fromDeb, p)
	}
	slices.Sort(files)
	slices.Sort(fromDeb)
	if !slices.Equal(files, fromDeb) {
		t.Errorf("rpm -qlp lists\n%s\nwant the .deb's files (zsh's in site-functions)\n%s", strings.Join(files, "\n"), strings.Join(fromDeb, "\n"))
	}
	for _, f := range []string{agentBin, agentUnit, agentSysusers, agentConfig, "/usr/share/man/man1/porthole-agent.1.gz",
		"/usr/share/bash-completion/completions/porthole-agent", "/usr/share/zsh/site-functions/_porthole-agent"} {
		if !slices.Contains(files, f) {
			t.Errorf("the .rpm lacks %s", f)
		}
	}
	if got := strings.TrimSpace(run(t, "rpm", "-qcp", rpm)); got != agentConfig {
		t.Errorf("rpm -qcp = %q; want %s alone", got, agentConfig)
	}
	if got := run(t, "rpm", "-qp", "--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]", rpm); !strings.Contains(got, agentConfig+" cn") {
		t.Errorf("%s is not %%config(noreplace) in the .rpm:\n%s", agentConfig, got)
	}
	scripts := run(t, "rpm", "-qp", "--scripts", rpm)
	for _, s := range []string{"postinstall scriptlet", "preuninstall scriptlet", "postuninstall scriptlet", "try-restart porthole-agent.service"} {
		if !strings.Contains(scripts, s) {
			t.Errorf("rpm -qp --scripts lacks %q", s)
		}
	}
	wantArch := map[string]string{"amd64": "x86_64", "arm64": "aarch64", "armv7": "armv7hl"}[pkgArch()]
	if got := run(t, "rpm", "-qp", "--qf", "%{ARCH}", rpm); got != wantArch {
		t.Errorf("the .rpm is for %s; want %s", got, wantArch)
	}
}
