package agentssh

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// ServeSFTP serves SFTP on in and out (a program's standard input and
// output) in the current working directory, as the current user, until
// in ends. The agent's hidden SFTP subcommand calls it: Config.SFTPCommand
// runs that subcommand as Config.RunAs. The caller records nothing: the
// agent watches the stream on its side of the pipe.
func ServeSFTP(in io.Reader, out io.WriteCloser) error {
	srv, err := sftp.NewServer(struct {
		io.Reader
		io.WriteCloser
	}{in, out})
	if err != nil {
		return fmt.Errorf("agentssh: sftp: %w", err)
	}
	if err := srv.Serve(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("agentssh: sftp: %w", err)
	}
	return nil
}

// job is what a session channel runs: a process, or SFTP served inside
// the agent.
type job interface {
	Done() <-chan struct{}
	Exit() Exit // valid once Done is closed
	Kill()      // at once: the recording can follow no more
	Stop()      // the channel ended: asked, then killed
	Signal(syscall.Signal)
}

var (
	_ job = (*process)(nil)
	_ job = (*inProcessSFTP)(nil)
)

// startSFTP serves the sftp subsystem: in the agent's process when it
// runs as the account, else through Config.SFTPCommand as the account.
func (sc *sessionChannel) startSFTP() error {
	tap := newSFTPTap(sc.c.acct.Dir, func(op SFTPOp) {
		sc.log.Debug("sftp", "op", op.Op, "path", op.Path, "target", op.Target, "bytes", op.Bytes, "err", op.Err)
		if r := sc.c.srv.cfg.Recorder; r != nil {
			r.SFTP(sc.c.session, op)
		}
	})
	command := sc.c.srv.cfg.SFTPCommand
	if len(command) == 0 {
		if sc.c.acct.cred != nil {
			return errors.New("no SFTPCommand to serve files as " + sc.c.acct.Name)
		}
		rwc := &sftpChannel{sc: sc, tap: tap}
		srv, err := sftp.NewServer(rwc, sftp.WithServerWorkingDirectory(sc.c.acct.Dir))
		if err != nil {
			return err
		}
		j := &inProcessSFTP{ch: sc.ch, done: make(chan struct{}), start: time.Now()}
		sc.job = j // before Serve reads: stopIfFull may kill it
		go func() {
			err := srv.Serve()
			tap.end()
			if err != nil && !errors.Is(err, io.EOF) {
				sc.log.Info("sftp ended", "err", err)
				j.status = 1
			}
			close(j.done)
		}()
		sc.log.Info("sftp started", "in_process", true)
		return nil
	}

	cmd := &exec.Cmd{Path: command[0], Args: command, Dir: sc.c.acct.Dir, Env: sc.c.acct.env()}
	inR, inW, err := os.Pipe()
	if err != nil {
		return err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	p, err := sc.c.startProcess(cmd, inR, outW, errW)
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		return err
	}
	sc.job = p
	sc.log.Info("sftp started", "command", command[0], "user", sc.c.acct.Name)
	p.copyOut(outR, func(r *os.File) {
		buf := make([]byte, 64<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				if sc.stopIfFull() {
					tap.end()
					return
				}
				tap.fromServer(buf[:n])
				if _, werr := sc.ch.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				tap.end()
				return
			}
		}
	})
	p.copyOut(errR, func(r *os.File) {
		// The server's complaints go to the agent's log, a few lines at
		// most, never to the engineer's SFTP stream.
		sc2 := bufio.NewScanner(r)
		for lines := 0; sc2.Scan(); lines++ {
			if lines < 20 {
				sc.log.Warn("sftp server says", "line", sc2.Text())
			}
		}
	})
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := sc.ch.Read(buf)
			if n > 0 {
				sc.c.activity()
				if sc.stopIfFull() {
					io.Copy(io.Discard, sc.ch)
					break
				}
				tap.fromClient(buf[:n])
				if _, werr := inW.Write(buf[:n]); werr != nil {
					io.Copy(io.Discard, sc.ch)
					break
				}
			}
			if err != nil {
				break
			}
		}
		inW.Close()
	}()
	go p.wait()
	return nil
}

// inProcessSFTP is SFTP served by a goroutine of the agent.
type inProcessSFTP struct {
	ch     ssh.Channel
	start  time.Time
	status int
	done   chan struct{}
}

func (j *inProcessSFTP) Done() <-chan struct{} { return j.done }
func (j *inProcessSFTP) Exit() Exit            { return Exit{Status: j.status, Took: time.Since(j.start)} }
func (j *inProcessSFTP) Kill()                 { j.ch.Close() } // Serve's next read fails
func (j *inProcessSFTP) Stop()                 { j.Kill() }
func (j *inProcessSFTP) Signal(syscall.Signal) {}

// sftpChannel is the session channel as pkg/sftp's server sees it, with
// the tap watching both ways.
type sftpChannel struct {
	sc  *sessionChannel
	tap *sftpTap
}

func (s *sftpChannel) Read(p []byte) (int, error) {
	n, err := s.sc.ch.Read(p)
	if n > 0 {
		s.sc.c.activity()
		if s.sc.stopIfFull() {
			return 0, errUnrecordable
		}
		s.tap.fromClient(p[:n])
	}
	return n, err
}

func (s *sftpChannel) Write(p []byte) (int, error) {
	if s.sc.stopIfFull() {
		return 0, errUnrecordable
	}
	s.tap.fromServer(p)
	return s.sc.ch.Write(p)
}

// errUnrecordable ends SFTP served in the agent when the session can no
// longer be recorded.
var errUnrecordable = errors.New("agentssh: the session can no longer be recorded")

func (s *sftpChannel) Close() error { return s.sc.ch.CloseWrite() }
