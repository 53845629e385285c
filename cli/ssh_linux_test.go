//go:build linux

package cli

import (
	"context"
	"errors"
	"maps"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/porthole/porthole/internal/testwait"
)

func setWinsize(t *testing.T, tty *os.File, rows, cols uint16) {
	t.Helper()
	if err := unix.IoctlSetWinsize(int(tty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatal(err)
	}
}

// TestSSHTerminal runs porthole ssh on a real terminal: the support code
// is asked for there without echo, the device's shell gets a terminal of
// the same size and TERM, a resize reaches it, the exit status comes back,
// and the terminal is left as it was.
func TestSSHTerminal(t *testing.T) {
	t.Parallel()
	p := startDataPath(t, pathOpts{code: "K4M2-9QXD-TT7P"})
	master, tty := openPTY(t)
	setWinsize(t, tty, 30, 100)
	before, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	screen := watchScreen(master) // what the terminal shows
	env := maps.Clone(p.env)
	env["TERM"] = "xterm-porthole"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	script := `echo "term=$TERM"; stty size; while read line; do stty size; [ "$line" = q ] && exit 7; done`
	go func() {
		done <- Run(ctx, []string{"ssh", "dev1", "-t", "--", script},
			IO{In: tty, Out: tty, Err: tty, Getenv: func(k string) string { return env[k] }})
	}()
	testwait.For(t, 10*time.Second, "the support code prompt", func() bool { return strings.Contains(screen.String(), "Support code for dev1: ") })
	master.WriteString("K4M2-9QXD-TT7P\r")
	testwait.For(t, 10*time.Second, "the device's terminal size", func() bool { return strings.Contains(screen.String(), "30 100") })
	if s := screen.String(); !strings.Contains(s, "term=xterm-porthole") || strings.Contains(s, "K4M2") {
		t.Errorf("the terminal shows %q; want TERM passed and the code not echoed", s)
	}

	setWinsize(t, tty, 40, 120)
	syscall.Kill(os.Getpid(), syscall.SIGWINCH)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(screen.String(), "40 120") {
		if time.Now().After(deadline) {
			t.Fatalf("the resize did not reach the device: %q", screen.String())
		}
		master.WriteString("x\r") // the loop prints the size for each line
		time.Sleep(20 * time.Millisecond)
	}
	master.WriteString("q\r")
	var exit *ExitError
	select {
	case err := <-done:
		if !errors.As(err, &exit) || exit.Code != 7 {
			t.Errorf("ssh = %v; want exit status 7", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("ssh did not end: %q", screen.String())
	}
	after, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if after.Lflag != before.Lflag || after.Iflag != before.Iflag || after.Oflag != before.Oflag {
		t.Errorf("the terminal was left changed: lflag %#x → %#x", before.Lflag, after.Lflag)
	}
	p.allClosedBy(t, "engineer_closed")
}
