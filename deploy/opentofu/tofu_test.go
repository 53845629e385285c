package opentofu_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// repoRoot is the repository, relative to this directory.
const repoRoot = "../.."

// providerMirror is where this machine keeps the AWS provider, laid out
// as a Terraform filesystem mirror (registry.terraform.io/hashicorp/aws/
// VERSION/OS_ARCH/): $PORTHOLE_TF_PLUGINS, else /opt/tf-plugins. The
// registries cannot be reached from here, so without one only tofu fmt
// runs.
func providerMirror(t *testing.T) string {
	dir := os.Getenv("PORTHOLE_TF_PLUGINS")
	if dir == "" {
		dir = "/opt/tf-plugins"
	}
	m, _ := filepath.Glob(filepath.Join(dir, "registry.terraform.io/hashicorp/aws/*", runtime.GOOS+"_"+runtime.GOARCH))
	if len(m) == 0 {
		t.Skipf("skipping: no AWS provider in a filesystem mirror at %s (set PORTHOLE_TF_PLUGINS); "+
			"the registries cannot be reached here, so validate and test cannot run", dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// findTool returns the named tool: in .tools (scripts/setup.sh builds
// tofu there), else on $PATH.
func findTool(t *testing.T, name, how string) string {
	t.Helper()
	if p, err := filepath.Abs(filepath.Join(repoRoot, ".tools", name)); err == nil {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" && name == "tofu" {
		t.Fatalf("%s is not installed and CI requires it (%s)", name, how)
	}
	t.Skipf("skipping: %s is not installed (%s)", name, how)
	return ""
}

// workspace copies deploy/opentofu and deploy/aws-iot (which the module
// reads) into a scratch directory, so that init writes nothing here, and
// a CLI config that installs the AWS provider from the mirror only.
func workspace(t *testing.T, tool, mirror string) (root, cliConfig string) {
	t.Helper()
	root = t.TempDir()
	for _, d := range []string{"opentofu", "aws-iot"} {
		if err := os.CopyFS(filepath.Join(root, "deploy", d), os.DirFS(filepath.Join("..", d))); err != nil {
			t.Fatal(err)
		}
	}
	// OpenTofu names the provider registry.opentofu.org/hashicorp/aws: the
	// same binary, under its registry's name.
	registry := "registry.terraform.io"
	if filepath.Base(tool) == "tofu" {
		registry = "registry.opentofu.org"
		platforms, _ := filepath.Glob(filepath.Join(mirror, "registry.terraform.io/hashicorp/aws/*/*"))
		for _, p := range platforms {
			version := filepath.Base(filepath.Dir(p))
			alias := filepath.Join(root, "mirror", registry, "hashicorp/aws", version)
			if err := os.MkdirAll(alias, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(p, filepath.Join(alias, filepath.Base(p))); err != nil {
				t.Fatal(err)
			}
		}
		mirror = filepath.Join(root, "mirror")
	}
	cliConfig = filepath.Join(root, "cli.tfrc")
	text := `provider_installation {
  filesystem_mirror {
    path    = "` + mirror + `"
    include = ["` + registry + `/hashicorp/aws"]
  }
  direct {
    exclude = ["*/*/*"]
  }
}
`
	if err := os.WriteFile(cliConfig, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, cliConfig
}

// run runs tool with args in dir, with the CLI config and no
// checkpoint calls, and fails the test with its output on an error.
func run(t *testing.T, dir, cliConfig, tool string, args ...string) string {
	t.Helper()
	cmd := exec.Command(tool, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+cliConfig, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1", "TF_INPUT=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s in %s: %v\n%s", filepath.Base(tool), strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

// checkWith runs fmt, then init, validate and the module's tests (against
// a mock AWS provider) with tool, and validate on the example.
func checkWith(t *testing.T, tool string) {
	name := filepath.Base(tool)
	t.Run("fmt", func(t *testing.T) {
		run(t, ".", os.DevNull, tool, "fmt", "-check", "-recursive", "-diff", "-no-color", ".")
	})
	mirror := providerMirror(t)
	root, cfg := workspace(t, tool, mirror)
	mod := filepath.Join(root, "deploy/opentofu", module)
	example := filepath.Join(root, "deploy/opentofu/examples/production")
	run(t, mod, cfg, tool, "init", "-backend=false", "-no-color")
	t.Run("validate module", func(t *testing.T) { run(t, mod, cfg, tool, "validate", "-no-color") })
	t.Run("test module", func(t *testing.T) {
		out := run(t, mod, cfg, tool, "test", "-no-color")
		if !strings.Contains(out, "4 passed, 0 failed") {
			t.Errorf("%s test: want 4 runs passed:\n%s", name, out)
		}
		t.Logf("%s test:\n%s", name, out)
	})
	run(t, example, cfg, tool, "init", "-backend=false", "-no-color")
	t.Run("validate example", func(t *testing.T) { run(t, example, cfg, tool, "validate", "-no-color") })
}

// TestTofu checks the module and the example with the real OpenTofu,
// the version scripts/setup.sh builds (about 10 s).
func TestTofu(t *testing.T) {
	checkWith(t, findTool(t, "tofu", "run scripts/setup.sh, which builds it into .tools"))
}

// TestTerraform does the same with Terraform, where it is installed; make
// check-release runs it (PORTHOLE_CHECK_RELEASE=1).
func TestTerraform(t *testing.T) {
	if os.Getenv("PORTHOLE_CHECK_RELEASE") != "1" {
		t.Skip("skipping: Terraform's checks run in make check-release (PORTHOLE_CHECK_RELEASE=1)")
	}
	checkWith(t, findTool(t, "terraform", "install Terraform to check the module with it too"))
}
