package control

// Limits of the strings that travel in topics, commands and state messages.
const (
	maxNameLen  = 63 // fleet and device names, as the store keeps them
	maxTokenLen = 64 // session ids, reasons, nonces, share groups
	minNonceLen = 16 // a nonce shorter than this cannot hold 64+ random bits
)

// ValidName reports whether s is a fleet or device name: 1 to 63 of a-z, 0-9
// and '-'. Such a name cannot add a level to a topic or act as an MQTT
// wildcard.
func ValidName(s string) bool {
	return validChars(s, maxNameLen, func(c byte) bool {
		return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-'
	})
}

// ValidToken reports whether s can be a session id or a reason in a state
// message: 1 to 64 of A-Z, a-z, 0-9, '.', '_' and '-', so it is one word
// with no space, slash or wildcard.
func ValidToken(s string) bool {
	return validChars(s, maxTokenLen, func(c byte) bool {
		return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.'
	})
}

// validNonce: a token long enough to carry a random nonce.
func validNonce(s string) bool { return len(s) >= minNonceLen && ValidToken(s) }

func validChars(s string, maxLen int, ok func(byte) bool) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}
