package control

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestCapabilitiesCoverCommand fails when Command gains a field: an agent
// that predates it refuses commands carrying it, so it needs a
// capability (capabilities.go) the server can check before asking.
func TestCapabilitiesCoverCommand(t *testing.T) {
	known := map[string]string{ // JSON name → capability; "" for fields every agent knows
		"v": "", "type": "", "session": "", "fleet": "", "device": "", "relay": "", "ports": "",
		"idle_timeout_s": "", "max_duration_s": "", "not_after": "", "nonce": "",
		"relay2": CapRelay2, "policy": CapPolicy,
	}
	typ := reflect.TypeFor[Command]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		capability, ok := known[name]
		if !ok {
			t.Errorf("Command field %q has no capability: add one to capabilities.go and to this table", name)
			continue
		}
		if capability != "" && !slices.Contains(Capabilities(), capability) {
			t.Errorf("capability %q of field %q is not in Capabilities()", capability, name)
		}
	}
}

func TestNeeds(t *testing.T) {
	for _, tc := range []struct {
		cmd  Command
		need []string
	}{
		{Command{}, nil},
		{Command{Relay2: "a:1"}, []string{CapRelay2}},
		{Command{Policy: &Policy{}}, []string{CapPolicy}},
		{Command{Relay2: "a:1", Policy: &Policy{ConsentFloor: FloorManual}}, []string{CapRelay2, CapPolicy}},
	} {
		if got := tc.cmd.Needs(); !slices.Equal(got, tc.need) {
			t.Errorf("%+v needs %v; want %v", tc.cmd, got, tc.need)
		}
	}
	if got := Lacks([]string{CapRelay2}, []string{CapRelay2, CapPolicy}); !slices.Equal(got, []string{CapPolicy}) {
		t.Errorf("Lacks = %v", got)
	}
	if got := Lacks(Capabilities(), []string{CapRelay2, CapPolicy}); got != nil {
		t.Errorf("this build lacks %v", got)
	}
}
