package agentssh

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"github.com/porthole/porthole/internal/testnet"
	"golang.org/x/crypto/ssh"
)

// TestFullFailsClosed: once the Recorder says the session can no longer
// be recorded, a command, a forward and SFTP already open move nothing
// more, and new ones are refused with the Recorder's reason; with SFTP
// in the agent and through SFTPCommand.
func TestFullFailsClosed(t *testing.T) {
	const why = "this session's recording is full (test)"
	for _, tt := range []struct {
		name    string
		command bool // SFTP through SFTPCommand, as nobody
	}{{"sftp in the agent", false}, {"sftp command", true}} {
		t.Run(tt.name, func(t *testing.T) {
			port := testnet.Echo(t).Port
			e := newEnv(t)
			dir := t.TempDir()
			srv := e.server(t, func(c *Config) {
				c.AllowPorts = []int{port}
				if tt.command {
					needRoot(t)
					c.RunAs = "nobody"
					c.SFTPCommand = []string{testBinary(t), modeSFTPServer}
					os.Chmod(filepath.Dir(dir), 0o755)
					os.Chown(dir, 65534, 65534)
				}
			})
			c, _ := e.login(t, srv)
			target := "127.0.0.1:" + strconv.Itoa(port)

			// Open while everything is recorded.
			fwd, err := c.Dial("tcp", target)
			if err != nil {
				t.Fatal(err)
			}
			defer fwd.Close()
			io.WriteString(fwd, "ping")
			if _, err := io.ReadFull(fwd, make([]byte, 4)); err != nil {
				t.Fatal(err)
			}
			cmd, err := c.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			defer cmd.Close()
			cmdIn, _ := cmd.StdinPipe()
			var cmdOut, cmdErr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &cmdOut, &cmdErr
			if err := cmd.Start("cat"); err != nil {
				t.Fatal(err)
			}
			sc, err := sftp.NewClient(c)
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			f, err := sc.Create(filepath.Join(dir, "f"))
			if err != nil {
				t.Fatal(err)
			}

			e.rec.setFull(why)

			// New: refused, with the reason.
			s, err := c.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			stderr, _ := s.StderrPipe()
			if err := s.Start("touch " + filepath.Join(dir, "blind")); err == nil {
				t.Error("a command was started past Full")
			}
			if b, _ := io.ReadAll(stderr); !strings.Contains(string(b), "refused to start the command: "+why) {
				t.Errorf("the refused command said %q", b)
			}
			if conn, err := c.Dial("tcp", target); err == nil {
				conn.Close()
				t.Error("a forward was opened past Full")
			} else if !strings.Contains(err.Error(), why) {
				t.Errorf("the refused forward: %v", err)
			}
			if sc2, err := sftp.NewClient(c); err == nil {
				sc2.Close()
				t.Error("SFTP was started past Full")
			}

			// Open: ended before moving another byte.
			io.WriteString(cmdIn, "blind\n")
			var ee *ssh.ExitError
			if err := cmd.Wait(); !errors.As(err, &ee) || ee.Signal() != "KILL" {
				t.Errorf("the open command: %v; want it killed", err)
			}
			if cmdOut.String() != "" || !strings.Contains(cmdErr.String(), "porthole: ended: "+why) {
				t.Errorf("the open command: output %q, told %q", cmdOut.String(), cmdErr.String())
			}
			io.WriteString(fwd, "pong")
			fwd.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(fwd, make([]byte, 4)); err == nil {
				t.Error("the open forward still echoes")
			}
			f.Write([]byte("blind"))
			f.Close()
			if b, err := os.ReadFile(filepath.Join(dir, "f")); err != nil || len(b) != 0 {
				t.Errorf("the open file took %q (%v); want nothing", b, err)
			}
			if _, err := os.Stat(filepath.Join(dir, "blind")); err == nil {
				t.Error("the refused command ran")
			}
		})
	}
}

// TestFullCommandFinishesOutput: a command without a terminal that was
// running when the recording filled up sends the rest of its output (the
// recorder counts it) and exits as it would, so `cat big.log` works; its
// input is cut, since it could carry new commands.
func TestFullCommandFinishesOutput(t *testing.T) {
	const why = "this session's recording is full (test)"
	e := newEnv(t)
	srv := e.server(t, nil)
	c, _ := e.login(t, srv)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in, _ := s.StdinPipe()
	out, _ := s.StdoutPipe()
	// It waits for one line, then writes 1 MiB.
	if err := s.Start("read x; head -c 1048576 /dev/zero"); err != nil {
		t.Fatal(err)
	}
	e.rec.setFull(why)
	io.WriteString(in, "go\n") // cut: past Full, input moves nothing
	in.Close()
	n, _ := io.Copy(io.Discard, out)
	err = s.Wait()
	// Its input is cut by ending it: killed, having written nothing.
	var ee *ssh.ExitError
	if n != 0 || !errors.As(err, &ee) || ee.Signal() != "KILL" {
		t.Fatalf("the command given input past Full wrote %d bytes and ended %v; want it killed before it read", n, err)
	}
	// Running when the recording fills up, it still sends all of its
	// output and exits 0. (It waits for a file the test makes once the
	// session is full.)
	e2 := newEnv(t)
	c2, _ := e2.login(t, e2.server(t, nil))
	s2, _ := c2.NewSession()
	defer s2.Close()
	out2, _ := s2.StdoutPipe()
	flag := filepath.Join(t.TempDir(), "go")
	if err := s2.Start("echo ready; while [ ! -e " + flag + " ]; do sleep 0.01; done; head -c 1048576 /dev/zero"); err != nil {
		t.Fatal(err)
	}
	ready := make([]byte, 6)
	if _, err := io.ReadFull(out2, ready); err != nil || string(ready) != "ready\n" {
		t.Fatalf("read %q, %v", ready, err)
	}
	e2.rec.setFull(why)
	os.WriteFile(flag, nil, 0o600)
	if n, _ := io.Copy(io.Discard, out2); n != 1<<20 {
		t.Errorf("a command without a terminal sent %d bytes past Full; want all 1 MiB", n)
	}
	if err := s2.Wait(); err != nil {
		t.Errorf("exit: %v; want 0", err)
	}
}
