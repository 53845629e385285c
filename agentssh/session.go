package agentssh

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/crypto/ssh"
)

// Limits on what a client may ask of one session channel.
const (
	maxEnv      = 64
	maxEnvValue = 4096
	maxCommand  = 256 << 10
)

// sessionChannel serves one "session" channel: a shell, a command or the
// SFTP subsystem, with the requests that prepare it.
type sessionChannel struct {
	c   *conn
	id  int
	ch  ssh.Channel
	log *slog.Logger

	env  []string // the client's allowed variables, "NAME=value"
	term string   // TERM from an env request
	pty  *ptyRequest

	job  job      // nil until a shell, command or subsystem starts
	ptmx *os.File // the terminal's master side, with a PTY

	recMu sync.Mutex      // serializes calls to rec
	rec   ProcessRecorder // nil: nothing recorded

	// fullWhy, once set, is why the job was ended because the session
	// can no longer be recorded (conn.full); the engineer is told.
	fullWhy atomic.Pointer[string]
	// refusedFull is set when a start was refused for that reason: the
	// channel then closes, since nothing can ever start on it.
	refusedFull bool
}

// ptyRequest is the payload of "pty-req" (RFC 4254 6.2).
type ptyRequest struct {
	Term          string
	Cols, Rows    uint32
	Width, Height uint32
	Modes         string
}

// windowChange is the payload of "window-change" (RFC 4254 6.7).
type windowChange struct {
	Cols, Rows    uint32
	Width, Height uint32
}

func (c *conn) serveSession(ctx context.Context, newCh ssh.NewChannel, id int) {
	ch, reqs, err := newCh.Accept()
	if err != nil {
		return
	}
	c.serveSessionChannel(ctx, ch, reqs, id)
}

// serveSessionChannel serves a session channel, whichever end opened it.
func (c *conn) serveSessionChannel(ctx context.Context, ch ssh.Channel, reqs <-chan *ssh.Request, id int) {
	sc := &sessionChannel{c: c, id: id, ch: ch, log: c.log.With("channel", id)}
	defer func() {
		ch.Close()
		go ssh.DiscardRequests(reqs)
	}()
	var done <-chan struct{} // the process's, once one runs
	for {
		select {
		case req, ok := <-reqs:
			if !ok {
				// The engineer closed the channel (or the connection
				// went): nothing of it may go on running.
				sc.end(true, "")
				return
			}
			if !strings.HasPrefix(req.Type, "keepalive@") {
				c.activity() // a keep-alive is not the engineer at work
			}
			ok = sc.request(req)
			if req.WantReply {
				req.Reply(ok, nil)
			}
			if sc.refusedFull {
				return
			}
			if sc.job != nil && done == nil {
				done = sc.job.Done()
			}
		case <-done:
			sc.end(false, "")
			return
		case <-ctx.Done():
			sc.end(true, closedReason(ctx))
			return
		}
	}
}

// closedReason says why the session ended, for the engineer.
func closedReason(ctx context.Context) string {
	if err := context.Cause(ctx); err != nil && err != context.Canceled {
		return err.Error()
	}
	return "the session was closed"
}

// end finishes the channel: kills the process if asked, waits for it and
// tells the engineer how it ended (and why, when notice is set).
func (sc *sessionChannel) end(kill bool, notice string) {
	j := sc.job
	if j == nil {
		return
	}
	if kill {
		j.Stop()
	}
	<-j.Done()
	e := j.Exit()
	sc.recordf(func(r ProcessRecorder) { r.Exited(e) })
	if why := sc.fullWhy.Load(); why != nil && notice == "" {
		notice = "ended: " + *why
	}
	if notice != "" {
		fmt.Fprintf(sc.ch.Stderr(), "\r\nporthole: %s\r\n", notice)
	}
	sc.log.Info("ended", "status", e.Status, "signal", e.Signal, "killed", e.Killed, "took", e.Took.Round(time.Millisecond))
	sc.ch.CloseWrite()
	if e.Signal != "" {
		sc.ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
			Signal     string
			CoreDumped bool
			Message    string
			Lang       string
		}{Signal: e.Signal}))
	} else {
		sc.ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(e.Status)}))
	}
}

