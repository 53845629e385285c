package control

import (
	"fmt"
	"testing"
)

func BenchmarkSign(b *testing.B) {
	key, c := testKey(1), openCmd()
	for b.Loop() {
		if _, err := Sign(key, c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify measures parsing and the signature check with nonces in
// memory, and the whole path with the fsync of each nonce to a file.
func BenchmarkVerify(b *testing.B) {
	key := testKey(1)
	for _, store := range []string{"memory", "file"} {
		b.Run(store, func(b *testing.B) {
			var nonces NonceStore = &memNonces{}
			if store == "file" {
				nonces, _ = openNonceFile(b)
			}
			v := newTestVerifier(b, key, nonces)
			envs := make([][]byte, b.N)
			for i := range envs {
				c := openCmd()
				c.Nonce = fmt.Sprintf("bench-nonce-%016d", i)
				envs[i] = mustSign(b, key, c)
			}
			b.ResetTimer()
			for i := range b.N {
				if _, err := v.Verify(envs[i], testNow); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
