package brokerclient

import "testing"

func TestMatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"porthole/v1/+/+/state", "porthole/v1/acme/dev1/state", true},
		{"porthole/v1/+/+/state", "porthole/v1/acme/dev1/cmd", false},
		{"porthole/v1/+/+/state", "porthole/v1/acme/state", false},
		{"porthole/v1/+/+/state", "porthole/v1/acme/dev1/state/x", false},
		{"porthole/v1/acme/+/state", "porthole/v1/other/dev1/state", false},
		{"porthole/#", "porthole/v1/acme/dev1/state", true},
		{"porthole/#", "porthole", true},
		{"porthole/v1/#", "porthole", false},
		{"#", "porthole/v1", true},
		{"#", "$SYS/broker", false},
		{"+/broker", "$SYS/broker", false},
		{"$SYS/#", "$SYS/broker", true},
		{"a/+", "a/", true},
		{"a/+", "a", false},
		{"a/b", "a/b", true},
		{"a/b", "a/bc", false},
		{"+", "a", true},
		{"+", "a/b", false},
	}
	for _, tt := range tests {
		if got := matches(tt.filter, tt.topic); got != tt.want {
			t.Errorf("matches(%q, %q) = %v; want %v", tt.filter, tt.topic, got, tt.want)
		}
	}
}

func TestCheckFilter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		filter string
		ok     bool
	}{
		{"porthole/v1/+/+/state", true},
		{"porthole/#", true},
		{"#", true},
		{"", false},
		{"porthole/#/state", false},
		{"porthole/st+te", false},
		{"porthole/state#", false},
		{"$share/g/porthole/v1/+/+/state", false},
		{"$SYS/#", false},
		{"a\x00b", false},
		{"\xff", false},
	}
	for _, tt := range tests {
		if err := checkFilter(tt.filter); (err == nil) != tt.ok {
			t.Errorf("checkFilter(%q) = %v; want ok %v", tt.filter, err, tt.ok)
		}
	}
}

func TestCheckTopic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		topic string
		ok    bool
	}{
		{"porthole/v1/acme/dev1/cmd", true},
		{"", false},
		{"porthole/v1/+/dev1/cmd", false},
		{"porthole/#", false},
		{"a\x00b", false},
	}
	for _, tt := range tests {
		if err := checkTopic(tt.topic); (err == nil) != tt.ok {
			t.Errorf("checkTopic(%q) = %v; want ok %v", tt.topic, err, tt.ok)
		}
	}
}