// request handles one channel request and says whether it succeeded.
func (sc *sessionChannel) request(req *ssh.Request) bool {
	switch req.Type {
	case "pty-req":
		var p ptyRequest
		if sc.job != nil || sc.pty != nil || ssh.Unmarshal(req.Payload, &p) != nil {
			return false
		}
		p.Cols, p.Rows = clampSize(p.Cols), clampSize(p.Rows)
		sc.pty = &p
		return true
	case "window-change":
		var w windowChange
		if sc.pty == nil || ssh.Unmarshal(req.Payload, &w) != nil {
			return false
		}
		sc.pty.Cols, sc.pty.Rows, sc.pty.Width, sc.pty.Height = clampSize(w.Cols), clampSize(w.Rows), w.Width, w.Height
		if sc.ptmx != nil {
			// The terminal may be closing as the process ends.
			if p, ok := sc.job.(*process); ok {
				p.withOpenFiles(func() { pty.Setsize(sc.ptmx, sc.winsize()) })
			}
			sc.recordf(func(r ProcessRecorder) { r.Resize(int(sc.pty.Cols), int(sc.pty.Rows)) })
		}
		return true
	case "env":
		var kv struct{ Name, Value string }
		if sc.job != nil || ssh.Unmarshal(req.Payload, &kv) != nil || !allowedEnv(kv.Name, kv.Value) || len(sc.env) >= maxEnv {
			return false // ignored, as sshd ignores what AcceptEnv does not name
		}
		if kv.Name == "TERM" {
			sc.term = kv.Value
		} else {
			sc.env = append(sc.env, kv.Name+"="+kv.Value)
		}
		return true
	case "shell", "exec":
		var command string
		if req.Type == "exec" {
			var p struct{ Command string }
			if ssh.Unmarshal(req.Payload, &p) != nil || p.Command == "" || len(p.Command) > maxCommand {
				return false
			}
			command = p.Command
		}
		if sc.job != nil {
			return false
		}
		if sc.refuseFull(describe(command)) {
			return false
		}
		if err := sc.startShell(command); err != nil {
			sc.log.Warn("cannot start", "command", command, "err", err)
			fmt.Fprintf(sc.ch.Stderr(), "porthole: cannot start %s: %v\r\n", describe(command), err)
			return false
		}
		return true
	case "subsystem":
		var p struct{ Name string }
		if sc.job != nil || ssh.Unmarshal(req.Payload, &p) != nil {
			return false
		}
		if p.Name != "sftp" {
			sc.log.Info("refused subsystem", "name", p.Name)
			return false
		}
		if sc.refuseFull("SFTP") {
			return false
		}
		if err := sc.startSFTP(); err != nil {
			sc.log.Warn("cannot start sftp", "err", err)
			fmt.Fprintf(sc.ch.Stderr(), "porthole: cannot start SFTP: %v\n", err)
			return false
		}
		return true
	case "signal":
		var p struct{ Signal string }
		if sc.job == nil || ssh.Unmarshal(req.Payload, &p) != nil {
			return false
		}
		sig, ok := signalByName(p.Signal)
		if !ok {
			return false
		}
		sc.job.Signal(sig)
		return true
	default:
		// x11-req, auth-agent-req@openssh.com, keepalive@openssh.com, ...
		return false
	}
}

// refuseFull refuses to start what (a shell, the command, SFTP) when the
// session can no longer be recorded, telling the engineer why.
func (sc *sessionChannel) refuseFull(what string) bool {
	why := sc.c.full()
	if why == "" {
		return false
	}
	sc.log.Warn("refused to start: the session can no longer be recorded", "what", what, "why", why)
	fmt.Fprintf(sc.ch.Stderr(), "porthole: refused to start %s: %s\r\n", what, why)
	sc.refusedFull = true
	return true
}

// stopIfFull ends the channel's job, once, when the session can no longer
// be recorded, and reports whether it can not: then the data at hand must
// not move.
func (sc *sessionChannel) stopIfFull() bool {
	why := sc.c.full()
	if why == "" {
		return false
	}
	if sc.fullWhy.CompareAndSwap(nil, &why) {
		sc.log.Warn("ending the process: the session can no longer be recorded", "why", why)
		sc.job.Kill()
	}
	return true
}

func describe(command string) string {
	if command == "" {
		return "a shell"
	}
	return "the command"
}

func clampSize(n uint32) uint32 {
	return min(n, 10000) // a Winsize field is 16 bits; no terminal is this large
}

// allowedEnv is the allow-list for env requests: the terminal and the
// locale, nothing that changes how programs load or behave (LD_*, PATH).
func allowedEnv(name, value string) bool {
	if len(value) > maxEnvValue || strings.ContainsRune(value, 0) {
		return false
	}
	switch {
	case name == "TERM", name == "LANG":
		return true
	case strings.HasPrefix(name, "LC_") && len(name) > 3:
		for _, r := range name[3:] {
			if (r < 'A' || r > 'Z') && r != '_' {
				return false
			}
		}
		return true
	}
	return false
}

func (sc *sessionChannel) winsize() *pty.Winsize {
	p := sc.pty
	return &pty.Winsize{Cols: uint16(p.Cols), Rows: uint16(p.Rows), X: uint16(min(p.Width, 0xffff)), Y: uint16(min(p.Height, 0xffff))}
}

// environ is the process's environment.
func (sc *sessionChannel) environ() []string {
	env := sc.c.acct.env()
	term := sc.term
	if sc.pty != nil && sc.pty.Term != "" {
		term = sc.pty.Term
	}
	if term == "" {
		term = "dumb"
		if sc.pty != nil {
			term = "xterm"
		}
	}
	env = append(env, "TERM="+term)
	env = append(env, sc.c.sshdEnv...)
	return append(env, sc.env...)
}

