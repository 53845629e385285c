package engineerssh

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/sshalgo"
)

// fakeDevice is an SSH server on one end of a pipe that serves one
// session channel as the test says: it notes the channel's type and the
// requests it got (type and whether a reply was asked), answers the
// shell or command with ok, says refused on stderr when not, and ends
// with end (exit-status, exit-signal, or nothing).
type fakeDevice struct {
	offerLogin bool
	ok         bool
	end        func(ch ssh.Channel)
	got        chan []string // the channel's type, then each request
}

func (d *fakeDevice) serve(t *testing.T, nc net.Conn) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	cfg := &ssh.ServerConfig{NoClientAuth: true}
	cfg.AddHostKey(signer)
	conn, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		t.Errorf("server handshake: %v", err)
		return
	}
	defer conn.Close()
	go ssh.DiscardRequests(reqs)
	var ch ssh.Channel
	var creqs <-chan *ssh.Request
	kind := sshalgo.LoginSessionChannel
	if d.offerLogin {
		ch, creqs, err = conn.OpenChannel(sshalgo.LoginSessionChannel, nil)
	} else {
		nc := <-chans
		kind = nc.ChannelType()
		ch, creqs, err = nc.Accept()
	}
	if err != nil {
		t.Errorf("session channel: %v", err)
		return
	}
	got := []string{kind}
	for req := range creqs {
		got = append(got, req.Type+map[bool]string{true: "?", false: ""}[req.WantReply])
		if req.Type == "shell" || req.Type == "exec" {
			if !d.ok {
				_, _ = ch.Stderr().Write([]byte("no shells today\n"))
			}
			_ = req.Reply(d.ok, nil)
			if d.ok {
				_, _ = ch.Write([]byte("$ "))
				d.end(ch)
			}
			_ = ch.Close()
			break
		}
	}
	d.got <- got
}

// tcpPair is two ends of a loopback TCP connection (a net.Pipe has no
// buffer, and both ends of an SSH handshake write first).
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

func exitStatus(code uint32) func(ssh.Channel) {
	return func(ch ssh.Channel) {
		_, _ = ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, code))
	}
}

// TestStartRemote: the terminal's and the environment's requests go
// without asking for a reply and the shell's asks for one, all on the
// session channel the device opened at login when it offered one (none
// opened by the client), else on one the client opens; a refusal says
// ErrRemoteRefused with the device's words copied; Wait says the exit
// status or signal, and ErrNoExitStatus when neither came.
func TestStartRemote(t *testing.T) {
	tests := []struct {
		name       string
		device     fakeDevice
		r          Remote
		wantGot    string
		wantErr    error
		wantStatus int
		wantSignal string
		wantWait   error
	}{
		{name: "login session, shell, status 3", device: fakeDevice{offerLogin: true, ok: true, end: exitStatus(3)},
			r:       Remote{Pty: &Pty{Term: "xterm-256color", Cols: 100, Rows: 30}, Env: [][2]string{{"LANG", "C.UTF-8"}}},
			wantGot: sshalgo.LoginSessionChannel + " pty-req env shell?", wantStatus: 3},
		{name: "own channel, command, status 0", device: fakeDevice{ok: true, end: exitStatus(0)},
			r: Remote{Command: "true"}, wantGot: "session exec?"},
		{name: "killed", device: fakeDevice{offerLogin: true, ok: true, end: func(ch ssh.Channel) {
			_, _ = ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
				Signal     string
				CoreDumped bool
				Message    string
				Lang       string
			}{Signal: "KILL"}))
		}}, r: Remote{}, wantGot: sshalgo.LoginSessionChannel + " shell?", wantStatus: -1, wantSignal: "KILL"},
		{name: "no status", device: fakeDevice{ok: true, end: func(ssh.Channel) {}},
			r: Remote{}, wantGot: "session shell?", wantStatus: -1, wantWait: ErrNoExitStatus},
		{name: "refused", device: fakeDevice{ok: false}, r: Remote{Command: "ls"}, wantGot: "session exec?", wantErr: ErrRemoteRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := tcpPair(t)
			tt.device.got = make(chan []string, 1)
			go tt.device.serve(t, server)
			conn, chans, reqs, err := ssh.NewClientConn(client, "dev1:22", &ssh.ClientConfig{HostKeyCallback: ssh.InsecureIgnoreHostKey()})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			go ssh.DiscardRequests(reqs)
			login, rest := HoldLoginSession(chans)
			go func() {
				for nc := range rest {
					_ = nc.Reject(ssh.UnknownChannelType, "")
				}
			}()
			if !tt.device.offerLogin {
				login = nil // the server's version line did not offer one
			}
			var said bytes.Buffer
			s, err := StartRemote(conn, login, tt.r, &said)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("StartRemote = %v; want %v", err, tt.wantErr)
			}
			if err == nil {
				out, _ := io.ReadAll(s)
				if string(out) != "$ " {
					t.Errorf("output %q; want %q", out, "$ ")
				}
				status, signal, err := s.Wait()
				if status != tt.wantStatus || signal != tt.wantSignal || !errors.Is(err, tt.wantWait) {
					t.Errorf("Wait = %d, %q, %v; want %d, %q, %v", status, signal, err, tt.wantStatus, tt.wantSignal, tt.wantWait)
				}
			} else if !strings.Contains(said.String(), "no shells today") {
				t.Errorf("the device's words were not copied: %q", said.String())
			}
			if got := strings.Join(<-tt.device.got, " "); got != tt.wantGot {
				t.Errorf("the device got %q; want %q", got, tt.wantGot)
			}
		})
	}
}
