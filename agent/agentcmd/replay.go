package agentcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/porthole/porthole/agent/agentrecord"
	"golang.org/x/term"
)

func newReplay(stdio IO) *Command {
	var stateDir string
	var speed float64
	var idle time.Duration
	var withExec bool
	cmd := &Command{
		Use:   "replay ID [--speed N] [--idle-limit D] [--exec] [--state DIR]",
		Short: "Play back a recorded support session in this terminal",
		Long: `replay plays back what an engineer's terminal showed during a support
session, at the pace it happened: ID is a session id from "porthole-agent
sessions" (or enough of its start to tell it apart). A session with several
terminals plays them one after the other, in the order they were opened.
--speed 2 plays twice as fast; pauses longer than --idle-limit are cut short
to it, as asciinema does (0 keeps them as they were).

Commands run without a terminal (porthole ssh dev1 -- COMMAND, rsync) are
played too with --exec. A session without any terminal or output (file
copies, port forwards) prints its events instead: every connection, command
with its exit status, file operation and forward.

Which recording is playing goes to standard error; the session itself to
standard output. Each recording is an asciicast v2 file in the state
directory's ` + agentrecord.SessionsDir + ` folder, which "asciinema play" also plays.`,
		Example: `  porthole-agent replay ses_2Yx9
  porthole-agent replay ses_2Yx9 --speed 4 --idle-limit 1s`,
		args: exactArgs(1),
	}
	cmd.Run = func(ctx context.Context, args []string) error {
		if speed <= 0 {
			return errors.New("--speed must be more than 0 (2 plays twice as fast, 0.5 half as fast)")
		}
		s, err := agentrecord.FindSession(stateDir, args[0])
		if err != nil {
			return err
		}
		opts := agentrecord.ReplayOptions{Speed: speed, IdleLimit: idle, Exec: withExec, Notes: stdio.Err}
		if idle <= 0 {
			opts.IdleLimit = -1 // as recorded
		}
		err = agentrecord.Replay(ctx, stdio.Out, s, opts)
		if isTerminal(stdio.Out) {
			// What the session left set (colours, a hidden cursor)
			// should not stay in the owner's terminal.
			io.WriteString(stdio.Out, "\x1b[0m\x1b[?25h\r\n")
		}
		if err != nil && ctx.Err() != nil {
			return nil // interrupted by the owner
		}
		if err != nil {
			return fmt.Errorf("replaying %s: %w", s.Session, err)
		}
		return nil
	}
	stateFlag(cmd, &stateDir)
	f := cmd.Flags
	f.Float64Var(&speed, "speed", 1, "play N times as fast")
	f.DurationVar(&idle, "idle-limit", agentrecord.DefaultIdleLimit, "cut longer pauses to this (0: as recorded)")
	f.BoolVar(&withExec, "exec", false, "also play the output of commands run without a terminal")
	return cmd
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
