package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"strings"
)

// passwordAlphabet leaves out characters that look alike (0 O o, 1 l I i,
// and upper case altogether), so a password read off a screen is typed
// right.
const passwordAlphabet = "23456789abcdefghjkmnpqrstuvwxyz"

// GeneratePassword returns a random password of 20 characters (99 bits) in
// groups of five, such as "k7m2q-9xdtt-p4wna-3hcef".
func GeneratePassword() string {
	const groups, groupLen = 4, 5
	var b strings.Builder
	for i := range groups * groupLen {
		if i > 0 && i%groupLen == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(passwordAlphabet[randIndex(len(passwordAlphabet))])
	}
	return b.String()
}

// randIndex returns a uniform random number in [0, n) for n ≤ 256, by
// rejecting the bytes that would bias it.
func randIndex(n int) int {
	limit := 256 - 256%n
	var buf [1]byte
	for {
		rand.Read(buf[:]) // never fails (crypto/rand, Go 1.24+)
		if int(buf[0]) < limit {
			return int(buf[0]) % n
		}
	}
}

// NewSecret returns a new bearer secret, prefix + "_" + 32 random bytes in
// lower-case unpadded base32 (the prefix says what the secret is for when
// it turns up in a log or a paste), and its HashSecret, which is all the
// server stores.
func NewSecret(prefix string) (secret, hash string) {
	secret = prefix + "_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(randomBytes(32)))
	return secret, HashSecret(secret)
}

// HashSecret is the hex SHA-256 of a bearer secret. The secrets carry 256
// random bits, so a fast hash suffices: there is nothing to guess.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return b
}
