package helm_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestTrivy scans the chart, rendered with each example's values, with
// trivy's Kubernetes checks (built into the trivy make check-release
// builds) and fails on any high or critical finding; every finding is
// logged. make check-release runs it (PORTHOLE_CHECK_RELEASE=1).
func TestTrivy(t *testing.T) {
	if os.Getenv("PORTHOLE_CHECK_RELEASE") != "1" {
		t.Skip("skipping: trivy runs in make check-release (PORTHOLE_CHECK_RELEASE=1)")
	}
	trivy, err := filepath.Abs("../../.tools/trivy")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(trivy); err != nil {
		if trivy, err = exec.LookPath("trivy"); err != nil {
			t.Fatal("trivy is not installed (make check-release builds it into .tools)")
		}
	}
	for _, f := range examples(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			scan := func(severity, exitCode string) (string, error) {
				out, err := exec.Command(trivy, "config", "--cache-dir", t.TempDir(), "--skip-check-update", "--quiet",
					"--helm-values", f, "--severity", severity, "--exit-code", exitCode, chart).CombinedOutput()
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
		})
	}
}
