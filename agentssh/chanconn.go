package agentssh

import (
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// ChannelConn wraps an SSH channel (such as a relay's forwarded-tcpip
// channel) as a net.Conn, so ServeConn can run SSH inside it. local and
// remote are what LocalAddr and RemoteAddr return; nil stands for an
// address that only names the channel.
//
// The caller keeps answering the channel's requests (ssh.DiscardRequests).
// Data on the channel's stderr stream is read and dropped, so it cannot
// stall the channel. Deadlines are final: a channel cannot interrupt one
// read and go on, so when a deadline passes the connection is closed, and
// a zero time cancels it. The returned conn also has CloseWrite, which
// sends EOF.
func ChannelConn(ch ssh.Channel, local, remote net.Addr) net.Conn {
	if local == nil {
		local = channelAddr{}
	}
	if remote == nil {
		remote = channelAddr{}
	}
	go io.Copy(io.Discard, ch.Stderr())
	return &channelConn{Channel: ch, local: local, remote: remote}
}

type channelConn struct {
	ssh.Channel
	local, remote net.Addr

	mu     sync.Mutex     // guards timers
	timers [2]*time.Timer // read and write deadlines: each closes the channel
}

func (c *channelConn) LocalAddr() net.Addr  { return c.local }
func (c *channelConn) RemoteAddr() net.Addr { return c.remote }

func (c *channelConn) SetDeadline(t time.Time) error {
	c.setDeadline(0, t)
	c.setDeadline(1, t)
	return nil
}

func (c *channelConn) SetReadDeadline(t time.Time) error {
	c.setDeadline(0, t)
	return nil
}

func (c *channelConn) SetWriteDeadline(t time.Time) error {
	c.setDeadline(1, t)
	return nil
}

func (c *channelConn) setDeadline(i int, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timers[i] != nil {
		c.timers[i].Stop()
		c.timers[i] = nil
	}
	if !t.IsZero() {
		c.timers[i] = time.AfterFunc(time.Until(t), func() { c.Channel.Close() })
	}
}

func (c *channelConn) Close() error {
	c.SetDeadline(time.Time{})
	return c.Channel.Close()
}

// channelAddr is the address of a connection that is an SSH channel.
type channelAddr struct{}

func (channelAddr) Network() string { return "ssh-channel" }
func (channelAddr) String() string  { return "ssh-channel" }
