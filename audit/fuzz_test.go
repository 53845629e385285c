package audit

import (
	"strings"
	"testing"
)

// FuzzParseHead: the anchor an operator pastes into `porthole audit
// --verify` (and GET /api/v1/audit/verify?anchor=). What ParseHead accepts
// is a positive sequence number and 64 lower-case hex digits, written by
// String as text that parses back to the same head.
func FuzzParseHead(f *testing.F) {
	f.Add("1:" + Genesis)
	f.Add(" 42:" + strings.Repeat("ab", 32) + "\n")
	f.Add("0:" + Genesis)
	f.Add("+7:" + Genesis)
	f.Add("9223372036854775808:" + Genesis)
	f.Add("1:" + strings.ToUpper(strings.Repeat("ab", 32)))
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHead(s)
		if err != nil {
			if h != (Head{}) {
				t.Fatalf("ParseHead(%q) failed (%v) but returned %+v", s, err, h)
			}
			return
		}
		if h.Seq < 1 || len(h.Hash) != 64 || strings.Trim(h.Hash, "0123456789abcdef") != "" {
			t.Fatalf("ParseHead(%q) = %+v", s, h)
		}
		if again, err := ParseHead(h.String()); err != nil || again != h {
			t.Fatalf("ParseHead(%q) = %+v, whose String %q parses as %+v, %v", s, h, h.String(), again, err)
		}
	})
}
