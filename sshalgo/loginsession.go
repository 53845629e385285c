package sshalgo

import (
	"bytes"
	"slices"
)

// A login session is a session channel that the device's SSH server opens
// itself as soon as the engineer has logged in, of type
// LoginSessionChannel, for a client whose identification line (RFC 4253
// §4.2) carries the word LoginSessionWord among its comments; the server
// says that it offers one with the same word in its own line. The client
// takes it and sends its requests (terminal, environment, command) on it
// at once, where opening a channel of its own would cost a round trip over
// both links, the engineer's and the device's. Either end that lacks the
// word gets what it always had: the client opens its channel.
const (
	LoginSessionChannel = "login-session@porthole"
	LoginSessionWord    = "login-session"
)

// OffersLoginSession reports whether an SSH identification line (without
// its CR LF, as x/crypto/ssh gives it) carries LoginSessionWord among its
// comments.
func OffersLoginSession(version []byte) bool {
	_, comments, ok := bytes.Cut(version, []byte(" "))
	return ok && slices.ContainsFunc(bytes.Fields(comments), func(w []byte) bool { return string(w) == LoginSessionWord })
}
