package control

import (
	"strings"
	"testing"
)

// badNames try to add a level, a wildcard or a system topic to a topic.
var badNames = []string{
	"", "a/b", "/", "+", "#", "a+", "a#", "$SYS", "..", "A", "Dev1", "a b", "a\x00b", "a\nb", "é",
	strings.Repeat("a", 64),
}

func TestTopics(t *testing.T) {
	for _, tt := range []struct {
		f     func(string, string) (string, error)
		want  string
		parse func(string) (string, string, bool)
	}{
		{CmdTopic, "porthole/v1/acme/dev-1/cmd", ParseCmdTopic},
		{StateTopic, "porthole/v1/acme/dev-1/state", ParseStateTopic},
	} {
		got, err := tt.f("acme", "dev-1")
		if err != nil || got != tt.want {
			t.Errorf("topic = %q, %v; want %q", got, err, tt.want)
		}
		if fleet, device, ok := tt.parse(got); !ok || fleet != "acme" || device != "dev-1" {
			t.Errorf("parse(%q) = %q, %q, %v; want acme, dev-1, true", got, fleet, device, ok)
		}
	}
	long := strings.Repeat("a", 63)
	if _, err := StateTopic(long, long); err != nil {
		t.Errorf("StateTopic with 63-character names: %v", err)
	}
}

func TestTopicsRefuseInjection(t *testing.T) {
	for _, bad := range badNames {
		for _, f := range []func(string, string) (string, error){CmdTopic, StateTopic} {
			if got, err := f(bad, "dev1"); err == nil {
				t.Errorf("fleet %q gave topic %q; want an error", bad, got)
			}
			if got, err := f("acme", bad); err == nil {
				t.Errorf("device %q gave topic %q; want an error", bad, got)
			}
		}
		if got, err := SharedStateFilter(bad); err == nil {
			t.Errorf("group %q gave filter %q; want an error", bad, got)
		}
	}
}

func TestParseStateTopicRefuses(t *testing.T) {
	for _, topic := range []string{
		"",
		"porthole/v1/acme/dev1/cmd",
		"porthole/v1/acme/dev1/state/extra",
		"porthole/v1/acme/dev1/x/state",
		"porthole/v1/acme/state",
		"porthole/v1/+/dev1/state",
		"porthole/v1/acme/+/state",
		"porthole/v1/acme/#",
		"porthole/v1/Acme/dev1/state",
		"porthole/v1//dev1/state",
		"porthole/v2/acme/dev1/state",
		"/porthole/v1/acme/dev1/state",
		"$share/g/porthole/v1/acme/dev1/state",
		"porthole/v1/" + strings.Repeat("a", 64) + "/dev1/state",
	} {
		if fleet, device, ok := ParseStateTopic(topic); ok {
			t.Errorf("ParseStateTopic(%q) = %q, %q, true; want false", topic, fleet, device)
		}
	}
}

func TestSharedStateFilter(t *testing.T) {
	got, err := SharedStateFilter("portholed")
	if want := "$share/portholed/porthole/v1/+/+/state"; err != nil || got != want {
		t.Errorf("SharedStateFilter = %q, %v; want %q", got, err, want)
	}
}
