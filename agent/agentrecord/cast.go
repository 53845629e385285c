package agentrecord

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// CastHeader is the first line of an asciicast v2 file
// (https://docs.asciinema.org/manual/asciicast/v2/). The rest are events,
// one JSON array a line: [seconds since the start, "o" (output) or "i"
// (input) or "r" (resize, "COLSxROWS"), data].
type CastHeader struct {
	Version   int               `json:"version"` // 2
	Width     int               `json:"width"`
	Height    int               `json:"height"`
	Timestamp int64             `json:"timestamp,omitempty"` // start, unix seconds
	Command   string            `json:"command,omitempty"`
	Title     string            `json:"title,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
}

// Size of a cast without a terminal, whose header must still name one.
const (
	castDefaultCols = 80
	castDefaultRows = 24
)

// appendCastEvent appends one asciicast event line.
func appendCastEvent(b []byte, t time.Duration, kind string, data []byte) []byte {
	b = append(b, '[')
	b = strconv.AppendFloat(b, max(t, 0).Seconds(), 'f', 6, 64)
	b = append(b, ", \""...)
	b = append(b, kind...)
	b = append(b, "\", "...)
	b = appendJSONString(b, data)
	return append(b, "]\n"...)
}

// appendJSONString appends s as a JSON string. Bytes that are not UTF-8
// become U+FFFD, as asciinema's own recorder does: a cast holds text.
func appendJSONString(b, s []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != 0x7f {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' { // valid JSON, but not in every reader
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// utf8Tail is how many bytes at the end of s start a UTF-8 sequence that
// the next chunk may complete: output arrives in arbitrary chunks, and a
// character cut in two must not become two U+FFFD.
func utf8Tail(s []byte) int {
	for n := 1; n <= 3 && n <= len(s); n++ {
		c := s[len(s)-n]
		if c < utf8.RuneSelf {
			return 0
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(s[len(s)-n:]) {
				return n
			}
			return 0
		}
	}
	return 0
}

// castText carries a stream's unfinished UTF-8 sequence across chunks.
type castText struct {
	pending [utf8.UTFMax]byte
	np      int
	buf     []byte // pending joined with the next chunk
}

// next returns the text of data that is whole so far, keeping an
// unfinished character for the next call. The result is valid until the
// next call.
func (c *castText) next(data []byte) []byte {
	if c.np > 0 {
		c.buf = append(append(c.buf[:0], c.pending[:c.np]...), data...)
		data, c.np = c.buf, 0
	}
	n := utf8Tail(data)
	c.np = copy(c.pending[:], data[len(data)-n:])
	return data[:len(data)-n]
}

// flush returns whatever is left unfinished (it becomes U+FFFD).
func (c *castText) flush() []byte {
	p := append([]byte(nil), c.pending[:c.np]...)
	c.np = 0
	return p
}

// marshalHeader is the header's line.
func marshalHeader(h CastHeader) []byte {
	b, _ := json.Marshal(h)
	return append(b, '\n')
}
