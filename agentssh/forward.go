package agentssh

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// dialTimeout bounds connecting to a local port.
const dialTimeout = 5 * time.Second

// directTCPIP is the payload of a "direct-tcpip" channel (RFC 4254 7.2).
type directTCPIP struct {
	Host     string
	Port     uint32
	OrigHost string
	OrigPort uint32
}

// serveDirectTCPIP serves a port forward to one of the device's own
// allowed ports, and refuses every other.
func (c *conn) serveDirectTCPIP(ctx context.Context, newCh ssh.NewChannel) {
	f := Forward{Start: time.Now()}
	var p directTCPIP
	if err := ssh.Unmarshal(newCh.ExtraData(), &p); err != nil {
		newCh.Reject(ssh.ConnectionFailed, "porthole: malformed direct-tcpip request")
		return
	}
	f.Target = net.JoinHostPort(p.Host, strconv.FormatUint(uint64(p.Port), 10))
	log := c.log.With("target", f.Target)
	if why := c.full(); why != "" {
		log.Warn("refused a forward: the session can no longer be recorded", "why", why)
		f.Refused = why
		c.recordForward(f)
		newCh.Reject(ssh.Prohibited, "porthole: "+why)
		return
	}
	addrs, refused := c.srv.forwardAddrs(c.session, p.Host, p.Port)
	if refused != "" {
		log.Info("refused a forward", "reason", refused)
		f.Refused = refused
		c.recordForward(f)
		newCh.Reject(ssh.Prohibited, "porthole: "+refused)
		return
	}
	var local net.Conn
	var err error
	d := net.Dialer{Timeout: dialTimeout}
	for _, a := range addrs {
		if local, err = d.DialContext(ctx, "tcp", a); err == nil {
			break
		}
	}
	if err != nil {
		f.Refused = fmt.Sprintf("nothing answers on port %d of the device", p.Port)
		log.Info("forward failed", "err", err)
		c.recordForward(f)
		newCh.Reject(ssh.ConnectionFailed, "porthole: "+f.Refused)
		return
	}
	ch, reqs, err := newCh.Accept()
	if err != nil {
		local.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	log.Info("forward opened")
	cut := func() { ch.Close(); local.Close() }
	stop := context.AfterFunc(ctx, cut)
	defer stop()

	var wg sync.WaitGroup
	wg.Go(func() {
		f.In = c.copyCounted(local, ch, true, cut)
		if tc, ok := local.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	})
	wg.Go(func() {
		f.Out = c.copyCounted(ch, local, false, cut)
		ch.CloseWrite()
	})
	wg.Wait()
	ch.Close()
	local.Close()
	f.Duration = time.Since(f.Start)
	log.Info("forward closed", "in", f.In, "out", f.Out, "took", f.Duration.Round(time.Millisecond))
	c.recordForward(f)
}

// copyCounted copies until EOF or an error and returns the bytes copied;
// input from the engineer counts as activity. When the session can no
// longer be recorded, it calls cut and stops before moving another byte.
func (c *conn) copyCounted(dst io.Writer, src io.Reader, engineer bool, cut func()) int64 {
	buf := make([]byte, 32<<10)
	var n int64
	for {
		m, err := src.Read(buf)
		if m > 0 {
			if engineer {
				c.activity()
			}
			if why := c.full(); why != "" {
				c.log.Warn("ending a forward: the session can no longer be recorded", "why", why)
				cut()
				return n
			}
			if _, werr := dst.Write(buf[:m]); werr != nil {
				return n
			}
			n += int64(m)
		}
		if err != nil {
			return n
		}
	}
}

func (c *conn) recordForward(f Forward) {
	if r := c.srv.cfg.Recorder; r != nil {
		r.Forward(c.session, f)
	}
}

// forwardAddrs returns where a forward of session to host:port may dial,
// or why it may not. Only the loopback addresses themselves are allowed (no
// name is resolved: "localhost" means 127.0.0.1, then ::1), and only ports
// both in AllowPorts and among the session's.
func (s *Server) forwardAddrs(session, host string, port uint32) (addrs []string, refused string) {
	ps := strconv.FormatUint(uint64(port), 10)
	switch h := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")); h {
	case "localhost":
		addrs = []string{"127.0.0.1:" + ps, "[::1]:" + ps}
	default:
		a, err := netip.ParseAddr(h)
		if err != nil || (a != netip.MustParseAddr("127.0.0.1") && a != netip.IPv6Loopback()) {
			return nil, fmt.Sprintf("only the device's own ports can be reached (127.0.0.1, localhost or ::1), not %s", host)
		}
		addrs = []string{net.JoinHostPort(a.String(), ps)}
	}
	if port > 65535 || !s.allow[int(port)] {
		return nil, fmt.Sprintf("port %d is not among the ports this device's owner allows (%s)", port, portList(s.cfg.AllowPorts))
	}
	var asked []int
	if s.cfg.SessionPorts != nil {
		asked = s.cfg.SessionPorts(session)
	}
	if !slices.Contains(asked, int(port)) {
		return nil, fmt.Sprintf("port %d was not asked for when this session was opened (it asked for %s); "+
			"open a session for it: porthole forward, or PORTHOLE_PORTS=%d with ssh", port, portList(asked), port)
	}
	return addrs, ""
}

// portList writes ports for people: "22, 8080", or "none".
func portList(list []int) string {
	if len(list) == 0 {
		return "none"
	}
	ports := slices.Clone(list)
	slices.Sort(ports)
	ports = slices.Compact(ports)
	var b strings.Builder
	for i, p := range ports {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(p))
	}
	return b.String()
}
