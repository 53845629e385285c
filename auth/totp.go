package auth

import (
	"crypto/subtle"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// totpPeriod is the TOTP time step every authenticator app assumes.
const totpPeriod = 30

// NewTOTP makes a TOTP secret for account (RFC 6238: SHA-1, 6 digits, 30 s
// steps, what every authenticator app understands) and the otpauth:// URI
// to show as a QR code.
func NewTOTP(issuer, account string) (secret, uri string, err error) {
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      issuer,
		AccountName: account,
		Period:      totpPeriod,
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		return "", "", fmt.Errorf("auth: making a TOTP secret: %w", err)
	}
	return key.Secret(), key.URL(), nil
}

// CheckTOTP reports whether code is the TOTP code of secret at now, or one
// step before or after (clocks drift). Spaces in code are ignored. On
// success it returns the time step (Unix seconds / 30) that matched: the
// caller must store it and refuse codes of that step or earlier, because a
// code stays valid for up to 90 s and could otherwise be replayed.
func CheckTOTP(secret, code string, now time.Time) (step int64, ok bool) {
	code = strings.ReplaceAll(code, " ", "")
	if len(code) != otp.DigitsSix.Length() {
		return 0, false
	}
	current := now.Unix() / totpPeriod
	matched := 0
	// Every candidate is computed and compared, so the time taken does not
	// say which step (if any) matched.
	for s := current - 1; s <= current+1; s++ {
		want, err := hotp.GenerateCodeCustom(secret, uint64(s), hotp.ValidateOpts{
			Digits:    otp.DigitsSix,
			Algorithm: otp.AlgorithmSHA1,
		})
		if err != nil {
			return 0, false // a secret that does not decode matches nothing
		}
		eq := subtle.ConstantTimeCompare([]byte(want), []byte(code))
		step = int64(subtle.ConstantTimeSelect(eq, int(s), int(step)))
		matched |= eq
	}
	if matched == 0 {
		return 0, false
	}
	return step, true
}
