package agentssh

import (
	"encoding/binary"
	"testing"
)

// packet builds an SFTP packet from its fields (byte, uint32, uint64,
// string).
func packet(fields ...any) []byte {
	var b []byte
	for _, f := range fields {
		switch v := f.(type) {
		case byte:
			b = append(b, v)
		case uint32:
			b = binary.BigEndian.AppendUint32(b, v)
		case uint64:
			b = binary.BigEndian.AppendUint64(b, v)
		case string:
			b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
			b = append(b, v...)
		}
	}
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

// TestSFTPTapChunks: the tap frames packets however the stream is cut.
func TestSFTPTapChunks(t *testing.T) {
	data := string(make([]byte, 100000))
	client := append(append(append(
		packet(byte(fxpOpen), uint32(1), "rel/file", uint32(fxfWrite|fxfCreat), uint32(0)),
		packet(byte(fxpWrite), uint32(2), "h1", uint64(0), data)...),
		packet(byte(fxpClose), uint32(3), "h1")...),
		packet(byte(fxpMkdir), uint32(4), "/d", uint32(0))...)
	server := append(append(
		packet(byte(fxpHandle), uint32(1), "h1"),
		packet(byte(fxpStatus), uint32(2), uint32(0), "", "")...),
		packet(byte(fxpStatus), uint32(4), uint32(3), "permission denied", "")...)
	for _, chunk := range []int{1, 3, 7, 4096, len(client)} {
		var ops []SFTPOp
		tap := newSFTPTap("/home/x", func(op SFTPOp) { ops = append(ops, op) })
		// The HANDLE answer must come after the OPEN and before the WRITE.
		feed := func(b []byte, f func([]byte)) {
			for i := 0; i < len(b); i += chunk {
				f(b[i:min(i+chunk, len(b))])
			}
		}
		open := len(packet(byte(fxpOpen), uint32(1), "rel/file", uint32(fxfWrite|fxfCreat), uint32(0)))
		handle := len(packet(byte(fxpHandle), uint32(1), "h1"))
		feed(client[:open], tap.fromClient)
		feed(server[:handle], tap.fromServer)
		feed(client[open:], tap.fromClient)
		feed(server[handle:], tap.fromServer)
		tap.end()
		want := []SFTPOp{
			{Op: "write", Path: "/home/x/rel/file", Bytes: 100000},
			{Op: "mkdir", Path: "/d", Err: "permission denied"},
		}
		if len(ops) != len(want) || ops[0] != want[0] || ops[1] != want[1] {
			t.Errorf("chunks of %d: recorded %+v; want %+v", chunk, ops, want)
		}
	}
}

// FuzzSFTPTap: no stream, however malformed, makes the tap panic or
// report without end.
func FuzzSFTPTap(f *testing.F) {
	f.Add(packet(byte(fxpOpen), uint32(1), "f", uint32(1), uint32(0)), packet(byte(fxpHandle), uint32(1), "h"))
	f.Add(packet(byte(fxpRead), uint32(9), "h", uint64(0), uint32(10)), packet(byte(fxpData), uint32(9), "0123456789"))
	f.Add(packet(byte(fxpExtended), uint32(2), "posix-rename@openssh.com", "a", "b"), packet(byte(fxpStatus), uint32(2), uint32(0)))
	f.Add([]byte{0, 0, 0, 0}, []byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in, out []byte) {
		n := 0
		tap := newSFTPTap("/", func(SFTPOp) { n++ })
		tap.fromClient(in)
		tap.fromServer(out)
		tap.fromClient(in)
		tap.fromServer(out)
		tap.end()
		if n > len(in)+len(out) {
			t.Errorf("%d operations from %d bytes", n, len(in)+len(out))
		}
	})
}
