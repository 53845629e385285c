// Package packaging_test checks what `make packages` and `make release`
// make: the shipped config example, the shell scripts, the agent's .deb
// and .rpm through install, upgrade, remove and purge with the real dpkg,
// the device installer against a local server, and (with make
// check-release) every artifact of a release.
package packaging_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/porthole/porthole/agent"
)

// TestAgentConfigExample: the agent.yaml the package installs parses as the
// defaults, and with every setting uncommented (sshd_config style: "#key:"
// and, nested, "#  key:" are settings, "# words" comments) it still parses and names every key
// the agent has, so the example neither lies nor falls behind.
func TestAgentConfigExample(t *testing.T) {
	data, err := os.ReadFile("agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := agent.ParseConfig(data)
	if err != nil {
		t.Fatalf("agent.yaml as shipped: %v", err)
	}
	if !reflect.DeepEqual(*cfg, agent.Config{}) {
		t.Errorf("agent.yaml as shipped sets %+v; want nothing but comments", *cfg)
	}

	setting := regexp.MustCompile(`^#((?:  )?[a-z_]+:)`) // "#key:", or "#  key:" nested
	var lines []string
	for line := range strings.Lines(string(data)) {
		lines = append(lines, setting.ReplaceAllString(line, "$1"))
	}
	uncommented := strings.Join(lines, "")
	cfg, err = agent.ParseConfig([]byte(uncommented))
	if err != nil {
		t.Fatalf("agent.yaml with every setting uncommented: %v\n%s", err, uncommented)
	}
	if cfg.Consent.Mode != "manual" || cfg.Owner.LocalUI == "" || cfg.Broker.URL == "" || cfg.Recordings.Keep == 0 {
		t.Errorf("uncommented, agent.yaml gives %+v; want its examples set", *cfg)
	}
	for _, key := range yamlKeys(reflect.TypeFor[agent.Config]()) {
		if !regexp.MustCompile(`(?m)^#(?:  )?` + regexp.QuoteMeta(key) + `:`).MatchString(string(data)) {
			t.Errorf("agent.yaml does not show the key %s", key)
		}
	}
}

// yamlKeys lists the yaml keys of a config struct, nested ones included,
// inline structs flattened.
func yamlKeys(typ reflect.Type) []string {
	var keys []string
	for f := range typ.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if opts == "inline" {
			keys = append(keys, yamlKeys(ft)...)
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		keys = append(keys, name)
		if ft.Kind() == reflect.Struct && ft.NumField() > 0 && ft.PkgPath() != "time" {
			keys = append(keys, yamlKeys(ft)...)
		}
	}
	return keys
}

// TestShellScripts runs shellcheck on the packages' maintainer scripts and
// the release scripts (scripts/setup.sh installs it).
func TestShellScripts(t *testing.T) {
	path, err := exec.LookPath("shellcheck")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("shellcheck is not installed; scripts/setup.sh installs it")
		}
		t.Skip("shellcheck is not installed (scripts/setup.sh installs it)")
	}
	scripts, _ := filepath.Glob("scripts/*")
	for i, s := range scripts {
		scripts[i] = filepath.Join("packaging", s)
	}
	for _, s := range []string{"packages.sh", "release.sh", "version.sh", "install-agent.sh"} {
		scripts = append(scripts, filepath.Join("scripts", s))
	}
	cmd := exec.Command(path, append([]string{"-x"}, scripts...)...)
	cmd.Dir = root // where the scripts' "# shellcheck source=" paths start
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}
