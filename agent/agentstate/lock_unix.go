//go:build unix

package agentstate

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// Lock takes the lock file at path, so that two agents never share one
// device identity: they would take the broker session from each other, and
// could each accept a command the other had already seen. If another
// process holds it, the error reads busy (a sentence for the owner) and
// matches ErrAlreadyRunning. The lock ends with the process or with the
// returned release.
func Lock(path, busy string) (release func() error, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &lockedError{msg: busy}
		}
		return nil, fmt.Errorf("taking the lock %s: %w", path, err)
	}
	return f.Close, nil
}
