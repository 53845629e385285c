package agentconsent

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"strings"
)

// Support codes are 12 symbols of Crockford's base32 (0-9 and A-Z without
// I, L, O and U), 60 bits from crypto/rand, shown in groups of four like
// K4M2-9QXD-TT7P. Reading one back forgives what people do when they copy
// a code by ear or by hand: any case, dashes and spaces anywhere, and the
// look-alikes O for 0 and I or L for 1, which the alphabet never shows.
const (
	codeAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	codeLen      = 12 // symbols; 12 × 5 = 60 bits
	codeGroup    = 4
)

// CodeBits is how many random bits a support code carries.
const CodeBits = codeLen * 5

// newSupportCode returns a fresh code in its canonical form (12 symbols,
// no dashes).
func newSupportCode() string {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	n := binary.BigEndian.Uint64(b[:])
	out := make([]byte, codeLen)
	for i := range out {
		out[i] = codeAlphabet[n&31]
		n >>= 5
	}
	return string(out)
}

// formatCode groups a canonical code for people: K4M2-9QXD-TT7P.
func formatCode(code string) string {
	var parts []string
	for len(code) > codeGroup {
		parts = append(parts, code[:codeGroup])
		code = code[codeGroup:]
	}
	return strings.Join(append(parts, code), "-")
}

// normalizeCode reads a code as someone typed it back into its canonical
// form. Symbols outside the alphabet are kept (upper-cased), so the answer
// simply fails to match.
func normalizeCode(s string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch r {
		case '-', ' ', '\t':
			continue
		case 'O':
			r = '0'
		case 'I', 'L':
			r = '1'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// codeMatches compares an answer with the canonical code in constant time
// (for answers of the code's length; the length of a wrong guess is no
// secret).
func codeMatches(answer, code string) bool {
	return subtle.ConstantTimeCompare([]byte(normalizeCode(answer)), []byte(code)) == 1
}
