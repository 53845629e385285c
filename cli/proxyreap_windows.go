package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/windows"
)

// startReaper starts `porthole proxy-reaper` for this proxy's session:
// detached from the console, in a process group of its own and with none
// of ssh.exe's pipes (its standard streams are NUL), so that it outlives
// the proxy and ssh waits for nothing of it.
func startReaper(a *app, session string) {
	exe, err := os.Executable()
	if err == nil {
		cmd := exec.Command(exe, reaperArgs(a.server, os.Getpid(), session)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{
			CreationFlags: windows.DETACHED_PROCESS | windows.CREATE_NEW_PROCESS_GROUP,
			HideWindow:    true,
		}
		if err = cmd.Start(); err == nil {
			cmd.Process.Release()
			return
		}
	}
	fmt.Fprintf(a.io.Err, "porthole: cannot watch over session %s (%v): if ssh ends, the session stays open until it is idle; `porthole close %s` closes it\n",
		session, err, session)
}

// waitProcess returns once the process pid has ended.
func waitProcess(pid int) error {
	h, err := windows.OpenProcess(windows.SYNCHRONIZE, false, uint32(pid))
	if err != nil {
		if errors.Is(err, windows.ERROR_INVALID_PARAMETER) { // no such process: it has ended
			return nil
		}
		return fmt.Errorf("watching process %d: %w", pid, err)
	}
	defer windows.CloseHandle(h)
	if _, err := windows.WaitForSingleObject(h, windows.INFINITE); err != nil {
		return fmt.Errorf("watching process %d: %w", pid, err)
	}
	return nil
}
