//go:build unix

package cli

import (
	"errors"
	"syscall"
	"time"
)

// startReaper does nothing on Unix: ssh ends its ProxyCommand with
// SIGHUP, on which the proxy closes its session itself.
func startReaper(*app, string) {}

// waitProcess returns once the process pid has ended (it need not be a
// child: signal 0 only asks whether it is there).
func waitProcess(pid int) error {
	for {
		err := syscall.Kill(pid, 0)
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		if err != nil && !errors.Is(err, syscall.EPERM) { // EPERM: there, but another user's
			return err
		}
		time.Sleep(reapPoll)
	}
}

// reapPoll is how often waitProcess looks.
const reapPoll = time.Second
