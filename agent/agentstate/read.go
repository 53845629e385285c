package agentstate

import (
	"errors"
	"fmt"
	"io/fs"
)

// ReadError says what to do when a file of the state directory (the event
// log, the recordings, the owner link) cannot be read: the owner reads it
// as root or as a member of OwnerGroup.
func ReadError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("cannot read %s (permission denied); run as root, or as a member of the %s group", path, OwnerGroup)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s does not exist; is --state the agent's state directory?", path)
	}
	return err
}
