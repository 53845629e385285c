package agentssh

import (
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"
)

// benchBytes is what one iteration of BenchmarkExecStream moves.
const benchBytes = 256 << 20

// BenchmarkExecStream pushes benchBytes through an exec channel between
// a client and this server over loopback TCP, the way a spliced relay
// stream reaches it:
//
//	up:   the client's stdin → `cat > /dev/null` on the device
//	down: `dd if=/dev/zero bs=128K` on the device (as cat writes a file)
//	      → the client's stdout
//
// with the client's stdin and stdout copied two ways:
//
//	session: by x/crypto's ssh.Session (Stdin and Stdout set), as porthole
//	         ssh did before, and as other Go clients do
//	porthole: as cli/ssh.go copies them now, 128 KiB at a time through
//	         StdinPipe and StdoutPipe
//
// Besides the throughput it reports cpu-s/GiB: the CPU time of this
// process (both SSH ends, not cat or dd) per GiB moved. Profile with
//
//	go test -run '^$' -bench ExecStream -benchtime 3x -cpuprofile cpu.out ./agentssh
func BenchmarkExecStream(b *testing.B) {
	e := newEnv(b)
	c, _ := e.login(b, e.server(b, func(c *Config) { c.Recorder = nil }))
	const cliBuf = 128 << 10 // cli's streamBuf
	for _, dir := range []string{"up", "down"} {
		for _, client := range []string{"session", "porthole"} {
			b.Run(dir+"/"+client, func(b *testing.B) {
				b.SetBytes(benchBytes)
				cpu0 := cpuTime()
				b.ResetTimer()
				for range b.N {
					s, err := c.NewSession()
					if err != nil {
						b.Fatal(err)
					}
					var got countWriter
					command := "cat > /dev/null"
					if dir == "down" {
						command = fmt.Sprintf("dd if=/dev/zero bs=128K count=%d status=none", benchBytes/(128<<10))
					}
					switch {
					case client == "session" && dir == "up":
						s.Stdin = &patternReader{left: benchBytes}
						err = s.Run(command)
					case client == "session":
						s.Stdout = &got
						err = s.Run(command)
					default:
						in, _ := s.StdinPipe()
						out, _ := s.StdoutPipe()
						if err = s.Start(command); err != nil {
							break
						}
						go func() {
							if dir == "up" {
								io.CopyBuffer(in, &patternReader{left: benchBytes}, make([]byte, cliBuf))
							}
							in.Close()
						}()
						copied := make(chan struct{})
						go func() {
							io.CopyBuffer(&got, out, make([]byte, cliBuf))
							close(copied)
						}()
						err = s.Wait()
						<-copied
					}
					s.Close()
					if err != nil {
						b.Fatal(err)
					}
					if dir == "down" && got != benchBytes {
						b.Fatalf("got %d bytes; want %d", got, benchBytes)
					}
				}
				b.StopTimer()
				gib := float64(b.N) * benchBytes / (1 << 30)
				b.ReportMetric((cpuTime()-cpu0).Seconds()/gib, "cpu-s/GiB")
			})
		}
	}
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// patternReader yields left bytes of a fixed pattern. It has only Read, as
// a terminal or a pipe on stdin has, so io.Copy brings its own buffer.
type patternReader struct{ left int64 }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	n := min(int64(len(p)), r.left)
	for i := range p[:n] {
		p[i] = byte(i)
	}
	r.left -= n
	return int(n), nil
}

// countWriter counts what is written to it. It has only Write, as os.File
// has for a reader that is not a file, so io.Copy brings its own buffer.
type countWriter int64

func (w *countWriter) Write(p []byte) (int, error) {
	*w += countWriter(len(p))
	return len(p), nil
}
