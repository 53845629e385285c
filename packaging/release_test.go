package packaging_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// releaseDir is the release `make check-release` built, or skips the test:
// building one takes minutes.
func releaseDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PORTHOLE_RELEASE_DIR")
	if dir == "" {
		t.Skip("checks a release: make check-release builds one and runs this with PORTHOLE_RELEASE_DIR")
	}
	return dir
}

// target is one binary of a release.
type target struct {
	prog, goos, arch string // arch as named in the release: amd64, arm64, armv7
}

func (b target) file() string {
	name := b.prog + "-" + b.goos + "-" + b.arch
	if b.goos == "windows" {
		name += ".exe"
	}
	return name
}

// releaseTargets are the binaries a release must hold.
func releaseTargets() []target {
	var ts []target
	for _, arch := range []string{"amd64", "arm64", "armv7"} {
		for _, prog := range []string{"porthole-agent", "portholed", "porthole"} {
			ts = append(ts, target{prog, "linux", arch})
		}
	}
	for _, goos := range []string{"darwin", "windows"} {
		for _, arch := range []string{"amd64", "arm64"} {
			ts = append(ts, target{"porthole", goos, arch})
		}
	}
	return ts
}

// releasePackages are the packages a release must hold, by name, release
// arch and format.
func releasePackages() [][3]string {
	var ps [][3]string
	for _, arch := range []string{"amd64", "arm64", "armv7"} {
		for _, format := range []string{"deb", "rpm"} {
			ps = append(ps, [3]string{"porthole-agent", arch, format})
			if arch != "armv7" {
				ps = append(ps, [3]string{"portholed", arch, format}, [3]string{"porthole", arch, format})
			}
		}
	}
	return ps
}

var (
	debArch = map[string]string{"amd64": "amd64", "arm64": "arm64", "armv7": "armhf"}
	rpmArch = map[string]string{"amd64": "x86_64", "arm64": "aarch64", "armv7": "armv7hl"}
)

// releaseVersion is the version the release's packages carry.
func releaseVersion(t *testing.T, dir string) string {
	t.Helper()
	deb := only(t, filepath.Join(dir, "porthole-agent_*_amd64.deb"))
	m := regexp.MustCompile(`^porthole-agent_(.+)-1_amd64\.deb$`).FindStringSubmatch(filepath.Base(deb))
	if m == nil {
		t.Fatalf("%s: no version in its name", deb)
	}
	return m[1]
}

