package agentssh

import (
	"errors"
	"log/slog"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/sessioncert"
)

// Config says who the device is, whom it lets in and what they may do. The
// fields marked required have no default; every other zero value works.
type Config struct {
	// HostKey is the device's key wrapped with its host certificate
	// (ssh.NewCertSigner), so that clients check it against the host CA
	// and never trust on first use. Required.
	HostKey ssh.Signer

	// UserCA is the server's user CA: engineers' session certificates
	// must be signed by it. Required.
	UserCA ssh.PublicKey

	// Fleet, Device and DeviceID say who this device is; a certificate
	// must name all three. Required.
	Fleet, Device, DeviceID string

	// SessionOpen reports whether session is open on this device now (a
	// verified open command arrived and the owner's consent holds). It is
	// asked at every login. Required: a server that cannot ask lets no
	// one in.
	SessionOpen func(session string) bool

	// SecondFactor, if set, is asked after an engineer's certificate has
	// been accepted. When it returns a non-nil check, the engineer must
	// also pass keyboard-interactive authentication: prompt is shown (for
	// example "Support code for dev1: ") and the answer is passed to
	// check, which accepts it by returning nil. The error's text is shown
	// to the engineer, so it should be a plain sentence ("wrong support
	// code; 3 tries left"). Comparing in constant time and counting wrong
	// tries are check's job. A nil check (or a nil SecondFactor) means no
	// second factor for that session.
	SecondFactor func(session string) (prompt string, check func(answer string) error)

	// AllowPorts are the local ports an engineer may reach with
	// direct-tcpip (on 127.0.0.1, localhost or ::1 only): the owner's
	// list. Empty: none.
	AllowPorts []int

	// SessionPorts returns the ports session was opened for (the ports
	// of its signed open command). A forward must be to a port in both
	// lists: the session narrows the owner's list and can never widen it.
	// Nil, or an empty answer: the session reaches no port.
	SessionPorts func(session string) []int

	// RunAs is the user that shells, commands and SFTP run as. Empty: the
	// agent's own user. Another user than the agent's needs the agent to
	// run as root, and SFTPCommand.
	RunAs string

	// SFTPCommand runs SFTP as RunAs: a program that speaks SFTP on its
	// standard input and output, usually the agent's own binary with a
	// hidden subcommand that calls ServeSFTP. It is the program's
	// absolute path, then its arguments, for example
	// {"/usr/bin/porthole-agent", "sftp-server"}. It runs with RunAs's
	// credentials in RunAs's home directory, with a clean environment.
	// Empty: SFTP is served inside the agent's process, as the agent's
	// user, which New allows only when RunAs is that user.
	SFTPCommand []string

	// Activity is called with the session each time engineer input
	// arrives (keystrokes, stdin, SFTP requests, forwarded bytes), for the
	// agent's idle timeout. It may be called very often, from many
	// goroutines, so it must be cheap (store a time in an atomic). Nil:
	// nothing is called.
	Activity func(session string)

	// Recorder learns what engineers do, for the owner's log and
	// replays. Nil: nothing is recorded.
	Recorder Recorder

	// Logger gets the server's own lines (logins, refusals, failures),
	// never the engineer's data. Nil: nothing is logged.
	Logger *slog.Logger

	// Now is the clock certificates are checked against. Nil: time.Now.
	Now func() time.Time

	// HandshakeTimeout bounds the SSH handshake and authentication of one
	// connection. Zero: 20 seconds.
	HandshakeTimeout time.Duration
}

// Recorder is told what happens in engineers' sessions, for the owner's
// append-only log and asciicast recordings. Its methods are called from
// the goroutines serving the connections, possibly at the same time, and
// must not block for long: a slow Recorder slows the engineer down. Byte
// slices passed to it are only valid during the call.
type Recorder interface {
	// Connected: an engineer passed authentication on session; who is
	// what their certificate says. Disconnected follows when the
	// connection ends: reason is "" when the engineer hung up, else why
	// the device ended it ("the session was closed").
	Connected(session string, who sessioncert.Claims)
	Disconnected(session string, reason string)

	// Process: a shell or a command starts on a session channel. The
	// returned ProcessRecorder, if not nil, gets the process's output,
	// input, terminal size changes and end.
	Process(session string, p Process) ProcessRecorder

	// SFTP: a file operation was done or refused.
	SFTP(session string, op SFTPOp)

	// Forward: a direct-tcpip forward ended or was refused.
	Forward(session string, f Forward)

	// Full says why nothing more may happen on session, in a sentence
	// for the engineer, or "" while everything can still be recorded. A
	// recorder that can no longer record the session (one of its caps
	// was reached, or its recording ended) says why, and the server
	// then fails closed: it refuses new shells, commands, SFTP and
	// forwards on the session, and ends terminals, forwards and the input
	// of running commands before they move another byte (a command
	// without a terminal may finish its output, counted but not kept). It is asked for each chunk of data moved, so it must
	// be cheap.
	Full(session string) string
}

// ProcessRecorder records one shell or command. Calls for one process
// never overlap; calls for different processes may.
type ProcessRecorder interface {
	// Output: what the terminal showed (with a PTY), or what the process
	// wrote to stdout and stderr (without one).
	Output(data []byte)
	// Input: what the engineer typed or sent to standard input.
	Input(data []byte)
	// Resize: the engineer's terminal changed size.
	Resize(cols, rows int)
	// Exited: the process ended; nothing follows.
	Exited(e Exit)
}

// Process describes a shell or command as it starts.
type Process struct {
	Channel int       // the channel's number in its connection, from 1
	Command string    // the command line; "" for a login shell
	User    string    // the user it runs as
	PTY     bool      // whether it has a terminal
	Term    string    // TERM, with a PTY
	Cols    int       // terminal width, with a PTY
	Rows    int       // terminal height, with a PTY
	Start   time.Time // when it started
}

// Exit is how a process ended.
type Exit struct {
	Status int           // exit status; -1 when killed by a signal
	Signal string        // the signal that killed it ("TERM", "KILL"), or ""
	Killed bool          // the session or channel ended and the agent killed it
	Took   time.Duration // how long it ran
}

// SFTPOp is one file operation. Op is one of "read", "write", "list",
// "remove", "rename", "mkdir", "rmdir", "setstat", "symlink", "link".
// Reads and writes are reported when the file is closed, with the bytes
// moved.
type SFTPOp struct {
	Op     string
	Path   string // absolute where the engineer's path was relative
	Target string // the new name (rename, link) or the link's target (symlink)
	Bytes  int64  // bytes read or written
	Err    string // "" when it succeeded, else why not ("permission denied")
}

// Forward is one direct-tcpip forward.
type Forward struct {
	Target   string        // host:port the engineer asked for
	Refused  string        // why it was refused, or ""
	In, Out  int64         // bytes from the engineer to the target, and back
	Start    time.Time     // when it was asked for
	Duration time.Duration // how long it was open
}

// ErrConfig is wrapped by New's errors about a Config that cannot work.
var ErrConfig = errors.New("agentssh: invalid configuration")

func (c *Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Config) handshakeTimeout() time.Duration {
	if c.HandshakeTimeout > 0 {
		return c.HandshakeTimeout
	}
	return 20 * time.Second
}

func (c *Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}
