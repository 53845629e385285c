package cli

import (
	"errors"
	"io"
	"os"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/term"
)

// console is the engineer's Windows console during an interactive
// session. Input modes are set on the standard input's handle; the size
// and output modes belong to the screen buffer, which the input handle
// does not have: standard output's handle when it is the console, else
// CONOUT$.
type console struct {
	in     windows.Handle
	out    windows.Handle // 0 when there is no screen buffer to be had
	conout *os.File       // CONOUT$, when opened here
}

// openConsole is the console whose input is fd, with out for its screen
// buffer if out is one.
func openConsole(fd int, out io.Writer) *console {
	c := &console{in: windows.Handle(fd)}
	if ofd := terminalFd(out); ofd >= 0 {
		c.out = windows.Handle(ofd)
	} else if f, err := os.OpenFile("CONOUT$", os.O_RDWR, 0); err == nil {
		c.conout, c.out = f, windows.Handle(f.Fd())
	}
	return c
}

func (c *console) close() {
	if c.conout != nil {
		c.conout.Close()
	}
}

var errNoScreenBuffer = errors.New("no console screen buffer")

// size is the console window's width and height (not its scroll-back).
func (c *console) size() (w, h int, err error) {
	if c.out == 0 {
		return 0, 0, errNoScreenBuffer
	}
	return term.GetSize(int(c.out))
}

// makeRaw puts the console in raw mode: keys arrive as a terminal's
// escape sequences, unechoed, Ctrl-C included (x/term's MakeRaw), and what
// the device sends is interpreted as a terminal's output: escape sequences
// processed, and a line that reaches the last column wrapping only when
// the next character comes, as a VT100's does (full-screen programs such
// as vi and less count on it). restore undoes both.
func (c *console) makeRaw() (restore func(), err error) {
	st, err := term.MakeRaw(int(c.in))
	if err != nil {
		return nil, err
	}
	var outMode uint32
	outSet := false
	if c.out != 0 && windows.GetConsoleMode(c.out, &outMode) == nil {
		// Without virtual terminal processing (Windows 10 before 1511)
		// the escape sequences show as text; the session still works.
		outSet = windows.SetConsoleMode(c.out, outMode|windows.ENABLE_VIRTUAL_TERMINAL_PROCESSING|windows.DISABLE_NEWLINE_AUTO_RETURN) == nil
	}
	return func() {
		if outSet {
			windows.SetConsoleMode(c.out, outMode)
		}
		term.Restore(int(c.in), st)
	}, nil
}

// rawInput is what to read the keyboard from in raw mode: the console
// itself, read with ReadConsole. An *os.File's reads of a console take
// Ctrl-Z for the end of input and drop it, so a shell on the device would
// never get its suspend key.
func (c *console) rawInput(io.Reader) io.Reader { return &consoleReader{h: c.in} }

// resizePoll is how often the console's size is checked: Windows has no
// SIGWINCH, and a console's resize events arrive only to a reader of its
// input records, which raw input as a byte stream is not.
const resizePoll = 250 * time.Millisecond

// watchResize calls send each time the console window changes size, from
// the w, h the device knows, until the returned function is called.
func (c *console) watchResize(w, h int, send func(w, h int)) (stop func()) {
	t := time.NewTicker(resizePoll)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		followSize(done, t.C, c.size, w, h, send)
	}()
	return func() {
		t.Stop()
		close(done)
		<-finished
	}
}

// consoleReader reads a console's keys as UTF-8.
type consoleReader struct {
	h    windows.Handle
	dec  utf16Decoder
	wide [512]uint16
	out  []byte // decoded, not yet read
}

func (r *consoleReader) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		var n uint32
		if err := windows.ReadConsole(r.h, &r.wide[0], uint32(len(r.wide)), &n, nil); err != nil {
			return 0, err
		}
		r.out = r.dec.decode(r.out[:0], r.wide[:n])
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

// enableEscapes turns on virtual terminal processing for the consoles
// among ws, so that the escape sequences that progress lines, replays and
// prompts write are interpreted rather than shown (Windows 10 1511 and
// later; older consoles show them as they are). It stays on when porthole
// exits, as it does after other programs that turn it on: the proxy
// shares its console with ssh.exe, which sets modes of its own that
// putting ours back could undo.
func enableEscapes(ws ...io.Writer) {
	for _, w := range ws {
		if fd := terminalFd(w); fd >= 0 {
			var mode uint32
			if windows.GetConsoleMode(windows.Handle(fd), &mode) == nil && mode&windows.ENABLE_VIRTUAL_TERMINAL_PROCESSING == 0 {
				_ = windows.SetConsoleMode(windows.Handle(fd), mode|windows.ENABLE_VIRTUAL_TERMINAL_PROCESSING)
			}
		}
	}
}
