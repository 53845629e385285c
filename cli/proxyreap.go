package cli

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
)

// A proxy that Windows' ssh.exe started cannot close its session on the
// way out: ssh.exe ends its ProxyCommand with TerminateProcess, which no
// program sees coming, right after it hangs up. So there the proxy starts
// a detached porthole beside itself (startReaper), `porthole proxy-reaper
// PID SESSION`, which waits for the proxy's process to end and then
// closes the session, as the proxy does itself on Unix when ssh hangs up
// with SIGHUP. Closing a session the proxy did close changes nothing.

// reaperCommand is the hidden command's name.
const reaperCommand = "proxy-reaper"

func newProxyReaper(a *app) *cobra.Command {
	return &cobra.Command{
		Use:    reaperCommand + " PID SESSION",
		Short:  "Close SESSION once the process PID (a porthole proxy) has ended; porthole proxy starts it on Windows",
		Hidden: true,
		Args:   cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			pid, err := strconv.Atoi(args[0])
			if err != nil || pid <= 0 {
				return fmt.Errorf("%q is not a process ID", args[0])
			}
			return a.reapProxy(cmd.Context(), func() error { return waitProcess(pid) }, args[1])
		},
	}
}

// reapProxy waits for the proxy to end (wait) and closes session.
func (a *app) reapProxy(ctx context.Context, wait func() error, session string) error {
	if err := wait(); err != nil {
		return err
	}
	c, err := a.connect()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, closeTimeout)
	defer cancel()
	_, err = c.CloseSession(ctx, session)
	return err
}

// reaperArgs is the reaper's command line (without the program) for the
// session of the proxy pid, with the --server the proxy was given, if
// any; the rest of the login comes, as the proxy's did, from the
// environment it inherits or the saved login.
func reaperArgs(server string, pid int, session string) []string {
	var args []string
	if server != "" {
		args = append(args, "--server", server)
	}
	return append(args, reaperCommand, strconv.Itoa(pid), session)
}
