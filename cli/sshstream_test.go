//go:build linux

package cli

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/porthole/porthole/internal/testnet"
)

// TestDataPathStreams: porthole ssh carries its standard input to the
// command and the command's output back, byte for byte, with EOF, and
// all of the output arrives before it exits.
func TestDataPathStreams(t *testing.T) {
	t.Parallel()
	p := startDataPath(t, pathOpts{})
	data := make([]byte, 8<<20+123)
	rand.Read(data)
	r := startCLI(t, p.env, bytes.NewReader(data), "ssh", "dev1", "--", "cat; echo done >&2")
	if err := r.wait(t); err != nil {
		t.Fatalf("porthole ssh: %v\n%s", err, r.stderr)
	}
	if got := []byte(r.stdout.String()); !bytes.Equal(got, data) {
		t.Errorf("cat gave back %d bytes; want the %d sent", len(got), len(data))
	}
	if !strings.Contains(r.stderr.String(), "done") {
		t.Errorf("stderr %q; want the command's", r.stderr)
	}
}

// TestDataPathOutputFails: when the command's output cannot be written
// here, porthole ssh says so, and does not hang: the rest is dropped so
// the command ends.
func TestDataPathOutputFails(t *testing.T) {
	t.Parallel()
	p := startDataPath(t, pathOpts{})
	out := &failingWriter{left: 1 << 20}
	r := &running{stdout: &testnet.Buffer{}, stderr: &testnet.Buffer{}, done: make(chan error, 1)}
	go func() {
		r.done <- Run(t.Context(), []string{"ssh", "dev1", "--", "head -c 16777216 /dev/zero"},
			IO{In: strings.NewReader(""), Out: out, Err: r.stderr, Getenv: func(k string) string { return p.env[k] }})
	}()
	err := r.wait(t)
	if err == nil || !strings.Contains(err.Error(), "cannot write the output of the command on dev1") || !errors.Is(err, errDiskFull) {
		t.Errorf("porthole ssh with a failing stdout: %v; want it to say so", err)
	}
}

var errDiskFull = errors.New("no space left on device")

// failingWriter takes left bytes, then fails.
type failingWriter struct {
	mu   sync.Mutex
	left int
}

func (w *failingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(p) > w.left {
		n := w.left
		w.left = 0
		return n, errDiskFull
	}
	w.left -= len(p)
	return len(p), nil
}
