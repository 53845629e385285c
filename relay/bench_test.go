package relay

import (
	"encoding/binary"
	"io"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/relay/relayproto"
)

// BenchmarkSplice measures throughput through the relay on loopback, in
// MB/s: "up" from the engineer to the device, "down" from the device to the
// engineer. Each byte is encrypted and decrypted twice (engineer-relay and
// relay-device), as in production.
func BenchmarkSplice(b *testing.B) {
	const chunk = 1 << 20
	for _, dir := range []string{"up", "down"} {
		b.Run(dir, func(b *testing.B) {
			e := newEnv(b, nil)
			e.open("ses_1", "acme", "dev1")
			handle := func(ch ssh.Channel) { // up: read everything
				_, _ = io.Copy(io.Discard, ch)
				_ = ch.Close()
			}
			if dir == "down" { // down: send as many chunks as asked
				handle = func(ch ssh.Channel) {
					defer ch.Close()
					var n uint64
					if err := binary.Read(ch, binary.BigEndian, &n); err != nil {
						return
					}
					buf := make([]byte, chunk)
					for range n {
						if _, err := ch.Write(buf); err != nil {
							return
						}
					}
					_ = ch.CloseWrite()
				}
			}
			dev, err := e.dialDevice(b, "acme", "dev1", e.enroll("acme", "dev1"), handle)
			if err != nil {
				b.Fatal(err)
			}
			dev.mustRegister(b, "ses_1")
			ch, err := openDirect(e.mustEngineer(b, "ses_1", "acme", "dev1"), "ses_1")
			if err != nil {
				b.Fatal(err)
			}
			defer ch.Close()
			buf := make([]byte, chunk)

			b.SetBytes(chunk)
			b.ResetTimer()
			switch dir {
			case "up":
				for range b.N {
					if _, err := ch.Write(buf); err != nil {
						b.Fatal(err)
					}
				}
				_ = ch.CloseWrite()
				_, _ = io.Copy(io.Discard, ch) // ends when the device has read it all
			case "down":
				if err := binary.Write(ch, binary.BigEndian, uint64(b.N)); err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, ch)
				if err != nil || n != int64(b.N)*chunk {
					b.Fatalf("received %d bytes, %v; want %d", n, err, int64(b.N)*chunk)
				}
			}
			b.StopTimer()
		})
	}
}

// BenchmarkSpliceV2 is BenchmarkSplice over the second protocol: TLS 1.3
// on both legs, yamux on the device's, and the relay reading no SSH.
func BenchmarkSpliceV2(b *testing.B) {
	const chunk = 1 << 20
	for _, dir := range []string{"up", "down"} {
		b.Run(dir, func(b *testing.B) {
			e := newV2Env(b, nil)
			e.open("ses_1", "acme", "dev1")
			e.handle = func(st io.ReadWriteCloser) { // up: read everything
				_, _ = io.Copy(io.Discard, st)
				_ = st.Close()
			}
			if dir == "down" { // down: send as many chunks as asked
				e.handle = func(st io.ReadWriteCloser) {
					defer st.Close()
					var n uint64
					if err := binary.Read(st, binary.BigEndian, &n); err != nil {
						return
					}
					buf := make([]byte, chunk)
					for range n {
						if _, err := relayproto.WriteChunks(st, buf); err != nil {
							return
						}
					}
				}
			}
			dev := e.mustDevice(b, "acme", "dev1", e.enroll("acme", "dev1"))
			if _, err := dev.register("ses_1"); err != nil {
				b.Fatal(err)
			}
			c := e.engineer(b, e.certFor(b, newSigner(b), claimsFor("ses_1", "acme", "dev1")))
			if err := c.Wait(); err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, chunk)
			b.SetBytes(chunk)
			b.ResetTimer()
			cpu0 := cpuTime()
			defer func() {
				// CPU per GiB of the whole chain in this process (engineer,
				// relay and device), which load on the machine disturbs
				// less than MB/s.
				b.ReportMetric((cpuTime()-cpu0).Seconds()/(float64(b.N)*chunk/(1<<30)), "cpu-s/GiB")
			}()
			switch dir {
			case "up":
				for range b.N {
					if _, err := c.Write(buf); err != nil {
						b.Fatal(err)
					}
				}
				_ = c.CloseWrite()
				_, _ = io.Copy(io.Discard, c) // ends when the device has read it all
			case "down":
				if err := binary.Write(c, binary.BigEndian, uint64(b.N)); err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, c)
				if err != nil || n != int64(b.N)*chunk {
					b.Fatalf("received %d bytes, %v; want %d", n, err, int64(b.N)*chunk)
				}
			}
			b.StopTimer()
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