// TestReleaseArtifacts checks a whole release: SHA256SUMS covers exactly
// its files and each matches; every binary is there, for its platform
// (ELF, Mach-O or PE of the right machine; static on Linux), stamped with
// the version and commit, and says so when this machine can run it; each
// SBOM is CycloneDX, of that very file (its SHA-256), listing exactly the
// modules and Go release linked into it; every package is there, names
// its version and architecture, and carries the released binary itself.
func TestReleaseArtifacts(t *testing.T) {
	dir := releaseDir(t)
	version := releaseVersion(t, dir)
	commit := headCommit(t)

	// SHA256SUMS: exactly the other files, each matching.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		if e.Name() != "SHA256SUMS" {
			files = append(files, e.Name())
		}
	}
	sums := map[string]string{}
	f, err := os.Open(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	line := regexp.MustCompile(`^([0-9a-f]{64})  ([^/]+)$`)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("SHA256SUMS: %q is not sha256sum's HASH  NAME", sc.Text())
		}
		sums[m[2]] = m[1]
	}
	var listed []string
	for name := range sums {
		listed = append(listed, name)
	}
	slices.Sort(listed)
	if !slices.Equal(listed, files) {
		t.Errorf("SHA256SUMS lists %v;\nthe release holds %v", listed, files)
	}
	hashes := map[string]string{}
	for _, name := range files {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(data)
		hashes[name] = hex.EncodeToString(h[:])
		if sums[name] != hashes[name] {
			t.Errorf("%s has SHA-256 %s; SHA256SUMS says %s", name, hashes[name], sums[name])
		}
	}

	want := []string{"install-agent.sh"}
	for _, b := range releaseTargets() {
		want = append(want, b.file(), b.file()+".cdx.json")
		t.Run(b.file(), func(t *testing.T) { checkBinary(t, dir, b, version, commit) })
	}
	for _, p := range releasePackages() {
		name, arch, format := p[0], p[1], p[2]
		file := name + "_" + version + "-1_" + debArch[arch] + ".deb"
		if format == "rpm" {
			file = name + "-" + version + "-1." + rpmArch[arch] + ".rpm"
		}
		want = append(want, file)
		t.Run(file, func(t *testing.T) {
			checkPackage(t, filepath.Join(dir, file), name, arch, format, version, hashes[target{name, "linux", arch}.file()])
		})
	}
	slices.Sort(want)
	if !slices.Equal(files, want) {
		t.Errorf("the release holds\n%v\nwant\n%v", files, want)
	}
	if a, b := readFile(t, filepath.Join(dir, "install-agent.sh")), readFile(t, filepath.Join(root, "scripts", "install-agent.sh")); a != b {
		t.Error("install-agent.sh in the release is not scripts/install-agent.sh")
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// checkBinary checks one released binary and its SBOM.
func checkBinary(t *testing.T, dir string, b target, version, commit string) {
	path := filepath.Join(dir, b.file())
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	goarch := b.arch
	if goarch == "armv7" {
		goarch = "arm"
	}
	switch b.goos {
	case "linux":
		f, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("not ELF: %v", err)
		}
		want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "arm": elf.EM_ARM}[goarch]
		if f.Machine != want {
			t.Errorf("ELF for %v; want %v", f.Machine, want)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("dynamically linked; want static (CGO_ENABLED=0)")
			}
		}
	case "darwin":
		f, err := macho.NewFile(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("not Mach-O: %v", err)
		}
		want := map[string]macho.Cpu{"amd64": macho.CpuAmd64, "arm64": macho.CpuArm64}[goarch]
		if f.Cpu != want {
			t.Errorf("Mach-O for %v; want %v", f.Cpu, want)
		}
	case "windows":
		f, err := pe.NewFile(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("not PE: %v", err)
		}
		want := map[string]uint16{"amd64": pe.IMAGE_FILE_MACHINE_AMD64, "arm64": pe.IMAGE_FILE_MACHINE_ARM64}[goarch]
		if f.Machine != want {
			t.Errorf("PE for machine %#x; want %#x", f.Machine, want)
		}
	}
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if info.Path != "github.com/porthole/porthole/cmd/"+b.prog || settings["GOOS"] != b.goos || settings["GOARCH"] != goarch ||
		settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" || (goarch == "arm" && settings["GOARM"] != "7") {
		t.Errorf("built as %s with %v; want cmd/%s for %s/%s, CGO_ENABLED=0, -trimpath (GOARM=7 on arm)", info.Path, settings, b.prog, b.goos, b.arch)
	}
	// -trimpath leaves -ldflags out of the build info: the stamped strings
	// are in the data.
	if !bytes.Contains(data, []byte(version)) || !bytes.Contains(data, []byte(commit)) {
		t.Errorf("the version %s and the commit %s are not stamped in", version, commit)
	}
	if b.goos == "linux" && b.arch == pkgArch() {
		out := run(t, path, "version")
		if want := b.prog + " " + version + " (commit " + commit + ", "; !strings.HasPrefix(out, want) {
			t.Errorf("%s version = %q; want it to start %q", b.file(), out, want)
		}
	}

	// The SBOM, of this file.
	var bom struct {
		BOMFormat, SpecVersion string
		Metadata               struct {
			Component  struct{ Name, Version, Purl string }
			Properties []struct{ Name, Value string }
		}
		Components []struct {
			Name, Version string
			Pedigree      *struct{ Ancestors []struct{ Purl string } }
		}
	}
	if err := json.Unmarshal([]byte(readFile(t, path+".cdx.json")), &bom); err != nil {
		t.Fatalf("%s.cdx.json: %v", b.file(), err)
	}
	sum := sha256.Sum256(data)
	props := map[string]string{}
	for _, p := range bom.Metadata.Properties {
		props[p.Name] = p.Value
	}
	if bom.BOMFormat != "CycloneDX" || bom.SpecVersion != "1.6" || bom.Metadata.Component.Version != version ||
		!strings.Contains(bom.Metadata.Component.Purl, "goarch="+goarch+"&goos="+b.goos) || !strings.HasSuffix(bom.Metadata.Component.Purl, "#cmd/"+b.prog) {
		t.Errorf("SBOM: %s %s of %+v; want CycloneDX 1.6 of version %s, %s/%s, cmd/%s", bom.BOMFormat, bom.SpecVersion, bom.Metadata.Component, version, b.goos, goarch, b.prog)
	}
	if props["cdx:gomod:binary:hash:SHA-256"] != hex.EncodeToString(sum[:]) {
		t.Errorf("the SBOM describes a file with SHA-256 %s; this one has %x", props["cdx:gomod:binary:hash:SHA-256"], sum)
	}
	// Modules replaced by a copy in third_party/ go by their upstream
	// name and version, with a pedigree (packaging/sbomreplace).
	var got, linked, patched []string
	for _, c := range bom.Components {
		got = append(got, c.Name+"@"+c.Version)
		if c.Pedigree != nil && len(c.Pedigree.Ancestors) == 1 && c.Pedigree.Ancestors[0].Purl == "pkg:golang/"+c.Name+"@"+c.Version {
			patched = append(patched, c.Name)
		}
	}
	for _, d := range info.Deps {
		linked = append(linked, d.Path+"@"+d.Version)
		if d.Replace != nil && strings.HasPrefix(d.Replace.Path, "./") && !slices.Contains(patched, d.Path) {
			t.Errorf("the SBOM has no pedigree for %s, replaced by %s", d.Path, d.Replace.Path)
		}
	}
	linked = append(linked, "std@"+info.GoVersion)
	slices.Sort(got)
	slices.Sort(linked)
	if !slices.Equal(got, linked) {
		t.Errorf("the SBOM lists\n%v\nthe binary links\n%v", got, linked)
	}
}

