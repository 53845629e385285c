package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/creack/pty"
)

// EchoResult is the round trip of one keystroke over an open interactive
// session, for one tool.
type EchoResult struct {
	Tool string
	RTT  Durations
}

// echoRemote is what each interactive session runs on the device: the
// remote terminal in raw mode without echo, a marker, then cat, so that a
// byte written comes back once, from the far end.
const echoRemote = "stty raw -echo; echo BENCH-READY; exec cat"

// echoWarmup round trips are made and not counted, per tool.
const echoWarmup = 10

// echo opens one interactive session per tool, each client on a terminal
// of its own (a pty, so the client is in raw mode as for a person), and
// then, n times, writes one byte to each in turn and times its return.
func echo(ctx context.Context, b *benchRun, n int) ([]EchoResult, error) {
	tools := b.clientTools()
	b.log.Info("interactive echo", "round trips", n)
	sessions := make([]*ptySession, len(tools))
	defer func() {
		for _, s := range sessions {
			s.close()
		}
	}()
	for i, t := range tools {
		s, err := openEcho(t)
		if err != nil {
			return nil, err
		}
		sessions[i] = s
	}
	results := make([]EchoResult, len(tools))
	for i, t := range tools {
		results[i].Tool = t.name
	}
	for k := range echoWarmup + n {
		c := byte('a' + k%26)
		for j := range tools {
			i := (j + k) % len(tools)
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			rtt, err := sessions[i].echo(c, 5*time.Second)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", tools[i].name, err)
			}
			if k >= echoWarmup {
				results[i].RTT = append(results[i].RTT, rtt)
			}
		}
	}
	return results, nil
}

// openEcho starts an interactive session with t, running echoRemote on
// the device, and waits until it is ready.
func openEcho(t clientTool) (*ptySession, error) {
	s, err := startPTY(t.cmd("-t", echoRemote))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.name, err)
	}
	if err := s.waitFor([]byte("BENCH-READY"), 30*time.Second); err != nil {
		s.close()
		return nil, fmt.Errorf("%s: %w", t.name, err)
	}
	return s, nil
}

// ptySession is a client command running on a pseudo-terminal.
type ptySession struct {
	cmd    *exec.Cmd
	master *os.File
	in     chan []byte // what the client printed, chunk by chunk
	seen   []byte      // read and not yet matched
}

// startPTY starts cmd with a new pseudo-terminal as its standard input,
// output and error, and its controlling terminal.
func startPTY(cmd *exec.Cmd) (*ptySession, error) {
	master, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		return nil, err
	}
	s := &ptySession{cmd: cmd, master: master, in: make(chan []byte, 64)}
	go func() {
		defer close(s.in)
		for {
			buf := make([]byte, 4096)
			n, err := master.Read(buf)
			if n > 0 {
				s.in <- buf[:n]
			}
			if err != nil {
				return
			}
		}
	}()
	return s, nil
}

// waitFor reads until marker has been printed.
func (s *ptySession) waitFor(marker []byte, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for !bytes.Contains(s.seen, marker) {
		select {
		case chunk, ok := <-s.in:
			if !ok {
				return fmt.Errorf("the client exited before printing %q; it printed %q", marker, s.seen)
			}
			s.seen = append(s.seen, chunk...)
		case <-t.C:
			return fmt.Errorf("no %q within %v; the client printed %q", marker, timeout, s.seen)
		}
	}
	s.seen = nil
	return nil
}

// echo writes c and times until it is read back.
func (s *ptySession) echo(c byte, timeout time.Duration) (time.Duration, error) {
	s.seen = nil
	t := time.NewTimer(timeout)
	defer t.Stop()
	start := time.Now()
	if _, err := s.master.Write([]byte{c}); err != nil {
		return 0, err
	}
	for bytes.IndexByte(s.seen, c) < 0 {
		select {
		case chunk, ok := <-s.in:
			if !ok {
				return 0, errors.New("the session ended")
			}
			s.seen = append(s.seen, chunk...)
		case <-t.C:
			return 0, fmt.Errorf("%q did not come back within %v", c, timeout)
		}
	}
	return time.Since(start), nil
}

// close hangs up the terminal, as closing a terminal window does (SIGHUP
// to the client, then the master closed), and waits for the client to exit
// (killing it after 10 s). The SIGHUP is sent here because closing the
// master alone does not hang up while the reader goroutine is blocked in
// read(2) on it: the descriptor stays open until that read returns.
func (s *ptySession) close() { s.hangUp() }

// hangUp is close, reporting whether the client had to be killed.
func (s *ptySession) hangUp() (killed bool) {
	if s == nil {
		return false
	}
	_ = s.cmd.Process.Signal(syscall.SIGHUP)
	s.master.Close()
	done := make(chan struct{})
	go func() {
		_ = s.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
		return false
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
		return true
	}
}
