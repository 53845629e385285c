package cli

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/ssh"
)

// remoteStart is what a session channel asks of the device before its
// command runs.
type remoteStart struct {
	env     [][2]string // name, value: passed as "env" requests
	pty     *remotePty  // a terminal, or nil
	command string      // "exec"; "" asks for a shell
}

// remotePty is a "pty-req" (RFC 4254 §6.2).
type remotePty struct {
	term  string
	w, h  int
	modes ssh.TerminalModes
}

// remoteSession is a session channel on the device whose command runs.
// Unlike x/crypto's Session, which waits for the reply to each request in
// turn (a round trip over two links each), startRemote sends them as
// OpenSSH does: the terminal and the environment without asking for a
// reply, then the shell or command asking for one, all at once. The
// device's SSH server takes a channel's requests in order.
type remoteSession struct {
	ssh.Channel
	done   chan struct{} // closed once the channel's requests have ended
	status int           // -1 until an exit-status came
	signal string        // from exit-signal
}

// errRemoteRefused is the device's "no" to the shell or command; its SSH
// server says why on the channel's standard error.
var errRemoteRefused = errors.New("the device refused to start it")

// startRemote starts r on a session channel: the one the device opened
// at login, if offered gives it, else one opened on client. A refusal is
// errRemoteRefused, once what the device said about it on the channel's
// standard error has been copied to stderr.
func startRemote(client ssh.Conn, offered <-chan ssh.NewChannel, r remoteStart, stderr io.Writer) (*remoteSession, error) {
	ch, reqs, err := sessionChannel(client, offered)
	if err != nil {
		return nil, err
	}
	s := &remoteSession{Channel: ch, done: make(chan struct{}), status: -1}
	go s.watch(reqs)
	if p := r.pty; p != nil {
		if _, err := ch.SendRequest("pty-req", false, ptyPayload(p)); err != nil {
			ch.Close()
			return nil, err
		}
	}
	for _, kv := range r.env {
		if _, err := ch.SendRequest("env", false, ssh.Marshal(struct{ Name, Value string }{kv[0], kv[1]})); err != nil {
			ch.Close()
			return nil, err
		}
	}
	kind, payload := "shell", []byte(nil)
	if r.command != "" {
		kind, payload = "exec", ssh.Marshal(struct{ Command string }{r.command})
	}
	ok, err := ch.SendRequest(kind, true, payload)
	if err != nil {
		ch.Close()
		return nil, err
	}
	if !ok {
		// The device's words came before its reply; the channel's
		// streams end once it has answered the close.
		ch.Close()
		_, _ = io.Copy(stderr, ch.Stderr())
		return nil, errRemoteRefused
	}
	return s, nil
}

// sessionChannel takes the session channel the device opened at login, if
// offered gives one, or opens one on client.
func sessionChannel(client ssh.Conn, offered <-chan ssh.NewChannel) (ssh.Channel, <-chan *ssh.Request, error) {
	if offered != nil {
		if nc, ok := <-offered; ok {
			return nc.Accept()
		}
	}
	return client.OpenChannel("session", nil)
}

// ptyPayload is p as RFC 4254 §6.2 spells it, as x/crypto's
// Session.RequestPty does.
func ptyPayload(p *remotePty) []byte {
	var modes []byte
	for k, v := range p.modes {
		modes = append(modes, ssh.Marshal(struct {
			Key byte
			Val uint32
		}{k, v})...)
	}
	modes = append(modes, 0) // TTY_OP_END
	return ssh.Marshal(struct {
		Term          string
		Columns, Rows uint32
		Width, Height uint32
		Modelist      string
	}{p.term, uint32(p.w), uint32(p.h), uint32(p.w * 8), uint32(p.h * 8), string(modes)})
}

// windowChange tells the device the terminal's new size.
func (s *remoteSession) windowChange(w, h int) {
	_, _ = s.SendRequest("window-change", false, ssh.Marshal(struct{ Cols, Rows, Width, Height uint32 }{uint32(w), uint32(h), uint32(w * 8), uint32(h * 8)}))
}

// watch reads the channel's requests from the device until it closes the
// channel: its command's exit status or signal.
func (s *remoteSession) watch(reqs <-chan *ssh.Request) {
	defer close(s.done)
	for req := range reqs {
		switch req.Type {
		case "exit-status":
			if len(req.Payload) >= 4 {
				s.status = int(binary.BigEndian.Uint32(req.Payload))
			}
		case "exit-signal":
			var sig struct {
				Signal     string
				CoreDumped bool
				Message    string
				Lang       string
			}
			if ssh.Unmarshal(req.Payload, &sig) == nil {
				s.signal = sig.Signal
			}
		default:
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
		}
	}
}

// errNoExitStatus: the channel closed without an exit status or signal.
var errNoExitStatus = errors.New("the channel closed without an exit status")

// wait waits until the device has closed the channel and says how its
// command ended: nil for status 0, an *ExitError for device (a status or
// a signal), errNoExitStatus when it said neither.
func (s *remoteSession) wait(device string) error {
	<-s.done
	code := s.status
	switch {
	case code == 0:
		return nil
	case code == -1 && s.signal == "":
		return errNoExitStatus
	case code == -1:
		code = 128 + signalNumber(s.signal)
	}
	return &ExitError{Code: code, Device: device, Signal: s.signal}
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
