package opentofu_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestTrivy scans the module and the example with trivy's misconfiguration
// checks (the ones built into the trivy that make check-release builds:
// nothing is downloaded) and fails on any high or critical finding. Every
// finding of any severity is logged. make check-release runs it
// (PORTHOLE_CHECK_RELEASE=1); README.md lists what it reports.
func TestTrivy(t *testing.T) {
	if os.Getenv("PORTHOLE_CHECK_RELEASE") != "1" {
		t.Skip("skipping: trivy runs in make check-release (PORTHOLE_CHECK_RELEASE=1)")
	}
	trivy := findTool(t, "trivy", "make check-release builds it into .tools")
	root := t.TempDir()
	for _, d := range []string{"opentofu", "aws-iot"} {
		if err := os.CopyFS(filepath.Join(root, "deploy", d), os.DirFS(filepath.Join("..", d))); err != nil {
			t.Fatal(err)
		}
	}
	scan := func(severity, exitCode string) (string, error) {
		cmd := exec.Command(trivy, "config", "--cache-dir", t.TempDir(), "--skip-check-update", "--quiet",
			"--severity", severity, "--exit-code", exitCode, "deploy/opentofu")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	all, err := scan("UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL", "0")
	if err != nil {
		t.Fatalf("trivy config: %v\n%s", err, all)
	}
	t.Logf("trivy config, every finding:\n%s", all)
	if out, err := scan("HIGH,CRITICAL", "1"); err != nil {
		t.Errorf("trivy config finds high or critical misconfigurations: %v\n%s", err, out)
	}
}
