package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/argon2"
)

func TestPassword(t *testing.T) {
	h, err := HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash = %q; want argon2id with OWASP parameters", h)
	}
	for _, tt := range []struct {
		pw   string
		want bool
	}{
		{"correct horse battery staple", true},
		{"correct horse battery stapl", false},
		{"Correct horse battery staple", false},
		{"", false},
	} {
		ok, err := CheckPassword(h, tt.pw)
		if err != nil || ok != tt.want {
			t.Errorf("CheckPassword(%q) = %v, %v; want %v", tt.pw, ok, err, tt.want)
		}
	}
	h2, _ := HashPassword("correct horse battery staple")
	if h == h2 {
		t.Error("two hashes of one password are equal: salt missing")
	}
}

func TestCheckPasswordUsesStoredParameters(t *testing.T) {
	// A hash made with other parameters (say, before they were raised)
	// still checks.
	p := argonParams{memory: 64, time: 1, threads: 2}
	salt := []byte("0123456789abcdef")
	enc := p.encode(salt, argon2.IDKey([]byte("pw"), salt, p.time, p.memory, p.threads, 32))
	if ok, err := CheckPassword(enc, "pw"); !ok || err != nil {
		t.Errorf("CheckPassword with m=64,t=1,p=2 = %v, %v; want true", ok, err)
	}
}

func TestCheckPasswordMalformed(t *testing.T) {
	good := "$argon2id$v=19$m=19456,t=2,p=1$jeTfgY/xB8lPKd0LpY4glw$7Wl7uHBtgKiFYeyywFCl3pVye6zWM8ZZfDgKdajU1Kk"
	for _, tt := range []struct{ name, enc string }{
		{"empty", ""},
		{"plain text", "hunter2"},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", strings.Replace(good, "argon2id", "argon2i", 1)},
		{"old version", strings.Replace(good, "v=19", "v=16", 1)},
		{"missing field", strings.Replace(good, "$v=19", "", 1)},
		{"extra field", good + "$x"},
		{"leading zero", strings.Replace(good, "m=19456", "m=019456", 1)},
		{"extra parameter", strings.Replace(good, "p=1", "p=1,x=2", 1)},
		{"parameters reordered", strings.Replace(good, "m=19456,t=2", "t=2,m=19456", 1)},
		{"memory bomb", strings.Replace(good, "m=19456", "m=4294967295", 1)},
		{"endless", strings.Replace(good, "t=2", "t=100000", 1)},
		{"zero passes", strings.Replace(good, "t=2", "t=0", 1)},
		{"zero threads", strings.Replace(good, "p=1", "p=0", 1)},
		{"threads overflow", strings.Replace(good, "p=1", "p=257", 1)},
		{"negative", strings.Replace(good, "t=2", "t=-2", 1)},
		{"bad salt", strings.Replace(good, "jeTfgY/xB8lPKd0LpY4glw", "!!!", 1)},
		{"short salt", strings.Replace(good, "jeTfgY/xB8lPKd0LpY4glw", "AAAA", 1)},
		{"short hash", good[:strings.LastIndex(good, "$")+1] + "AAAA"},
		{"padded base64", good + "="},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := CheckPassword(tt.enc, "pw")
			if ok || !errors.Is(err, ErrMalformedHash) {
				t.Errorf("CheckPassword(%q) = %v, %v; want ErrMalformedHash", tt.enc, ok, err)
			}
		})
	}
}

func TestDummyHash(t *testing.T) {
	p, _, key, err := decodeHash(DummyHash)
	if err != nil {
		t.Fatal(err)
	}
	// The dummy must cost what a real check costs, or timing tells.
	if p != (argonParams{memory: argonMemory, time: argonTime, threads: argonThreads}) || len(key) != argonKeyLen {
		t.Errorf("DummyHash parameters = %+v, key %d bytes; want the current ones (regenerate it)", p, len(key))
	}
	for _, pw := range []string{"", "password", "correct horse battery staple"} {
		if ok, err := CheckPassword(DummyHash, pw); ok || err != nil {
			t.Errorf("CheckPassword(DummyHash, %q) = %v, %v; want false, nil", pw, ok, err)
		}
	}
}