// startShell starts the account's login shell, or command through it.
func (sc *sessionChannel) startShell(command string) error {
	acct := sc.c.acct
	args := []string{"-" + filepath.Base(acct.Shell)} // a login shell, as sshd starts it
	if command != "" {
		args = []string{filepath.Base(acct.Shell), "-c", command}
	}
	cmd := &exec.Cmd{Path: acct.Shell, Args: args, Dir: acct.Dir, Env: sc.environ()}
	info := Process{Channel: sc.id, Command: command, User: acct.Name, PTY: sc.pty != nil, Start: time.Now()}
	if sc.pty != nil {
		info.Term, info.Cols, info.Rows = envValue(cmd.Env, "TERM"), int(sc.pty.Cols), int(sc.pty.Rows)
		return sc.startWithPTY(cmd, info)
	}
	return sc.startWithPipes(cmd, info)
}

func envValue(env []string, name string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

func (sc *sessionChannel) startWithPTY(cmd *exec.Cmd, info Process) error {
	ptmx, tty, err := pty.Open()
	if err != nil {
		return fmt.Errorf("no terminal: %w", err)
	}
	if cred := sc.c.acct.cred; cred != nil {
		// The terminal belongs to its user, as sshd makes it, so that
		// programs that open it by name (tty, mesg, sudo) can.
		os.Chown(tty.Name(), int(cred.Uid), -1)
		os.Chmod(tty.Name(), 0o620)
	}
	if err := pty.Setsize(ptmx, sc.winsize()); err != nil {
		ptmx.Close()
		tty.Close()
		return err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.Env = append(cmd.Env, "SSH_TTY="+tty.Name()) // as sshd sets it
	cmd.SysProcAttr = &syscall.SysProcAttr{Setctty: true, Ctty: 0}
	p, err := sc.c.startProcess(cmd, tty)
	if err != nil {
		ptmx.Close()
		return err
	}
	sc.job, sc.ptmx = p, ptmx
	sc.record(info)
	sc.log.Info("shell started", "command", info.Command, "pty", true, "term", info.Term)
	p.copyOut(ptmx, func(r *os.File) { sc.copyOutput(sc.ch, r, smallBuf) })
	// Input goes on until the channel closes; the terminal's end is
	// closed by wait, which ends this copy too.
	go sc.copyInput(ptmx, smallBuf)
	go p.wait()
	return nil
}

func (sc *sessionChannel) startWithPipes(cmd *exec.Cmd, info Process) error {
	var files []*os.File
	pipe := func() (r, w *os.File, err error) {
		r, w, err = newPipe()
		if err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	inR, inW, err1 := pipe()
	outR, outW, err2 := pipe()
	errR, errW, err3 := pipe()
	if err1 != nil || err2 != nil || err3 != nil {
		for _, f := range files {
			f.Close()
		}
		return fmt.Errorf("no pipes: %v", firstErr(err1, err2, err3))
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
	sc.record(info)
	sc.log.Info("command started", "command", info.Command)
	p.copyOut(outR, func(r *os.File) { sc.copyOutput(sc.ch, r, streamBuf) })
	p.copyOut(errR, func(r *os.File) { sc.copyOutput(sc.ch.Stderr(), r, smallBuf) })
	go func() {
		sc.copyInput(inW, streamBuf)
		inW.Close() // EOF from the engineer is EOF on the process's stdin
	}()
	go p.wait()
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// record asks the Recorder for the process's recorder.
func (sc *sessionChannel) record(info Process) {
	if r := sc.c.srv.cfg.Recorder; r != nil {
		sc.rec = r.Process(sc.c.session, info)
	}
}

// recordf calls f with the process's recorder, if any, one call at a time.
func (sc *sessionChannel) recordf(f func(ProcessRecorder)) {
	if sc.rec == nil {
		return
	}
	sc.recMu.Lock()
	defer sc.recMu.Unlock()
	f(sc.rec)
}

// copyInput copies the engineer's input to the process until the channel
// ends or sends EOF, up to size bytes at a time.
func (sc *sessionChannel) copyInput(w io.Writer, size int) {
	buf := make([]byte, size)
	for {
		n, err := sc.ch.Read(buf)
		if n > 0 {
			sc.c.activity()
			sc.recordf(func(r ProcessRecorder) { r.Input(buf[:n]) })
			if sc.stopIfFull() {
				io.Copy(io.Discard, sc.ch)
				return
			}
			if _, werr := w.Write(buf[:n]); werr != nil {
				// The process is gone; keep reading so the channel's
				// window stays open until it closes.
				io.Copy(io.Discard, sc.ch)
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// copyOutput copies the process's output to the engineer until EOF (or
// EIO: a terminal whose last user has gone), up to size bytes at a time.
func (sc *sessionChannel) copyOutput(w io.Writer, r io.Reader, size int) {
	buf := make([]byte, size)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			sc.recordf(func(r ProcessRecorder) { r.Output(buf[:n]) })
			// A terminal past a cap is ended: what is typed there next
			// would go unrecorded. A command without one runs on (its
			// command line is recorded; its output past the cap is
			// counted, not kept, as SFTP's file contents are), so that
			// `ssh dev cat big.log` works; its input, which could
			// carry new commands, is cut in copyInput.
			if sc.pty != nil && sc.stopIfFull() {
				return // what the recording may not have, the engineer does not get
			}
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
