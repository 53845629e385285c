package engineerssh

import (
	"encoding/binary"
	"errors"
	"io"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/sshalgo"
)

// Remote is what a session channel asks of the device before its command
// runs.
type Remote struct {
	Env     [][2]string // name, value: passed as "env" requests
	Pty     *Pty        // a terminal, or nil
	Command string      // "exec"; "" asks for a shell
}

// Pty is a "pty-req" (RFC 4254 §6.2).
type Pty struct {
	Term       string
	Cols, Rows int
	Modes      ssh.TerminalModes
}

// RemoteSession is a session channel on the device whose command runs.
// Unlike x/crypto's Session, which waits for the reply to each request in
// turn (a round trip over two links each), StartRemote sends them as
// OpenSSH does: the terminal and the environment without asking for a
// reply, then the shell or command asking for one, all at once. The
// device's SSH server takes a channel's requests in order.
type RemoteSession struct {
	ssh.Channel
	done   chan struct{} // closed once the channel's requests have ended
	status int           // -1 until an exit-status came
	signal string        // from exit-signal
}

// ErrRemoteRefused is the device's "no" to the shell or command; its SSH
// server says why on the channel's standard error.
var ErrRemoteRefused = errors.New("engineerssh: the device refused to start it")

// ErrNoExitStatus: the channel closed without an exit status or signal.
var ErrNoExitStatus = errors.New("engineerssh: the channel closed without an exit status")

// StartRemote starts r on a session channel: the one the device opened
// at login, if offered gives it (HoldLoginSession), else one opened on
// client. A refusal is ErrRemoteRefused, once what the device said about
// it on the channel's standard error has been copied to stderr.
func StartRemote(client ssh.Conn, offered <-chan ssh.NewChannel, r Remote, stderr io.Writer) (*RemoteSession, error) {
	ch, reqs, err := sessionChannel(client, offered)
	if err != nil {
		return nil, err
	}
	s := &RemoteSession{Channel: ch, done: make(chan struct{}), status: -1}
	go s.watch(reqs)
	if p := r.Pty; p != nil {
		if _, err := ch.SendRequest("pty-req", false, ptyPayload(p)); err != nil {
			ch.Close()
			return nil, err
		}
	}
	for _, kv := range r.Env {
		if _, err := ch.SendRequest("env", false, ssh.Marshal(struct{ Name, Value string }{kv[0], kv[1]})); err != nil {
			ch.Close()
			return nil, err
		}
	}
	kind, payload := "shell", []byte(nil)
	if r.Command != "" {
		kind, payload = "exec", ssh.Marshal(struct{ Command string }{r.Command})
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
		return nil, ErrRemoteRefused
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
func ptyPayload(p *Pty) []byte {
	var modes []byte
	for k, v := range p.Modes {
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
	}{p.Term, uint32(p.Cols), uint32(p.Rows), uint32(p.Cols * 8), uint32(p.Rows * 8), string(modes)})
}

// WindowChange tells the device the terminal's new size.
func (s *RemoteSession) WindowChange(cols, rows int) error {
	_, err := s.SendRequest("window-change", false, ssh.Marshal(struct{ Cols, Rows, Width, Height uint32 }{uint32(cols), uint32(rows), uint32(cols * 8), uint32(rows * 8)}))
	return err
}

// watch reads the channel's requests from the device until it closes the
// channel: its command's exit status or signal.
func (s *RemoteSession) watch(reqs <-chan *ssh.Request) {
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

// Wait waits until the device has closed the channel and says how its
// command ended: its exit status (-1 if none came) and the signal that
// killed it (as RFC 4254 §6.10 names it, or ""); ErrNoExitStatus when it
// said neither.
func (s *RemoteSession) Wait() (status int, signal string, err error) {
	<-s.done
	if s.status == -1 && s.signal == "" {
		return -1, "", ErrNoExitStatus
	}
	return s.status, s.signal, nil
}

// HoldLoginSession takes the first login session the server opens
// (sshalgo.LoginSessionChannel) out of chans, for StartRemote, and passes
// the other channels on to rest. A second one is refused.
func HoldLoginSession(chans <-chan ssh.NewChannel) (login <-chan ssh.NewChannel, rest <-chan ssh.NewChannel) {
	held, others := make(chan ssh.NewChannel, 1), make(chan ssh.NewChannel)
	go func() {
		defer close(others)
		defer close(held)
		taken := false
		for nc := range chans {
			switch {
			case nc.ChannelType() != sshalgo.LoginSessionChannel:
				others <- nc
			case taken:
				_ = nc.Reject(ssh.Prohibited, "porthole takes one login session")
			default:
				taken = true
				held <- nc
			}
		}
	}()
	return held, others
}
