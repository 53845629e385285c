package agentrecord

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config bounds what session recordings may take of the device's
// disk (key recordings in the owner's config). Every zero value is a default.
//
//	recordings:
//	  max_session: 64MiB   # terminal and command output kept per session
//	  max_events: 16MiB    # events.jsonl per session (commands, files, forwards)
//	  max_total: 512MiB    # all sessions together; the oldest go first
//	  keep: 30d            # sessions that ended longer ago are deleted
type Config struct {
	// MaxSession caps the output recorded for one session, all its
	// asciicasts together. Past it the recordings stop with a marker
	// ("[porthole: recording truncated at 64 MiB]"). Zero: 64 MiB.
	//
	// Reaching any cap (this one, MaxEvents or MaxTotal) fails the
	// session closed: what is not recorded may not happen, so new
	// shells, commands, file operations and forwards are refused, with
	// the reason, terminals and running forwards are ended, and so is
	// the input to running commands (Recordings.Full); a command without
	// a terminal may finish sending its output, which past the cap is
	// counted, not kept (as SFTP's file contents are), so that
	// `porthole ssh dev -- cat big.log` works. The owner finds the cap in
	// agent.log. The engineer may open a new session.
	MaxSession ByteSize `yaml:"max_session"`
	// MaxEvents caps one session's events.jsonl, which is small per event
	// and so may be capped more generously; past it one line says so,
	// and at most 16 KiB more record how what was running ended (past
	// that the session is ended). Zero: 16 MiB.
	MaxEvents ByteSize `yaml:"max_events"`
	// MaxTotal caps all recordings together. The oldest finished sessions
	// are deleted when the agent starts, after each session, and before a
	// new one so that it has room for max_session + max_events; sessions
	// being recorded stop recording when it is reached. Zero: 512 MiB.
	MaxTotal ByteSize `yaml:"max_total"`
	// Keep is how long recordings are kept after their session ended.
	// Zero: 30 days.
	Keep Age `yaml:"keep"`
}

// Defaults of Config.
const (
	DefaultMaxSession ByteSize = 64 << 20
	DefaultMaxEvents  ByteSize = 16 << 20
	DefaultMaxTotal   ByteSize = 512 << 20
	DefaultKeep       Age      = Age(30 * 24 * time.Hour)
)

// minRecordCap keeps the caps big enough to hold a header and a marker.
const minRecordCap = 1 << 10

func (c Config) maxSession() int64 {
	return int64(orSize(c.MaxSession, DefaultMaxSession))
}
func (c Config) maxEvents() int64 {
	return int64(orSize(c.MaxEvents, DefaultMaxEvents))
}
func (c Config) maxTotal() int64 { return int64(orSize(c.MaxTotal, DefaultMaxTotal)) }
func (c Config) keep() time.Duration {
	if c.Keep <= 0 {
		return time.Duration(DefaultKeep)
	}
	return time.Duration(c.Keep)
}

func orSize(s, def ByteSize) ByteSize {
	if s <= 0 {
		return def
	}
	return s
}

// Validate checks the caps against each other.
func (c Config) Validate() error {
	if c.MaxSession < 0 || c.MaxEvents < 0 || c.MaxTotal < 0 || c.Keep < 0 {
		return errors.New("recordings: sizes and keep cannot be negative")
	}
	for _, s := range []struct {
		key string
		v   ByteSize
	}{{"max_session", c.MaxSession}, {"max_events", c.MaxEvents}} {
		if s.v != 0 && s.v < minRecordCap {
			return fmt.Errorf("recordings.%s: %v is too small to record anything; give at least 1KiB", s.key, s.v)
		}
	}
	if need := c.maxSession() + c.maxEvents(); c.maxTotal() < need {
		return fmt.Errorf("recordings.max_total (%v) must leave room for one whole session, max_session + max_events (%v): raise it or lower those",
			ByteSize(c.maxTotal()), ByteSize(need))
	}
	return nil
}

// ByteSize is a number of bytes, written in the config as a plain number
// or with a unit: 512KiB, 64MiB, 1GiB (K, M and G mean the same), or
// 500kB, 64MB, 1GB (powers of 1000).
type ByteSize int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"kB", 1e3}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40},
	{"B", 1},
}

// ParseByteSize reads a size such as "64MiB", "500MB" or "1048576".
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if num, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n < 0 || t == "" || strings.ContainsAny(t, "eEinxX") {
		return 0, fmt.Errorf("%q is not a size; write it like 64MiB, 512MiB or 1GiB", s)
	}
	if v := n * float64(mult); v < 1<<62 {
		return ByteSize(v), nil
	}
	return 0, fmt.Errorf("%q is too large", s)
}

// UnmarshalYAML reads a size from the config.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return fmt.Errorf("line %d: %q is not a size; write it like 64MiB, 512MiB or 1GiB", n.Line, n.Value)
	}
	*b = v
	return nil
}

// String writes the size in the largest binary unit it reaches, to a
// tenth: "64MiB", "1.5GiB", "900B".
func (b ByteSize) String() string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if int64(b) >= u.mult {
			s := strconv.FormatFloat(float64(b)/float64(u.mult), 'f', 1, 64)
			return strings.TrimSuffix(s, ".0") + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// Age is a span of time written in the config as a Go duration (36h,
// 90m) or in days and weeks: 30d, 2w.
type Age time.Duration

// ParseAge reads an age such as "30d", "2w" or "12h".
func ParseAge(s string) (Age, error) {
	t := strings.TrimSpace(s)
	for _, u := range []struct {
		suffix string
		d      time.Duration
	}{{"d", 24 * time.Hour}, {"w", 7 * 24 * time.Hour}} {
		if num, ok := strings.CutSuffix(t, u.suffix); ok {
			n, err := strconv.ParseFloat(num, 64)
			// 1e5 weeks would overflow a time.Duration: the conversion
			// below would give a negative age on amd64, a huge one on arm64.
			if err != nil || n < 0 || n > 1e5 || n*float64(u.d) >= 1<<63 {
				break
			}
			return Age(n * float64(u.d)), nil
		}
	}
	d, err := time.ParseDuration(t)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a length of time; write it like 30d, 2w or 12h", s)
	}
	return Age(d), nil
}

// UnmarshalYAML reads an age from the config.
func (a *Age) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseAge(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return fmt.Errorf("line %d: %q is not a length of time; write it like 30d, 2w or 12h", n.Line, n.Value)
	}
	*a = v
	return nil
}

// String writes whole days as "30d", anything else as a Go duration.
func (a Age) String() string {
	d := time.Duration(a)
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}
