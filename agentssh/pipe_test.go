package agentssh

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestNewPipe: a command's pipes hold pipeSize bytes, not Linux's 64 KiB,
// where the kernel lets this user have them.
func TestNewPipe(t *testing.T) {
	r, w, err := newPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	const fGetPipeSz = 1032 // F_GETPIPE_SZ
	rc, err := w.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var size uintptr
	var errno syscall.Errno
	rc.Control(func(fd uintptr) { size, _, errno = syscall.Syscall(syscall.SYS_FCNTL, fd, fGetPipeSz, 0) })
	if errno != 0 {
		t.Fatal(errno)
	}
	// Without root a pipe may not grow past pipe-max-size.
	want := uintptr(pipeSize)
	if os.Geteuid() != 0 {
		if b, err := os.ReadFile("/proc/sys/fs/pipe-max-size"); err == nil {
			if limit, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				want = min(want, uintptr(limit))
			}
		}
	}
	if size != want {
		t.Errorf("pipe holds %d bytes; want %d", size, want)
	}
}
