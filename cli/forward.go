package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"
)

func newForward(a *app) *cobra.Command {
	var o reachOptions
	cmd := &cobra.Command{
		Use:   "forward DEVICE [BIND:]LOCAL:REMOTE...",
		Short: "Forward local ports to ports on a device, until Ctrl-C",
		Long: `Listen on local ports and carry each connection to a port on the device
itself (its 127.0.0.1), inside an end-to-end SSH session, until Ctrl-C.

LOCAL:REMOTE listens on 127.0.0.1:LOCAL; BIND:LOCAL:REMOTE on another local
address (write an IPv6 one in brackets, [::1]:8080:80). LOCAL 0 takes any free
port. The device lets through only the ports its owner allows (allow_ports in
its agent's config); a refused connection is said on standard error.

Each forward is printed on standard output, "forwarding 127.0.0.1:8080 →
dev1:80", once the session is open.`,
		Example: `  porthole forward kitchen-amp 8080:80
  porthole forward kitchen-amp.acme 8080:80 2222:22 --code K4M2-9QXD-TT7P`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var specs []forwardSpec
			for _, s := range args[1:] {
				f, err := parseForwardSpec(s)
				if err != nil {
					return err
				}
				specs = append(specs, f)
			}
			o.device = args[0]
			return a.runForward(cmd.Context(), o, specs)
		},
	}
	reachFlags(a, cmd, &o)
	return cmd
}

// forwardSpec is one [BIND:]LOCAL:REMOTE.
type forwardSpec struct {
	bind   string // local address to listen on
	local  int    // local port; 0 for any
	remote int    // port on the device
}

// parseForwardSpec reads LOCAL:REMOTE or BIND:LOCAL:REMOTE, with BIND an
// IPv4 address, a host name, or an IPv6 address in brackets.
func parseForwardSpec(s string) (forwardSpec, error) {
	bad := func(why string) (forwardSpec, error) {
		return forwardSpec{}, fmt.Errorf("%q is not a forward: %s (write LOCAL:REMOTE or BIND:LOCAL:REMOTE, such as 8080:80)", s, why)
	}
	f := forwardSpec{bind: "127.0.0.1"}
	rest := s
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]:")
		if end < 0 {
			return bad("an IPv6 address in brackets must be followed by :LOCAL:REMOTE")
		}
		f.bind, rest = rest[1:end], rest[end+2:]
		if net.ParseIP(f.bind) == nil {
			return bad(fmt.Sprintf("%q is not an IPv6 address", f.bind))
		}
	}
	parts := strings.Split(rest, ":")
	switch {
	case len(parts) == 3 && !strings.HasPrefix(s, "["):
		f.bind, parts = parts[0], parts[1:]
		if f.bind == "" {
			return bad("the bind address is empty")
		}
	case len(parts) != 2:
		return bad("it needs a local and a remote port")
	}
	var err error
	if f.local, err = parsePort(parts[0], true); err != nil {
		return bad("local " + err.Error())
	}
	if f.remote, err = parsePort(parts[1], false); err != nil {
		return bad("remote " + err.Error())
	}
	return f, nil
}

// parsePortList reads device ports given as a list, each element itself
// one port or several joined by commas ("80", "80,443"; empty ones are
// skipped), without repeats.
func parsePortList(list []string) ([]int, error) {
	var ports []int
	for _, el := range list {
		for f := range strings.SplitSeq(el, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			p, err := parsePort(f, false)
			if err != nil {
				return nil, &userError{msg: "device " + err.Error()}
			}
			if !slices.Contains(ports, p) {
				ports = append(ports, p)
			}
		}
	}
	return ports, nil
}

func parsePort(s string, zeroOK bool) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 || (n == 0 && !zeroOK) {
		return 0, fmt.Errorf("port %q is not a port number (1-65535)", s)
	}
	return n, nil
}

func (a *app) runForward(ctx context.Context, o reachOptions, specs []forwardSpec) error {
	// Listen first: a port in use is said before a session is asked for.
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for _, f := range specs {
		ln, err := net.Listen("tcp", net.JoinHostPort(f.bind, strconv.Itoa(f.local)))
		if err != nil {
			return &userError{msg: fmt.Sprintf("cannot listen on %s: %s", net.JoinHostPort(f.bind, strconv.Itoa(f.local)), listenErr(err)), err: err}
		}
		lns = append(lns, ln)
		if !slices.Contains(o.ports, f.remote) {
			o.ports = append(o.ports, f.remote)
		}
	}
	ctx, stop := withSignals(ctx)
	defer stop()
	l, client, err := a.reach(ctx, o)
	if err != nil {
		return err
	}
	defer l.close()
	for i, f := range specs {
		fmt.Fprintf(a.io.Out, "forwarding %s → %s:%d\n", lns[i].Addr(), l.device.Name, f.remote)
	}
	fmt.Fprintln(a.io.Err, "press Ctrl-C to stop")

	var wg sync.WaitGroup
	defer wg.Wait()
	fw := &forwarder{client: client, device: l.device.Name, errw: a.io.Err, conns: map[net.Conn]bool{}}
	defer fw.closeAll()
	for i, f := range specs {
		ln := lns[i]
		wg.Go(func() { fw.serve(&wg, ln, f.remote) })
	}
	ended := make(chan error, 1)
	go func() { ended <- client.Wait() }()
	select {
	case <-ctx.Done():
		for _, ln := range lns {
			ln.Close()
		}
		return nil // Ctrl-C is how a forward ends
	case err := <-ended:
		for _, ln := range lns {
			ln.Close()
		}
		return l.lost(ctx, err)
	}
}

// forwarder carries local connections to the device.
type forwarder struct {
	client *ssh.Client
	device string
	errw   io.Writer

	mu    sync.Mutex
	conns map[net.Conn]bool // open local connections, closed at the end
	done  bool
}

func (fw *forwarder) serve(wg *sync.WaitGroup, ln net.Listener, remote int) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if !fw.track(c) {
			c.Close()
			return
		}
		wg.Go(func() {
			defer fw.untrack(c)
			fw.carry(c, remote)
		})
	}
}

func (fw *forwarder) track(c net.Conn) bool {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.done {
		return false
	}
	fw.conns[c] = true
	return true
}

func (fw *forwarder) untrack(c net.Conn) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	delete(fw.conns, c)
	c.Close()
}

func (fw *forwarder) closeAll() {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	fw.done = true
	for c := range fw.conns {
		c.Close()
	}
}

// carry joins one local connection to 127.0.0.1:remote on the device.
func (fw *forwarder) carry(c net.Conn, remote int) {
	rc, err := fw.client.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(remote)))
	if err != nil {
		var oce *ssh.OpenChannelError
		if errors.As(err, &oce) {
			fmt.Fprintf(fw.errw, "porthole: %s refused a connection to its port %d: %s\n", fw.device, remote, oce.Message)
		} else {
			fmt.Fprintf(fw.errw, "porthole: could not reach port %d on %s: %v\n", remote, fw.device, err)
		}
		return
	}
	defer rc.Close()
	splice(c, rc)
}

// splice copies both ways between a and b, passing each side's end of
// data on as a half-close, and returns when both ways are done.
func splice(a, b net.Conn) {
	var wg sync.WaitGroup
	one := func(dst, src net.Conn) {
		_, err := io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok && err == nil {
			cw.CloseWrite()
		} else {
			dst.Close()
			src.Close()
		}
	}
	wg.Go(func() { one(a, b) })
	wg.Go(func() { one(b, a) })
	wg.Wait()
}

// listenErr is why a listen failed, without the call names: "address
// already in use".
func listenErr(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return unwrapOp(err).Error()
}
