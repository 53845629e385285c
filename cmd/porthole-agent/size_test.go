package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// maxSizeARM64 is the most porthole-agent for linux/arm64 may weigh,
// built as `make build` builds it (static, stripped): small devices
// store it, and its resident memory follows its size (bench/README.md,
// "The agent's footprint").
const maxSizeARM64 = 10_000_000

// TestSizeARM64 keeps the agent small: a dependency or a package of the
// standard library that weighs (text/template, say: see TestDeps) fails
// it. It takes a second or two once Go's build cache holds the agent's
// packages for arm64, as `make build` leaves it.
func TestSizeARM64(t *testing.T) {
	t.Parallel()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command to build the agent with: %v", err)
	}
	out := filepath.Join(t.TempDir(), "porthole-agent")
	// As the Makefile's cross target, but for the version stamps.
	cmd := exec.Command(gobin, "build", "-trimpath", "-ldflags", "-s -w", "-o", out, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build for linux/arm64: %v\n%s", err, msg)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("porthole-agent for linux/arm64: %d bytes (at most %d)", fi.Size(), maxSizeARM64)
	if fi.Size() > maxSizeARM64 {
		t.Errorf("porthole-agent for linux/arm64 is %.2f MB; want at most %.0f MB: find what grew with go tool nm -size -sort size on a build without -s -w (bench/README.md, \"The agent's footprint\")",
			float64(fi.Size())/1e6, float64(maxSizeARM64)/1e6)
	}
}
