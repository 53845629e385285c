package control

import (
	"errors"
	"fmt"
	"strings"
)

// Kinds of state message a device publishes on its state topic.
const (
	StateOnline     = "online"      // connected and listening for commands
	StateOffline    = "offline"     // the last will: the connection dropped
	StateTunnelUp   = "tunnel_up"   // "tunnel_up <session>": the relay forward is ready
	StateTunnelDown = "tunnel_down" // "tunnel_down <session> <reason>": the session ended
	StateRejected   = "rejected"    // "rejected <reason>": a command failed Verify
	// StateWaitingConsent is "waiting_consent <session>": the device
	// verified an open but its owner has yet to approve it (approve
	// consent); tunnel_up or tunnel_down follows.
	StateWaitingConsent = "waiting_consent"
)

// stateWords says which words follow a kind; ok is false for an unknown
// kind.
func stateWords(kind string) (session, reason, ok bool) {
	switch kind {
	case StateOnline, StateOffline:
		return false, false, true
	case StateTunnelUp, StateWaitingConsent:
		return true, false, true
	case StateTunnelDown:
		return true, true, true
	case StateRejected:
		return false, true, true
	}
	return false, false, false
}

// maxStateLen is the longest valid state message.
const maxStateLen = len(StateTunnelDown) + 2*(1+maxTokenLen)

// State is one message on a state topic: a kind, then the session and the
// reason when the kind has them, separated by single spaces. Session and
// Reason are ValidTokens, so a message always splits back the same way.
type State struct {
	Kind    string
	Session string // tunnel_up, tunnel_down
	Reason  string // tunnel_down, rejected
}

// Marshal is the message's wire form, such as "tunnel_down s1 idle_timeout".
func (s State) Marshal() ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	words := []string{s.Kind}
	for _, w := range []string{s.Session, s.Reason} {
		if w != "" {
			words = append(words, w)
		}
	}
	return []byte(strings.Join(words, " ")), nil
}

// ParseState reads a state message; it accepts exactly what Marshal writes.
func ParseState(msg []byte) (State, error) {
	if len(msg) > maxStateLen {
		return State{}, fmt.Errorf("control: state message of %d bytes is longer than %d", len(msg), maxStateLen)
	}
	words := strings.Split(string(msg), " ")
	s := State{Kind: words[0]}
	session, reason, ok := stateWords(s.Kind)
	if !ok {
		return State{}, fmt.Errorf("control: unknown state %q", s.Kind)
	}
	rest := words[1:]
	if session && len(rest) > 0 {
		s.Session, rest = rest[0], rest[1:]
	}
	if reason && len(rest) > 0 {
		s.Reason, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 {
		return State{}, fmt.Errorf("control: state %q has extra words", msg)
	}
	if err := s.check(); err != nil {
		return State{}, err
	}
	return s, nil
}

// check: a known kind with exactly its words, each a ValidToken.
func (s State) check() error {
	session, reason, ok := stateWords(s.Kind)
	if !ok {
		return fmt.Errorf("control: unknown state %q", s.Kind)
	}
	if err := checkWord("session", s.Session, session); err != nil {
		return fmt.Errorf("control: state %s: %w", s.Kind, err)
	}
	if err := checkWord("reason", s.Reason, reason); err != nil {
		return fmt.Errorf("control: state %s: %w", s.Kind, err)
	}
	return nil
}

func checkWord(what, w string, wanted bool) error {
	switch {
	case !wanted && w != "":
		return fmt.Errorf("takes no %s", what)
	case wanted && w == "":
		return errors.New(what + " is missing")
	case wanted && !ValidToken(w):
		return fmt.Errorf("%s %q is not 1 to 64 of A-Z, a-z, 0-9, '.', '_', '-'", what, w)
	}
	return nil
}
