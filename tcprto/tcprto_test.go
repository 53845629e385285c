package tcprto

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

// TestCapped: the connections a Dialer makes and a Listener accepts have
// their retransmission timeout capped at MaxRTO, where the system can.
func TestCapped(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listener(ln)
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	dialed, err := Dialer().Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer dialed.Close()
	acc := <-accepted
	if acc == nil {
		return
	}
	defer acc.Close()
	for name, c := range map[string]net.Conn{"dialed": dialed, "accepted": acc} {
		rc, err := c.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var got error
		if err := rc.Control(func(fd uintptr) {
			d, err := maxRTO(fd)
			if err == nil && d != MaxRTO {
				err = errors.New(name + " connection's cap is " + d.String() + "; want " + MaxRTO.String())
			}
			got = err
		}); err != nil {
			t.Fatal(err)
		}
		switch {
		case errors.Is(got, syscall.ENOPROTOOPT), errors.Is(got, errUnsupported):
			t.Skipf("this system cannot cap the retransmission timeout (Linux before 6.15): %v", got)
		case got != nil:
			t.Error(got)
		}
	}
}
