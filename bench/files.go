package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Many small files: `scp -r` of a directory of smallFileCount files of
// smallFileSize bytes each, up and down, which costs round trips and
// per-file work more than bandwidth.
const (
	smallFileCount = 1000
	smallFileSize  = 4 << 10
)

// smallFiles copies the directory up and down with every tool, reps times,
// interleaved as throughput does. Each result's Size is the directory's
// bytes.
func smallFiles(ctx context.Context, b *benchRun, reps int) ([]XferResult, error) {
	dir := filepath.Join(b.dir, "files")
	src := filepath.Join(dir, "source")
	if err := os.MkdirAll(src, 0o700); err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	for i := range smallFileCount {
		if err := writeRandomFile(filepath.Join(src, fmt.Sprintf("f%04d", i)), smallFileSize); err != nil {
			return nil, err
		}
	}
	p, o := b.porthole, b.openssh
	dev, stock := benchDevice, benchDevice+".porthole"
	// Every copy lands in a fresh directory, checked and removed after.
	landed := func(path string) func(string) error {
		return func(string) error {
			defer os.RemoveAll(path)
			entries, err := os.ReadDir(path)
			if err != nil {
				return err
			}
			if len(entries) != smallFileCount {
				return fmt.Errorf("%s has %d files; want %d", path, len(entries), smallFileCount)
			}
			return nil
		}
	}
	dst := func(tool, op string) string {
		return filepath.Join(dir, strings.NewReplacer(" ", "-", ",", "", "/", "").Replace(tool+"-"+op))
	}
	var jobs []xferJob
	for _, t := range []struct {
		tool     string
		viaRelay bool
		copy     func(from, to string) *exec.Cmd
	}{
		{toolPorthole, true, func(f, to string) *exec.Cmd { return p.cmd("scp", "-r", f, to) }},
		{toolStock, true, func(f, to string) *exec.Cmd { return p.stockSSH("scp", "-q", "-r", f, to) }},
		{toolOpenSSH, false, func(f, to string) *exec.Cmd { return o.scp([]string{"-r"}, f, to) }},
	} {
		remoteHost := dev + ":"
		switch t.tool {
		case toolStock:
			remoteHost = stock + ":"
		case toolOpenSSH:
			remoteHost = "REMOTE:"
		}
		up, down := dst(t.tool, "up"), dst(t.tool, "down")
		jobs = append(jobs,
			xferJob{op: "scp -r up", tool: t.tool, viaRelay: t.viaRelay,
				cmd: func() *exec.Cmd { return t.copy(src, remoteHost+up) }, check: landed(up)},
			xferJob{op: "scp -r down", tool: t.tool, viaRelay: t.viaRelay,
				cmd: func() *exec.Cmd { return t.copy(remoteHost+src, down) }, check: landed(down)})
	}
	return b.runInterleaved(ctx, jobs, []string{"scp -r up", "scp -r down"}, []string{toolPorthole, toolStock, toolOpenSSH},
		reps, smallFileCount*smallFileSize, func(rep int) {
			b.log.Info("small files", "repetition", rep+1, "of", reps, "files", smallFileCount)
		})
}
