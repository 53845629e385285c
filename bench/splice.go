package bench

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// EnvSpliceRelay makes porthole-bench run as a plain TCP relay to the
// address it names (see RunSpliceRelay), for the throughput measurement's
// floor: what a relay that reads nothing and decrypts nothing costs.
const EnvSpliceRelay = "PORTHOLE_BENCH_SPLICE_TO"

// RunSpliceRelay listens on a free loopback port, prints it, and joins each
// connection to target with io.Copy, which on Linux moves the bytes with
// splice(2), never through user space: the least a relay can spend. It
// returns only when it cannot listen or accept.
func RunSpliceRelay(target string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("splice relay port %d\n", ln.Addr().(*net.TCPAddr).Port)
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			s, err := net.Dial("tcp", target)
			if err != nil {
				return
			}
			defer s.Close()
			done := make(chan struct{})
			go func() {
				_, _ = io.Copy(s, c)
				_ = s.(*net.TCPConn).CloseWrite()
				close(done)
			}()
			_, _ = io.Copy(c, s)
			_ = c.(*net.TCPConn).CloseWrite()
			<-done
		}()
	}
}

// spliceRelay is RunSpliceRelay in a process of its own, in front of sshd.
type spliceRelay struct {
	proc *proc
	port int
}

func startSpliceRelay(dir string, target string) (*spliceRelay, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "splice-relay.log")
	p, err := startProc("splice relay", logPath, append(os.Environ(), EnvSpliceRelay+"="+target), self)
	if err != nil {
		return nil, err
	}
	re := regexp.MustCompile(`splice relay port (\d+)`)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		data, _ := os.ReadFile(logPath)
		if m := re.FindSubmatch(data); m != nil {
			port, _ := strconv.Atoi(string(m[1]))
			return &spliceRelay{proc: p, port: port}, nil
		}
		if p.exited() {
			break
		}
	}
	_ = p.stop(time.Second)
	return nil, fmt.Errorf("the splice relay did not start (see %s)", logPath)
}
