//go:build linux

package cli

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole/internal/testnet"
	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal: the master end a test types into and
// reads the echo from, and the terminal end porthole reads as stdin.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlocking the pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	return master, tty
}

// watchScreen collects what the terminal of master shows, until it closes.
func watchScreen(master *os.File) *testnet.Buffer {
	screen := new(testnet.Buffer)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			screen.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	return screen
}

// TestPasswordNotEchoed types the answers into a real terminal, the
// password only once echo is off, and checks that what the terminal
// echoed holds the email but never the password.
func TestPasswordNotEchoed(t *testing.T) {
	master, tty := openPTY(t)
	var echo bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the terminal's echo comes back on the master
		defer wg.Done()
		buf := make([]byte, 1024)
		for {
			n, err := master.Read(buf)
			echo.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()

	ask := newPrompter(tty, &bytes.Buffer{})
	if ask.fd < 0 {
		t.Fatal("the pty is not seen as a terminal")
	}
	type answer struct {
		s   string
		err error
	}
	done := make(chan answer, 2)
	go func() {
		s, err := ask.line("Email", "")
		done <- answer{s, err}
		s, err = ask.secret("Password")
		done <- answer{s, err}
	}()
	master.Write([]byte("ops@example.com\n"))
	if a := <-done; a.err != nil || a.s != "ops@example.com" {
		t.Fatalf("email = %q, %v", a.s, a.err)
	}
	waitEchoOff(t, int(tty.Fd()))
	master.Write([]byte("s3cret pass\n"))
	if a := <-done; a.err != nil || a.s != "s3cret pass" {
		t.Fatalf("password = %q, %v", a.s, a.err)
	}
	tty.Close()
	master.Close()
	wg.Wait()
	if !strings.Contains(echo.String(), "ops@example.com") {
		t.Errorf("the email was not echoed (%q): the test does not see echo", echo.String())
	}
	if strings.Contains(echo.String(), "s3cret") {
		t.Errorf("the password was echoed: %q", echo.String())
	}
}

// waitEchoOff polls the terminal until echo is switched off.
func waitEchoOff(t *testing.T, fd int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		if tio.Lflag&unix.ECHO == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("echo was never switched off for the password")
		}
		time.Sleep(time.Millisecond)
	}
}