// checkPackage reads a .deb with dpkg-deb or an .rpm with rpm: its name,
// version and architecture, and the binary in it, which must be the
// release's own (binSum).
func checkPackage(t *testing.T, path, name, arch, format, version, binSum string) {
	binPath := "/usr/bin/" + name
	var inside string
	switch format {
	case "deb":
		if got := run(t, "dpkg-deb", "--showformat=${Package} ${Version} ${Architecture}", "--show", path); got != name+" "+version+"-1 "+debArch[arch] {
			t.Errorf("dpkg-deb --show: %q; want %s %s-1 %s", got, name, version, debArch[arch])
		}
		cmd := exec.Command("sh", "-c", `dpkg-deb --fsys-tarfile "$1" | tar -xOf - ".$2" | sha256sum`, "sh", path, binPath)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("reading %s from %s: %v", binPath, path, err)
		}
		inside, _, _ = strings.Cut(string(out), " ")
	case "rpm":
		if _, err := exec.LookPath("rpm"); err != nil {
			t.Fatal("rpm is not installed; scripts/setup.sh installs it")
		}
		if got := run(t, "rpm", "-qp", "--qf", "%{NAME} %{VERSION}-%{RELEASE} %{ARCH}", path); got != name+" "+version+"-1 "+rpmArch[arch] {
			t.Errorf("rpm -qp: %q; want %s %s-1 %s", got, name, version, rpmArch[arch])
		}
		for line := range strings.Lines(run(t, "rpm", "-qp", "--dump", path)) {
			if f := strings.Fields(line); len(f) > 3 && f[0] == binPath {
				inside = f[3]
			}
		}
	}
	if inside != binSum {
		t.Errorf("%s in the package has SHA-256 %q; the release's binary %s", binPath, inside, binSum)
	}
}

// TestReleaseInstallAgent serves the release from a local HTTP server and
// has its own install-agent.sh fetch and check the agent for this machine,
// each way.
func TestReleaseInstallAgent(t *testing.T) {
	dir := releaseDir(t)
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	for _, method := range []string{"deb", "rpm", "binary"} {
		dl := t.TempDir()
		out, err := exec.Command("sh", filepath.Join(dir, "install-agent.sh"), "--method", method, "--download-only", dl, srv.URL).CombinedOutput()
		if err != nil {
			t.Errorf("install-agent.sh --method %s: %v\n%s", method, err, out)
			continue
		}
		got, _ := filepath.Glob(filepath.Join(dl, "*"))
		if len(got) != 1 || readFile(t, got[0]) != readFile(t, filepath.Join(dir, filepath.Base(got[0]))) {
			t.Errorf("install-agent.sh --method %s fetched %v; want one file of the release", method, got)
		}
	}
}

// The server package's paths.
var (
	serverData  = "/var/lib/portholed"
	serverUnit  = "/usr/lib/systemd/system/portholed.service"
	serverWants = "/etc/systemd/system/multi-user.target.wants/portholed.service"
)

