//go:build unix

package cli

import (
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

// console is the engineer's terminal during an interactive session: its
// size, raw mode and resizes, all on the standard input's descriptor.
type console struct{ fd int }

// openConsole is the terminal whose input is fd (standard output is not
// needed on Unix).
func openConsole(fd int, _ io.Writer) *console { return &console{fd: fd} }

func (c *console) close() {}

// size is the terminal's width and height.
func (c *console) size() (w, h int, err error) { return term.GetSize(c.fd) }

// makeRaw puts the terminal in raw mode; restore undoes it.
func (c *console) makeRaw() (restore func(), err error) {
	st, err := term.MakeRaw(c.fd)
	if err != nil {
		return nil, err
	}
	return func() { term.Restore(c.fd, st) }, nil
}

// rawInput is what to read the keyboard from in raw mode: in itself.
func (c *console) rawInput(in io.Reader) io.Reader { return in }

// watchResize calls send each time the terminal changes size (SIGWINCH),
// from the w, h the device knows, until the returned function is called.
func (c *console) watchResize(w, h int, send func(w, h int)) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		followSize(done, ch, c.size, w, h, send)
	}()
	return func() {
		signal.Stop(ch)
		close(done)
		<-finished
	}
}

// enableEscapes readies terminals among ws for the escape sequences
// progress lines and replays write: on Unix they are ready.
func enableEscapes(...io.Writer) {}
