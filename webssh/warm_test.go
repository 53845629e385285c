package webssh

import (
	"testing"
	"time"
)

// TestWarm: the warm-up's handshakes complete, quickly, with both cipher
// families.
func TestWarm(t *testing.T) {
	start := time.Now()
	if err := Warm(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Warm took %v", took)
	}
}
