//go:build !linux

package cli

import (
	"fmt"
	"io"

	"golang.org/x/term"
)

// readSecret shows prompt on w and reads a line from the terminal fd
// without echo (x/term turns echo off once the prompt is shown).
func readSecret(fd int, w io.Writer, prompt string) ([]byte, error) {
	fmt.Fprint(w, prompt)
	return term.ReadPassword(fd)
}
