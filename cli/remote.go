package cli

import (
	"fmt"

	"github.com/porthole/porthole/engineerssh"
)

// waitRemote waits until the device has closed s and says how its
// command ended: nil for status 0, an *ExitError for device (a status or
// a signal), engineerssh.ErrNoExitStatus when it said neither.
func waitRemote(s *engineerssh.RemoteSession, device string) error {
	code, signal, err := s.Wait()
	switch {
	case err != nil:
		return err
	case code == 0:
		return nil
	case code == -1:
		code = 128 + signalNumber(signal)
	}
	return &ExitError{Code: code, Device: device, Signal: signal}
}

// signalNumber is the number of a signal named as SSH names them (RFC
// 4254 §6.10), for an exit code of 128 plus it as shells give; 0 for one
// it does not know.
func signalNumber(name string) int {
	n, ok := map[string]int{"HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "ABRT": 6, "FPE": 8, "KILL": 9,
		"USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15}[name]
	if !ok {
		return 0
	}
	return n
}

// refusedWords says that device would not start command (a shell if
// empty).
func refusedWords(device, command string) string {
	if command == "" {
		return fmt.Sprintf("%s refused to start a shell", device)
	}
	return fmt.Sprintf("%s refused to run the command", device)
}
