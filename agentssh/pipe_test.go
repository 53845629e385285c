package agentssh

import (
	"os"
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
	if os.Geteuid() == 0 && size != pipeSize {
		t.Errorf("pipe holds %d bytes; want %d", size, pipeSize)
	}
	if size < 64<<10 {
		t.Errorf("pipe holds %d bytes; want at least 64 KiB", size)
	}
}
