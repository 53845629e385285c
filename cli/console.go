package cli

import (
	"unicode/utf16"
	"unicode/utf8"
)

// followSize calls send with the terminal's width and height each time
// they change, reading them with size whenever tick delivers, starting
// from the w, h the device was last told, until stop is closed. A size
// that cannot be read, or is zero, is skipped. On Unix tick is SIGWINCH;
// on Windows, which has no such signal, a ticker: the console is polled,
// as other Windows SSH clients do.
func followSize[T any](stop <-chan struct{}, tick <-chan T, size func() (w, h int, err error), w, h int, send func(w, h int)) {
	for {
		select {
		case <-stop:
			return
		case <-tick:
		}
		nw, nh, err := size()
		if err != nil || nw <= 0 || nh <= 0 || (nw == w && nh == h) {
			continue
		}
		w, h = nw, nh
		send(w, h)
	}
}

// utf16Decoder turns what a Windows console reads, UTF-16, into UTF-8,
// keeping the high half of a surrogate pair split between two reads for
// the next. Every code unit is kept, Ctrl-Z (0x1A) included; a half pair
// alone becomes U+FFFD.
type utf16Decoder struct {
	high rune // a high surrogate waiting for its low half, or 0
}

func (d *utf16Decoder) decode(dst []byte, src []uint16) []byte {
	for _, u := range src {
		r := rune(u)
		if d.high != 0 {
			high := d.high
			d.high = 0
			if isLowSurrogate(r) {
				dst = utf8.AppendRune(dst, utf16.DecodeRune(high, r))
				continue
			}
			dst = utf8.AppendRune(dst, utf8.RuneError)
		}
		switch {
		case isHighSurrogate(r):
			d.high = r
		case isLowSurrogate(r):
			dst = utf8.AppendRune(dst, utf8.RuneError)
		default:
			dst = utf8.AppendRune(dst, r)
		}
	}
	return dst
}

func isHighSurrogate(r rune) bool { return 0xd800 <= r && r < 0xdc00 }
func isLowSurrogate(r rune) bool  { return 0xdc00 <= r && r < 0xe000 }
