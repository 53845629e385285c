//go:build !js

package relayproto

import (
	"encoding/binary"
	"io"
	"testing"
)

// TestGluedConn: a data frame's header goes out with its body; a header
// with no body (window updates, pings, an empty data frame) at once.
func TestGluedConn(t *testing.T) {
	var w writes
	g := &gluedConn{ReadWriteCloser: &w}
	hdr := func(typ byte, length uint32) []byte {
		h := make([]byte, muxHeaderSize)
		h[1] = typ
		binary.BigEndian.PutUint32(h[8:], length)
		return h
	}
	g.Write(hdr(1, 0)) // a window update
	g.Write(hdr(0, 5)) // a data frame's header ...
	g.Write([]byte("hello"))
	g.Write(hdr(0, 0)) // a data frame with no body (a FIN)
	if len(w) != 3 || len(w[0]) != 12 || string(w[1][12:]) != "hello" || len(w[1]) != 17 || len(w[2]) != 12 {
		t.Errorf("writes = %q", w)
	}
}

type writes [][]byte

func (w *writes) Write(p []byte) (int, error) {
	*w = append(*w, append([]byte(nil), p...))
	return len(p), nil
}
func (w *writes) Read([]byte) (int, error) { return 0, io.EOF }
func (w *writes) Close() error             { return nil }