func TestGeneratePassword(t *testing.T) {
	re := regexp.MustCompile(`^[` + passwordAlphabet + `]{5}(-[` + passwordAlphabet + `]{5}){3}$`)
	seen := map[string]bool{}
	var all strings.Builder
	for range 200 {
		pw := GeneratePassword()
		if !re.MatchString(pw) {
			t.Fatalf("GeneratePassword = %q; want four dash-separated groups of five", pw)
		}
		if seen[pw] {
			t.Fatalf("GeneratePassword repeated %q", pw)
		}
		seen[pw] = true
		all.WriteString(pw)
	}
	if strings.ContainsAny(all.String(), "01ilIoO") {
		t.Error("passwords contain look-alike characters")
	}
	// 200 passwords × 20 characters should use nearly all of the alphabet.
	for _, c := range passwordAlphabet {
		if !strings.ContainsRune(all.String(), c) {
			t.Errorf("character %q never used", c)
		}
	}
}

func TestTOTP(t *testing.T) {
	fresh, uri, err := NewTOTP("Porthole", "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"otpauth://totp/", "Porthole", "ann@example.com", "secret=" + fresh, "digits=6", "period=30", "algorithm=SHA1"} {
		if !strings.Contains(uri, want) {
			t.Errorf("URI %q lacks %q", uri, want)
		}
	}
	if code, _ := totp.GenerateCode(fresh, time.Now()); code == "" {
		t.Error("new secret makes no code")
	} else if _, ok := CheckTOTP(fresh, code, time.Now()); !ok {
		t.Errorf("CheckTOTP rejects the current code %s of a new secret", code)
	}

	// Fixed secrets and time keep the table deterministic: no chance
	// collision between codes can make it flaky.
	const secret = "JBSWY3DPEHPK3PXP"
	now := time.Unix(1_800_000_015, 0) // step 60,000,000, half way through
	step := now.Unix() / 30
	codeAt := func(s int64) string {
		// Codes as an authenticator app computes them, with pquerna's
		// validator-side generator.
		c, err := totp.GenerateCode(secret, time.Unix(s*30, 0))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tt := range []struct {
		name string
		code string
		ok   bool
		step int64
	}{
		{"previous step", codeAt(step - 1), true, step - 1},
		{"current step", codeAt(step), true, step},
		{"next step", codeAt(step + 1), true, step + 1},
		{"with spaces", codeAt(step)[:3] + " " + codeAt(step)[3:] + " ", true, step},
		{"two steps ago", codeAt(step - 2), false, 0},
		{"two steps ahead", codeAt(step + 2), false, 0},
		{"truncated", codeAt(step)[:5], false, 0},
		{"too long", codeAt(step) + "0", false, 0},
		{"empty", "", false, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := CheckTOTP(secret, tt.code, now)
			if ok != tt.ok || got != tt.step {
				t.Errorf("CheckTOTP(%q) = %d, %v; want %d, %v", tt.code, got, ok, tt.step, tt.ok)
			}
		})
	}
	if _, ok := CheckTOTP("not base32!", "123456", now); ok {
		t.Error("CheckTOTP accepted a code for an undecodable secret")
	}
	if _, ok := CheckTOTP("GEZDGNBVGY3TQOJQ", codeAt(step), now); ok {
		t.Error("CheckTOTP accepted another account's code")
	}
}

func TestNewSecret(t *testing.T) {
	re := regexp.MustCompile(`^pht_[a-z2-7]{52}$`) // 256 bits in base32
	s1, h1 := NewSecret("pht")
	s2, h2 := NewSecret("pht")
	if !re.MatchString(s1) {
		t.Errorf("NewSecret = %q; want pht_ and 52 base32 characters", s1)
	}
	if s1 == s2 || h1 == h2 {
		t.Error("two secrets are equal")
	}
	sum := sha256.Sum256([]byte(s1))
	if want := hex.EncodeToString(sum[:]); h1 != want || HashSecret(s1) != want {
		t.Errorf("hash = %s; want hex SHA-256 %s", h1, want)
	}
	if HashSecret(s1+"x") == h1 {
		t.Error("HashSecret ignores a changed secret")
	}
}
