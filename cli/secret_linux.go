package cli

import (
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

// readSecret shows prompt on w and reads a line from the terminal fd
// without echo. Echo is turned off before the prompt is shown, as OpenSSH's
// readpassphrase does: what is typed (or pasted) ahead of the prompt is
// not echoed either.
func readSecret(fd int, w io.Writer, prompt string) ([]byte, error) {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	quiet.Iflag |= unix.ICRNL
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return nil, err
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old)
	fmt.Fprint(w, prompt)
	return readTerminalLine(fd)
}

// readTerminalLine reads up to a line's end from a terminal in canonical
// mode; the line ending is not returned.
func readTerminalLine(fd int) ([]byte, error) {
	var line []byte
	var b [1]byte
	for {
		n, err := unix.Read(fd, b[:])
		if n == 1 {
			switch b[0] {
			case '\n':
				return line, nil
			case '\r':
				continue
			default:
				line = append(line, b[0])
				continue
			}
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			if len(line) == 0 {
				return nil, io.EOF
			}
			return line, nil
		}
	}
}
