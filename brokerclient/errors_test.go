package brokerclient

import (
	"errors"
	"strings"
	"testing"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
)

func TestConnectErrorSentences(t *testing.T) {
	t.Parallel()
	s, err := Config{URL: "mqtt://broker.example.com", Username: "portholed"}.validate()
	if err != nil {
		t.Fatal(err)
	}
	refusal := func(code byte) error {
		return autopaho.NewConnackError(errors.New("failed to connect to server"), &paho.Connack{ReasonCode: code})
	}
	tests := []struct {
		name      string
		err       error
		want      string
		permanent bool
		refused   bool
	}{
		{"not authorized", refusal(0x87), `the MQTT broker at mqtt://broker.example.com:1883 refused portholed's login as "portholed": not authorized (reason code 0x87)`, true, true},
		{"bad password", refusal(0x86), "bad user name or password", true, true},
		{"busy", refusal(0x89), "server busy", false, false},
		{"EOF", errors.New("x: EOF"), "cannot reach", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, permanent := s.connectError(tt.err)
			if !strings.Contains(got.Error(), tt.want) || !strings.HasPrefix(got.Error(), "brokerclient: ") {
				t.Errorf("connectError = %q; want it to say %q", got, tt.want)
			}
			if permanent != tt.permanent {
				t.Errorf("permanent = %v; want %v", permanent, tt.permanent)
			}
			if errors.Is(got, ErrLoginRefused) != tt.refused {
				t.Errorf("errors.Is(ErrLoginRefused) = %v; want %v", !tt.refused, tt.refused)
			}
			if !errors.Is(got, tt.err) {
				t.Error("the cause is not in the chain")
			}
		})
	}
}
