package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/term"
)

// prompter asks the user for the things login needs, on stderr. On a
// terminal, secrets are read without echo. When stdin is not a terminal it
// reads one line per answer, so scripts and tests can pipe
// "email\npassword\ncode\n".
type prompter struct {
	in  *bufio.Reader // one reader for every answer, so none is lost in a buffer
	fd  int           // stdin's descriptor when it is a terminal, else -1
	out io.Writer
}

func newPrompter(in io.Reader, out io.Writer) *prompter {
	return &prompter{in: bufio.NewReader(in), fd: terminalFd(in), out: out}
}

// terminalFd returns the descriptor of f if it is a terminal, else -1.
func terminalFd(f any) int {
	if fder, ok := f.(interface{ Fd() uintptr }); ok && term.IsTerminal(int(fder.Fd())) {
		return int(fder.Fd())
	}
	return -1
}

// line asks for one answer, shown as typed, with spaces trimmed. With a
// default, an empty answer takes it.
func (p *prompter) line(what, def string) (string, error) {
	if def != "" {
		fmt.Fprintf(p.out, "%s [%s]: ", what, def)
	} else {
		fmt.Fprintf(p.out, "%s: ", what)
	}
	s, err := p.readLine(what)
	if s = strings.TrimSpace(s); s != "" {
		return s, nil
	}
	if def != "" {
		return def, nil
	}
	if err == nil { // only spaces
		err = fmt.Errorf("no %s given", what)
	}
	return "", err
}

// secret asks for an answer that is not echoed on a terminal and is kept
// exactly as typed (a password may begin or end with a space).
func (p *prompter) secret(what string) (string, error) {
	if p.fd < 0 {
		fmt.Fprintf(p.out, "%s: ", what)
		return p.readLine(what)
	}
	b, err := readSecret(p.fd, p.out, what+": ")
	fmt.Fprintln(p.out) // the user's Enter was not echoed
	if err != nil {
		return "", fmt.Errorf("reading the %s: %w", what, err)
	}
	if len(b) == 0 {
		return "", fmt.Errorf("no %s given", what)
	}
	return string(b), nil
}

// readLine reads one line without its line ending; a last line without
// one counts. An empty answer is an error saying what is missing.
func (p *prompter) readLine(what string) (string, error) {
	s, err := p.in.ReadString('\n')
	if p.fd < 0 {
		fmt.Fprintln(p.out) // piped input is not echoed: end the prompt's line
	}
	if s = strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r"); s != "" {
		return s, nil
	}
	switch {
	case errors.Is(err, io.EOF):
		return "", fmt.Errorf("no %s given (standard input ended)", what)
	case err != nil:
		return "", fmt.Errorf("reading the %s: %w", what, err)
	}
	return "", fmt.Errorf("no %s given", what)
}
