package auth

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters for new hashes: OWASP's recommended minimum (19 MiB,
// two passes, one lane), which keeps a login near 20 ms on a small server.
const (
	argonMemory  = 19456 // KiB
	argonTime    = 2
	argonThreads = 1
	argonSaltLen = 16
	argonKeyLen  = 32
)

// Limits on parameters read from a stored hash, so a corrupted or hostile
// row cannot make a login eat gigabytes or minutes.
const (
	maxMemory  = 1 << 20 // KiB (1 GiB)
	maxTime    = 16
	maxThreads = 16
)

// DummyHash is a valid hash, with the current parameters, of a password
// nobody knows. Check against it when a login names no existing user, so the
// answer takes as long as for a real one and timing does not tell which
// accounts exist.
const DummyHash = "$argon2id$v=19$m=19456,t=2,p=1$jeTfgY/xB8lPKd0LpY4glw$7Wl7uHBtgKiFYeyywFCl3pVye6zWM8ZZfDgKdajU1Kk"

// ErrMalformedHash means a stored password hash is not an argon2id PHC
// string this package can check.
var ErrMalformedHash = errors.New("auth: malformed password hash")

// HashPassword hashes pw with argon2id and a random salt, in the PHC string
// format "$argon2id$v=19$m=...,t=...,p=...$salt$hash".
func HashPassword(pw string) (string, error) {
	salt := randomBytes(argonSaltLen)
	p := argonParams{memory: argonMemory, time: argonTime, threads: argonThreads}
	key := argon2.IDKey([]byte(pw), salt, p.time, p.memory, p.threads, argonKeyLen)
	return p.encode(salt, key), nil
}

// CheckPassword reports whether pw matches the encoded hash, using the
// parameters stored in it. It returns an error (wrapping ErrMalformedHash)
// only when encoded cannot be parsed.
func CheckPassword(encoded, pw string) (bool, error) {
	p, salt, want, err := decodeHash(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(pw), salt, p.time, p.memory, p.threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

type argonParams struct {
	memory  uint32
	time    uint32
	threads uint8
}

func (p argonParams) encode(salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.memory, p.time, p.threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

func decodeHash(encoded string) (p argonParams, salt, key []byte, err error) {
	fail := func(why string) (argonParams, []byte, []byte, error) {
		return argonParams{}, nil, nil, fmt.Errorf("%w: %s", ErrMalformedHash, why)
	}
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return fail("not of the form $argon2id$v=19$m=...,t=...,p=...$salt$hash")
	}
	if parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return fail("unsupported version " + parts[2])
	}
	// Sscanf ignores trailing text; printing the values back must give the
	// field exactly, so "m=019456" or "p=1,x=2" are refused.
	var m, t, th uint64
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &th); err != nil ||
		fmt.Sprintf("m=%d,t=%d,p=%d", m, t, th) != parts[3] {
		return fail("bad parameters " + parts[3])
	}
	if th < 1 || th > maxThreads || t < 1 || t > maxTime || m < 8*th || m > maxMemory {
		return fail("parameters out of range " + parts[3])
	}
	p = argonParams{memory: uint32(m), time: uint32(t), threads: uint8(th)}
	b64 := base64.RawStdEncoding.Strict()
	if salt, err = b64.DecodeString(parts[4]); err != nil || len(salt) < 8 {
		return fail("bad salt")
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) < 16 || len(key) > 64 {
		return fail("bad hash")
	}
	return p, salt, key, nil
}
