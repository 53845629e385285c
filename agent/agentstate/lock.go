package agentstate

import "errors"

// ErrAlreadyRunning means another agent holds a lock of the state
// directory (see Lock).
var ErrAlreadyRunning = errors.New("agent: another porthole-agent is running with this state directory")

// lockedError is a lock another process holds, in words for the owner.
type lockedError struct{ msg string }

func (e *lockedError) Error() string        { return e.msg }
func (e *lockedError) Is(target error) bool { return target == ErrAlreadyRunning }
