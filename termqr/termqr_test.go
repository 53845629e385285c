package termqr

import (
	"bytes"
	"strings"
	"testing"
)

func TestPrint(t *testing.T) {
	var b bytes.Buffer
	Print(&b, "otpauth://totp/Porthole:ann@example.com?secret=JBSWY3DPEHPK3PXP&issuer=Porthole")
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) < 10 || !strings.ContainsAny(b.String(), "▀▄█") {
		t.Fatalf("Print wrote %d lines:\n%s", len(lines), b.String())
	}
	for i, l := range lines {
		if n, want := len([]rune(l)), len([]rune(lines[0])); n != want {
			t.Errorf("line %d is %d wide; want %d", i, n, want)
		}
	}
}
