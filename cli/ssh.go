package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/engineerssh"
)

// ExitError is what a command returns when the command it ran on a device
// ended with a non-zero status. The program should exit with Code and
// print nothing more, as ssh does: the remote command has said what it
// had to say.
type ExitError struct {
	Code   int
	Device string
	Signal string // the signal that killed the remote command, or ""
}

func (e *ExitError) Error() string {
	if e.Signal != "" {
		return fmt.Sprintf("the command on %s was killed by SIG%s", e.Device, e.Signal)
	}
	return fmt.Sprintf("the command on %s exited with status %d", e.Device, e.Code)
}

// reachFlags gives a data-path command --fleet, --code and --reason.
func reachFlags(a *app, cmd *cobra.Command, o *reachOptions) {
	addFleetFlag(a, cmd, &o.fleet, false)
	cmd.Flags().Lookup("fleet").Usage = "the device's fleet (or name the device DEVICE.FLEET)"
	cmd.Flags().StringVar(&o.code, "code", "", "the support code the device's owner read out to you (asked for on the terminal if the device wants one)")
	cmd.Flags().StringVar(&o.reason, "reason", "", "why you connect: shown to the device's owner and kept with the session")
}

func newSSH(a *app) *cobra.Command {
	var o reachOptions
	var forceTTY, noTTY bool
	cmd := &cobra.Command{
		Use:   "ssh DEVICE [--code CODE] [-- COMMAND...]",
		Short: "Open a shell on a device, or run a command there",
		Long: `Open a shell on a device, or run COMMAND there, over an end-to-end SSH
session through the Porthole relay. DEVICE is a device name, or DEVICE.FLEET
(or FLEET/DEVICE) when several of your fleets have one of that name.

The session opens only while the device's owner allows it; if the device asks
for the support code its owner read out to you, give it with --code or type it
when asked. The session closes when you leave.

With a terminal and no COMMAND you get a terminal on the device (-T: none);
with COMMAND, its output and exit status, and standard input is passed to it
(-t: with a terminal). Put -- before a COMMAND that has options of its own.`,
		Example: `  porthole ssh kitchen-amp
  porthole ssh kitchen-amp.acme --code K4M2-9QXD-TT7P
  porthole ssh kitchen-amp -- journalctl -u amp --since today
  tar cz logs | porthole ssh kitchen-amp -- tar xz -C /tmp`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.device, o.loginSession = args[0], true
			return a.runSSH(cmd.Context(), o, strings.Join(args[1:], " "), forceTTY, noTTY)
		},
	}
	reachFlags(a, cmd, &o)
	cmd.Flags().BoolVarP(&forceTTY, "tty", "t", false, "give COMMAND a terminal (when standard input is one)")
	cmd.Flags().BoolVarP(&noTTY, "no-tty", "T", false, "no terminal, even for a shell")
	return cmd
}

// forwardedEnv are the variables passed to the device's shell, as
// OpenSSH's SendEnv does by default on Debian; the device takes TERM, LANG
// and LC_* only.
var forwardedEnv = []string{"LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "LC_COLLATE", "LC_NUMERIC", "LC_TIME"}

func (a *app) runSSH(ctx context.Context, o reachOptions, command string, forceTTY, noTTY bool) error {
	ctx, stop := withSignals(ctx)
	defer stop()
	l, client, err := a.reach(ctx, o)
	if err != nil {
		return err
	}
	defer l.close()
	start := engineerssh.Remote{Command: command}
	for _, k := range forwardedEnv {
		if v := a.io.Getenv(k); v != "" {
			start.Env = append(start.Env, [2]string{k, v}) // refused ones do not matter
		}
	}
	in := a.io.In
	fd := terminalFd(a.io.In)
	var con *console
	if fd >= 0 && !noTTY && (command == "" || forceTTY) {
		con = openConsole(fd, a.io.Out)
		defer con.close()
		w, h, err := con.size()
		if err != nil || w <= 0 || h <= 0 {
			w, h = 80, 24
		}
		termName := a.io.Getenv("TERM")
		if termName == "" {
			termName = "xterm"
		}
		start.Pty = &engineerssh.Pty{Term: termName, Cols: w, Rows: h,
			Modes: ssh.TerminalModes{ssh.ECHO: 1, ssh.TTY_OP_ISPEED: 38400, ssh.TTY_OP_OSPEED: 38400}}
		// Raw mode only once the login (and its code prompt) is over,
		// and undone before anything else is printed.
		restore, err := con.makeRaw()
		if err != nil {
			return fmt.Errorf("setting the terminal to raw mode: %w", err)
		}
		defer restore()
		in = con.rawInput(in)
	}
	sess, err := engineerssh.StartRemote(client, l.loginSession, start, a.io.Err)
	if errors.Is(err, engineerssh.ErrRemoteRefused) {
		return &userError{msg: refusedWords(l.device.Name, command), err: err}
	}
	if err != nil {
		return l.lost(ctx, err)
	}
	defer sess.Close()
	if con != nil {
		defer con.watchResize(start.Pty.Cols, start.Pty.Rows, func(w, h int) { _ = sess.WindowChange(w, h) })()
	}
	go func() {
		// This copy may outlive the command, blocked reading input that
		// nobody sends.
		io.CopyBuffer(sess, readerOnly{in}, make([]byte, streamBuf))
		sess.CloseWrite() // EOF reaches the command
	}()
	copied := make(chan error, 2)
	go func() { copied <- copyOutput(a.io.Out, sess) }()
	go func() { copied <- copyOutput(a.io.Err, sess.Stderr()) }()
	done := make(chan error, 1)
	go func() {
		err := waitRemote(sess, l.device.Name)
		for range 2 { // the output may still be arriving
			if cerr := <-copied; err == nil && cerr != nil {
				err = &userError{msg: fmt.Sprintf("cannot write the output of the command on %s: %v", l.device.Name, cerr), err: cerr}
			}
		}
		done <- err
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		l.close() // the channel ends once the connection is gone
		<-done
		return ctx.Err()
	}
	var exit *ExitError
	var uerr *userError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exit), errors.As(err, &uerr):
		return err
	}
	return l.lost(ctx, err)
}

// streamBuf is how much one read from the device's channel may take: a
// read takes all that has arrived, up to this, so larger reads mean fewer
// reads, window adjusts and writes than the session's 32 KiB copies make
// (agentssh's BenchmarkExecStream compares the two).
const streamBuf = 128 << 10

// readerOnly and writerOnly hide ReadFrom and WriteTo (an *os.File has
// both), which io.CopyBuffer would use with a 32 KiB buffer of their own.
type (
	readerOnly struct{ io.Reader }
	writerOnly struct{ io.Writer }
)

// copyOutput copies the command's output to w until the channel ends. If
// w fails, the rest is read and dropped, so that the command can finish
// and the session end, and w's error is returned. (A channel's reads fail
// only with EOF.)
func copyOutput(w io.Writer, r io.Reader) error {
	_, err := io.CopyBuffer(writerOnly{w}, r, make([]byte, streamBuf))
	if err != nil {
		io.Copy(io.Discard, r)
	}
	return err
}

// lost explains a connection to the device that ended before its command
// did: the session was closed (and why), or the network failed.
func (l *link) lost(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if w := l.why(ctx); w != "" {
		return &userError{msg: w, err: err}
	}
	if errors.Is(err, engineerssh.ErrNoExitStatus) {
		return &userError{msg: fmt.Sprintf("the connection to %s ended before the command did (no exit status came)", l.device.Name), err: err}
	}
	return &userError{msg: fmt.Sprintf("lost the connection to %s: %v", l.device.Name, err), err: err}
}
