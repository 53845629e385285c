package brokerclient

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxTopicLen is MQTT's limit on a topic name or filter (a 16-bit length).
const maxTopicLen = 65535

// checkTopic refuses a topic name the broker would answer by dropping the
// connection, which would interrupt every other publish and subscription.
func checkTopic(topic string) error {
	if err := checkString(topic); err != nil {
		return fmt.Errorf("brokerclient: cannot publish to %q: %w", topic, err)
	}
	if strings.ContainsAny(topic, "+#") {
		return fmt.Errorf("brokerclient: cannot publish to %q: a topic name has no wildcards", topic)
	}
	return nil
}

// checkFilter refuses a topic filter that is malformed or already shared:
// the client adds the "$share/<group>/" itself.
func checkFilter(filter string) error {
	if err := checkString(filter); err != nil {
		return fmt.Errorf("brokerclient: cannot subscribe to %q: %w", filter, err)
	}
	if strings.HasPrefix(filter, "$") {
		return fmt.Errorf("brokerclient: cannot subscribe to %q: give the plain filter; the client shares it with the other server nodes itself", filter)
	}
	levels := strings.Split(filter, "/")
	for i, level := range levels {
		multi := level == "#" && i == len(levels)-1
		if !multi && level != "+" && strings.ContainsAny(level, "+#") {
			return fmt.Errorf("brokerclient: cannot subscribe to %q: + and # must fill a whole level, and # only the last", filter)
		}
	}
	return nil
}

func checkString(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("it is empty")
	case len(s) > maxTopicLen:
		return fmt.Errorf("it is longer than %d bytes", maxTopicLen)
	case !utf8.ValidString(s) || strings.ContainsRune(s, 0):
		return fmt.Errorf("it is not valid UTF-8 without NUL")
	}
	return nil
}

// matches reports whether topic matches the (valid) filter, with MQTT's
// rules: + is one level, # the rest (including none), and a topic starting
// with $ is never matched by a wildcard in the first level.
func matches(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	for {
		fl, frest, fmore := strings.Cut(filter, "/")
		if fl == "#" {
			return true
		}
		tl, trest, tmore := strings.Cut(topic, "/")
		if fl != "+" && fl != tl {
			return false
		}
		switch {
		case !fmore && !tmore:
			return true
		case !tmore:
			return frest == "#" // "a/#" matches "a"
		case !fmore:
			return false
		}
		filter, topic = frest, trest
	}
}