// TestReleaseServerPackage installs the release's portholed and porthole
// .debs into this system with the real dpkg and takes the server through
// its life: install (the portholed user and its empty data directory,
// nothing initialised or started), `portholed init` as that user, a
// reinstall as an upgrade (try-restart only), remove (stop), purge (the
// data directory kept, and said so). It cleans up after itself.
func TestReleaseServerPackage(t *testing.T) {
	dir := releaseDir(t)
	needDpkg(t)
	version := releaseVersion(t, dir)
	arch := pkgArch()
	if arch == "armv7" {
		t.Skip("the server is not packaged for armv7")
	}
	server := filepath.Join(dir, "portholed_"+version+"-1_"+debArch[arch]+".deb")
	cli := filepath.Join(dir, "porthole_"+version+"-1_"+debArch[arch]+".deb")

	lockSystem(t)
	for _, pkg := range []string{"portholed", "porthole"} {
		if status, v := dpkgStatus(t, pkg); status != "" {
			t.Skipf("%s %s is installed on this machine (%s): this test would replace and purge it", pkg, v, status)
		}
	}
	if exists(serverData) {
		t.Skipf("%s exists on this machine: this test would install a server over it", serverData)
	}
	_, userErr := user.Lookup("portholed")
	hadUser := userErr == nil
	t.Cleanup(func() {
		for _, pkg := range []string{"portholed", "porthole"} {
			if status, _ := dpkgStatus(t, pkg); status != "" {
				if out, err := exec.Command("dpkg", "--purge", pkg).CombinedOutput(); err != nil {
					t.Errorf("cleaning up: dpkg --purge %s: %v\n%s", pkg, err, out)
				}
			}
		}
		os.RemoveAll(serverData)
		os.Remove(serverWants)
		if !hadUser {
			exec.Command("userdel", "portholed").Run()
			exec.Command("groupdel", "portholed").Run()
		}
	})

	dpkg(t, noSystemd, "--install", cli, server)
	for _, pkg := range []string{"portholed", "porthole"} {
		if status, v := dpkgStatus(t, pkg); status != "install ok installed" || v != version+"-1" {
			t.Fatalf("dpkg says %s %q %q; want install ok installed %s-1", pkg, status, v, version)
		}
	}
	u, err := user.Lookup("portholed")
	if err != nil {
		t.Fatalf("no portholed user after install: %v", err)
	}
	if u.HomeDir != serverData {
		t.Errorf("portholed's home is %s; want %s", u.HomeDir, serverData)
	}
	fi, err := os.Stat(serverData)
	if err != nil {
		t.Fatalf("installing made no %s: %v", serverData, err)
	}
	if entries, _ := os.ReadDir(serverData); fi.Mode().Perm() != 0o700 || len(entries) > 0 {
		t.Errorf("%s: mode %v, holding %v; want an empty 0700 directory for portholed init", serverData, fi.Mode(), entries)
	}
	if exists(serverWants) {
		t.Error("installing enabled portholed")
	}
	if out := run(t, "dpkg-query", "-W", "-f=${Conffiles}", "portholed"); strings.TrimSpace(out) != "" {
		t.Errorf("portholed has conffiles %q; its config is portholed init's, in %s", out, serverData)
	}
	checkUnit(t, serverUnit, "portholed.service")
	checkDocs(t, "portholed", "init")
	checkDocs(t, "porthole", "ssh")
	for _, prog := range []string{"portholed", "porthole"} {
		want := prog + " " + version + " (commit " + headCommit(t)
		if out := run(t, "/usr/bin/"+prog, "version"); !strings.HasPrefix(out, want) {
			t.Errorf("%s version = %q; want it to start %q (this checkout's HEAD: is the release older?)", prog, out, want)
		}
	}

	// The operator initialises the server as the README says.
	initCmd := exec.Command("runuser", "-u", "portholed", "--", "portholed", "init", "--data", serverData,
		"--admin-email", "ops@example.com", "--public-url", "https://porthole.example.com:8443", "--password-stdin")
	initCmd.Stdin = strings.NewReader("a long enough password\n")
	if out, err := initCmd.CombinedOutput(); err != nil {
		t.Fatalf("portholed init as portholed in the packaged data dir: %v\n%s", err, out)
	}
	config := readFile(t, filepath.Join(serverData, "portholed.yaml"))
	if err := os.Symlink(serverUnit, serverWants); err != nil {
		t.Fatal(err)
	}

	// Reinstalling is an upgrade to dpkg: reload and try-restart only.
	calls := dpkg(t, fakeSystemd, "--install", server)
	checkCalls(t, "upgrade", calls, "daemon-reload", "try-restart portholed.service")
	if got := readFile(t, filepath.Join(serverData, "portholed.yaml")); got != config {
		t.Error("the upgrade changed portholed.yaml")
	}

	calls = dpkg(t, fakeSystemd, "--remove", "portholed")
	checkCalls(t, "remove", calls, "stop portholed.service", "daemon-reload")

	// Purge keeps the certificate authorities and the database, and says so.
	out, err := exec.Command("dpkg", "--purge", "portholed").CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg --purge portholed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "kept /var/lib/portholed") {
		t.Errorf("purge did not say it kept %s:\n%s", serverData, out)
	}
	if got := readFile(t, filepath.Join(serverData, "portholed.yaml")); got != config {
		t.Error("purge changed the server's data")
	}
	if exists(serverWants) {
		t.Error("purge left the enable link")
	}
	dpkg(t, noSystemd, "--purge", "porthole")
	if exists("/usr/bin/porthole") {
		t.Error("/usr/bin/porthole is still there after purge")
	}
}
