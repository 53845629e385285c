package packaging_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// root is the repository's root: tests run in packaging/.
const root = ".."

// pkgArch is this machine's architecture as packages.sh and the release
// name it (amd64, arm64, armv7), or "" for one Porthole is not built for.
func pkgArch() string {
	switch runtime.GOARCH {
	case "amd64", "arm64":
		return runtime.GOARCH
	case "arm":
		return "armv7"
	}
	return ""
}

// buildPackages runs scripts/packages.sh for the picks (PACKAGE/ARCH/FORMAT)
// at version, into out, and returns out.
func buildPackages(t *testing.T, version, out string, picks ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{"scripts/packages.sh", "--out", out}, picks...)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "PORTHOLE_VERSION="+version)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/packages.sh %s: %v\n%s", strings.Join(picks, " "), err, out)
	}
	return out
}

// only is the one file matching pattern, or fails the test.
func only(t *testing.T, pattern string) string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil || len(m) != 1 {
		t.Fatalf("%s matches %v (%v); want exactly one file", pattern, m, err)
	}
	return m[0]
}

// headCommit is the commit packages.sh stamps into the binaries.
func headCommit(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse HEAD: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// needDpkg skips the test unless it may install packages into this very
// system: as root, with dpkg. CI runs as root, so there it runs.
func needDpkg(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("installing packages into the system needs root (CI runs as root)")
	}
	for _, p := range []string{"dpkg", "dpkg-deb", "dpkg-query", "unshare", "mount"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s is not installed: not a Debian-like system", p)
		}
	}
	if pkgArch() == "" {
		t.Skipf("Porthole is not packaged for %s", runtime.GOARCH)
	}
}

// lockSystem holds /run/lock/porthole-dpkg-test.lock until the test ends,
// so that two test runs (two checkouts on one machine) never install
// Porthole's packages at the same time. A holder that takes more than ten
// minutes fails the test rather than hanging it.
func lockSystem(t *testing.T) {
	t.Helper()
	dir := "/run/lock"
	if _, err := os.Stat(dir); err != nil {
		dir = os.TempDir()
	}
	path := filepath.Join(dir, "porthole-dpkg-test.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Minute)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			t.Fatalf("locking %s (another test run installing packages?): %v", path, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// Registered first, so it runs last: after the purge that cleans up.
	t.Cleanup(func() { f.Close() })
}

// dpkgStatus is the package's status and version as dpkg knows them:
// "install ok installed", "deinstall ok config-files", or "" when dpkg
// knows nothing of it.
func dpkgStatus(t *testing.T, pkg string) (status, version string) {
	t.Helper()
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}\t${Version}", pkg).Output()
	if err != nil {
		return "", ""
	}
	status, version, _ = strings.Cut(string(out), "\t")
	if status == "unknown ok not-installed" {
		return "", ""
	}
	return status, version
}

// systemd says how dpkg's maintainer scripts should find the system.
type systemd int

const (
	// noSystemd: as on this machine and in containers, systemd is not
	// running (no /run/systemd/system): the scripts must not call it.
	noSystemd systemd = iota
	// fakeSystemd: dpkg runs in a mount namespace of its own where
	// /run/systemd/system exists and systemctl only records its arguments,
	// so the test sees what the scripts would have systemd do.
	fakeSystemd
)

// dpkg runs dpkg with args, non-interactively, and returns the systemctl
// calls the maintainer scripts made (with fakeSystemd). It waits while
// another dpkg or apt holds dpkg's lock.
func dpkg(t *testing.T, sd systemd, args ...string) []string {
	t.Helper()
	argv, env, calls := under(t, sd, append([]string{"dpkg"}, args...))
	deadline := time.Now().Add(5 * time.Minute)
	for {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err == nil {
			break
		}
		if bytes.Contains(out, []byte("locked by another process")) && time.Now().Before(deadline) {
			time.Sleep(2 * time.Second)
			continue
		}
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return calls()
}

// under returns the command line and environment that run argv as sd
// says, and a function that returns the systemctl calls made, once it ran.
// Programs in fakes (name to shell script) stand in for real ones.
func under(t *testing.T, sd systemd, argv []string, fakes ...[2]string) ([]string, []string, func() []string) {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "systemctl.log")
	fake := filepath.Join(dir, "bin")
	if err := os.Mkdir(fake, 0o755); err != nil {
		t.Fatal(err)
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	if sd == fakeSystemd {
		fakes = append(fakes, [2]string{"systemctl", `echo "$*" >>` + log})
		// A tmpfs on /run, in this namespace only: /run/systemd/system
		// says systemd runs, and the machine's own /run is untouched.
		argv = append([]string{"unshare", "--mount", "--propagation", "private", "--",
			"sh", "-c", `mount -t tmpfs porthole-test /run && mkdir -p /run/systemd/system && exec "$@"`, "sh"}, argv...)
	}
	for _, f := range fakes {
		if err := os.WriteFile(filepath.Join(fake, f[0]), []byte("#!/bin/sh\n"+f[1]+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"PATH=" + fake + ":" + path, "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C"}
	return argv, env, func() []string {
		data, err := os.ReadFile(log)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		var calls []string
		for line := range strings.Lines(string(data)) {
			calls = append(calls, strings.TrimSpace(line))
		}
		return calls
	}
}

// checkCalls compares the systemctl calls the scripts made with want.
func checkCalls(t *testing.T, step string, got []string, want ...string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: the maintainer scripts ran systemctl %q; want %q", step, got, want)
	}
}

// exists reports whether path exists (a dangling symlink counts).
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// run runs a command and returns its combined output, failing the test if
// it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
