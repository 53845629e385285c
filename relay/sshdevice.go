package relay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/ssh"
)

// forwardRequest is the payload of "tcpip-forward" and "cancel-tcpip-forward"
// (RFC 4254 §7.1): the session id and port 0.
type forwardRequest struct {
	Addr string
	Port uint32
}

// forwardReply answers a "tcpip-forward" for port 0 with the port "bound".
type forwardReply struct {
	Port uint32
}

// forwardedChannel is the payload of a "forwarded-tcpip" channel (RFC 4254
// §7.2): the session id, port 0, and the engineer's address.
type forwardedChannel struct {
	Addr     string
	Port     uint32
	OrigHost string
	OrigPort uint32
}

// serveDevice serves a device logged in over SSH (the first protocol).
func (r *Relay) serveDevice(p peer, sc *ssh.ServerConn, id *identity, chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request, start time.Time) {
	dev := newDeviceConn(p, id.fleet, id.device)
	dev.open = func(session, origHost string, origPort uint32, early []byte) (halfConn, error) {
		payload := ssh.Marshal(forwardedChannel{Addr: session, Port: 0, OrigHost: origHost, OrigPort: origPort})
		ch, reqs, err := sc.OpenChannel("forwarded-tcpip", payload)
		if err != nil {
			if refused, ok := errors.AsType[*ssh.OpenChannelError](err); ok {
				return nil, &deviceRefusedError{refused.Message}
			}
			return nil, err
		}
		if _, err := ch.Write(early); err != nil {
			_ = ch.Close()
			return nil, err
		}
		return &sshChannel{Channel: ch, gone: r.drain(reqs)}, nil
	}
	if err := r.addDevice(dev, start); err != nil {
		r.refuse(dev.log, dev.refusal("login", err.Error()))
		dev.close(err)
		// Let the handshake's goroutines finish with the connection.
		r.wg.Go(func() { ssh.DiscardRequests(reqs) })
		for nc := range chans {
			_ = nc.Reject(ssh.Prohibited, err.Error())
		}
		return
	}
	dev.log.Info("device connected")
	r.runPeer(&dev.peer, sc, chans, reqs,
		func(nc ssh.NewChannel) {
			r.refuse(dev.log, dev.refusal("channel "+nc.ChannelType(), whyDeviceChannel))
			_ = nc.Reject(ssh.Prohibited, whyDeviceChannel)
		},
		func(req *ssh.Request) { r.deviceRequest(dev, req) })
	r.removeDevice(dev, errConnEnded)
	dev.log.Info("device disconnected", "reason", context.Cause(dev.ctx))
}

func (r *Relay) deviceRequest(dev *deviceConn, req *ssh.Request) {
	switch req.Type {
	case "tcpip-forward":
		r.forward(dev, req)
	case "cancel-tcpip-forward":
		var m forwardRequest
		if err := ssh.Unmarshal(req.Payload, &m); err != nil {
			r.refuse(dev.log, dev.refusal(req.Type, "malformed request"))
			_ = req.Reply(false, nil)
			return
		}
		ok := r.unregister(dev, m.Addr)
		_ = req.Reply(ok, nil)
		if ok {
			dev.log.Info("session unregistered", "session", m.Addr)
		}
	case keepAliveRequest:
		_ = req.Reply(false, nil)
	default:
		r.refuse(dev.log, dev.refusal("global request "+req.Type, whyDeviceRequest))
		_ = req.Reply(false, nil)
	}
}

// forward registers the session a "tcpip-forward" request names.
func (r *Relay) forward(dev *deviceConn, req *ssh.Request) {
	var m forwardRequest
	if err := ssh.Unmarshal(req.Payload, &m); err != nil {
		r.refuse(dev.log, dev.refusal(req.Type, "malformed request"))
		_ = req.Reply(false, nil)
		return
	}
	switch {
	case m.Addr == "":
		f := dev.refusal(req.Type, "no session named: the bind address is the session id")
		r.refuse(dev.log, f)
		_ = req.Reply(false, nil)
		return
	case m.Port != 0:
		f := dev.refusal(req.Type, fmt.Sprintf("port %d asked: a device registers a session with port 0, and the relay binds no ports", m.Port))
		f.Session = m.Addr
		r.refuse(dev.log, f)
		_ = req.Reply(false, nil)
		return
	}
	if _, err := r.register(dev, req.Type, m.Addr); err != nil {
		_ = req.Reply(false, nil)
		return
	}
	_ = req.Reply(true, ssh.Marshal(forwardReply{Port: 0}))
}

// sshChannel is a spliced SSH channel; gone is closed when its peer has
// closed it (its request stream ends).
type sshChannel struct {
	ssh.Channel
	gone <-chan struct{}
}
