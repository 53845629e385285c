// Package awsiot_test checks the shipped AWS IoT Core policies against
// Porthole's topics, with a small model of how AWS evaluates them.
package awsiot_test

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/porthole/porthole/brokerclient"
	"github.com/porthole/porthole/control"
)

// arn begins every resource; the README has the operator fill it in.
const arn = "arn:aws:iot:REGION:ACCOUNT_ID:"

// commonName is the certificate policy variable the device policy uses.
const commonName = "${iot:Certificate.Subject.CommonName}"

type policy struct {
	Version   string
	Statement []statement
}

type statement struct {
	Effect   string
	Action   stringList
	Resource stringList
}

// stringList is a policy field that may be one string or a list.
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = []string{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(l))
}

func loadPolicy(t *testing.T, name string) policy {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p policy
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return p
}

// allows reports whether p lets a client whose certificate has common name
// cn do action on resource. As AWS does, a common name holding a wildcard
// character is not substituted (the statement then matches nothing), and *
// and ? in a resource match any characters (across levels) and any one
// character; MQTT's + and # are plain characters there.
func (p policy) allows(cn, action, resource string) bool {
	for _, st := range p.Statement {
		if st.Effect != "Allow" || !slices.Contains(st.Action, action) {
			continue
		}
		for _, r := range st.Resource {
			if !strings.ContainsAny(cn, "*$+?#") {
				r = strings.ReplaceAll(r, commonName, cn)
			}
			if glob(r).MatchString(resource) {
				return true
			}
		}
	}
	return false
}

func glob(pattern string) *regexp.Regexp {
	re := regexp.QuoteMeta(pattern)
	re = strings.NewReplacer(`\*`, `.*`, `\?`, `.`).Replace(re)
	return regexp.MustCompile("^" + re + "$")
}

func TestPoliciesAreWellFormed(t *testing.T) {
	actions := []string{"iot:Connect", "iot:Publish", "iot:RetainPublish", "iot:Subscribe", "iot:Receive"}
	for _, name := range []string{"device-policy.json", "server-policy.json"} {
		p := loadPolicy(t, name)
		if p.Version != "2012-10-17" {
			t.Errorf("%s: Version %q; want 2012-10-17", name, p.Version)
		}
		for _, st := range p.Statement {
			if st.Effect != "Allow" {
				t.Errorf("%s: Effect %q; want only Allow statements", name, st.Effect)
			}
			for _, a := range st.Action {
				if !slices.Contains(actions, a) {
					t.Errorf("%s: action %s; want only %v", name, a, actions)
				}
			}
			for _, r := range st.Resource {
				if !strings.HasPrefix(r, arn) {
					t.Errorf("%s: resource %s does not start %s", name, r, arn)
				}
			}
		}
	}
}

// TestPolicyResourcesNameOurTopics: with the variables and wildcards filled
// in with one device's names, every resource is exactly one of Porthole's
// topics (as package control builds them) or client ids.
func TestPolicyResourcesNameOurTopics(t *testing.T) {
	cmd, err := control.CmdTopic("acme", "dev1")
	if err != nil {
		t.Fatal(err)
	}
	state, _ := control.StateTopic("acme", "dev1")
	shared, _ := control.SharedStateFilter(brokerclient.DefaultShareGroup)
	user, _ := control.DeviceUsername("acme", "dev1")
	tests := []struct {
		file string
		want []string
	}{
		{"device-policy.json", []string{"client/" + user, "topicfilter/" + cmd, "topic/" + cmd, "topic/" + state}},
		// The shared "topic" in iot:Receive is what AWS's own shared
		// subscription sample grants; no message can have that topic.
		{"server-policy.json", []string{"client/" + brokerclient.ClientIDPrefix + "acme", "topic/" + cmd, "topicfilter/" + shared, "topic/" + state, "topic/" + shared}},
	}
	for _, tt := range tests {
		for _, st := range loadPolicy(t, tt.file).Statement {
			for _, r := range st.Resource {
				r = strings.TrimPrefix(strings.ReplaceAll(r, commonName, user), arn)
				r = strings.Replace(strings.Replace(r, "*", "acme", 1), "*", "dev1", 1)
				if !slices.Contains(tt.want, r) {
					t.Errorf("%s: resource %s names none of %v", tt.file, r, tt.want)
				}
			}
		}
	}
}

func TestDevicePolicy(t *testing.T) {
	p := loadPolicy(t, "device-policy.json")
	tests := []struct {
		cn, action, resource string
		want                 bool
	}{
		{"acme/dev1", "iot:Connect", "client/acme/dev1", true},
		{"acme/dev1", "iot:Subscribe", "topicfilter/porthole/v1/acme/dev1/cmd", true},
		{"acme/dev1", "iot:Receive", "topic/porthole/v1/acme/dev1/cmd", true},
		{"acme/dev1", "iot:Publish", "topic/porthole/v1/acme/dev1/state", true},
		{"acme/dev1", "iot:RetainPublish", "topic/porthole/v1/acme/dev1/state", true},

		// Another client id: it could knock that client off.
		{"acme/dev1", "iot:Connect", "client/acme/dev2", false},
		{"acme/dev1", "iot:Connect", "client/portholed-node1", false},
		// Other devices' commands, wildcards, shares, states.
		{"acme/dev1", "iot:Subscribe", "topicfilter/porthole/v1/acme/dev2/cmd", false},
		{"acme/dev1", "iot:Subscribe", "topicfilter/porthole/v1/acme/+/cmd", false},
		{"acme/dev1", "iot:Subscribe", "topicfilter/porthole/v1/#", false},
		{"acme/dev1", "iot:Subscribe", "topicfilter/#", false},
		{"acme/dev1", "iot:Subscribe", "topicfilter/$share/x/porthole/v1/acme/dev1/cmd", false},
		{"acme/dev1", "iot:Subscribe", "topicfilter/porthole/v1/acme/dev1/state", false},
		{"acme/dev1", "iot:Receive", "topic/porthole/v1/acme/dev2/cmd", false},
		{"acme/dev1", "iot:Receive", "topic/porthole/v1/acme/dev1/state", false},
		// Forged states and commands.
		{"acme/dev1", "iot:Publish", "topic/porthole/v1/acme/dev2/state", false},
		{"acme/dev1", "iot:Publish", "topic/porthole/v1/acme/dev1/cmd", false},
		{"acme/dev1", "iot:Publish", "topic/porthole/v1/acme/dev1/state/x", false},
		// A certificate naming a wildcard gets nothing.
		{"acme/+", "iot:Subscribe", "topicfilter/porthole/v1/acme/+/cmd", false},
		{"acme/+", "iot:Receive", "topic/porthole/v1/acme/dev1/cmd", false},
		{"acme/*", "iot:Receive", "topic/porthole/v1/acme/dev1/cmd", false},
		// A certificate AWS made itself (CN "AWS IoT Certificate") names no
		// Porthole topic.
		{"AWS IoT Certificate", "iot:Receive", "topic/porthole/v1/acme/dev1/cmd", false},
	}
	for _, tt := range tests {
		if got := p.allows(tt.cn, tt.action, arn+tt.resource); got != tt.want {
			t.Errorf("CN=%s %s %s: allowed = %v; want %v", tt.cn, tt.action, tt.resource, got, tt.want)
		}
	}
}

func TestServerPolicy(t *testing.T) {
	p := loadPolicy(t, "server-policy.json")
	tests := []struct {
		action, resource string
		want             bool
	}{
		{"iot:Connect", "client/portholed-node1-0123456789abcdef", true},
		{"iot:Publish", "topic/porthole/v1/acme/dev1/cmd", true},
		{"iot:Subscribe", "topicfilter/$share/portholed/porthole/v1/+/+/state", true},
		{"iot:Receive", "topic/porthole/v1/acme/dev1/state", true},

		{"iot:Connect", "client/acme/dev1", false},
		{"iot:Publish", "topic/porthole/v1/acme/dev1/state", false},
		{"iot:RetainPublish", "topic/porthole/v1/acme/dev1/cmd", false},
		{"iot:Subscribe", "topicfilter/porthole/v1/+/+/cmd", false},
		{"iot:Subscribe", "topicfilter/#", false},
		{"iot:Receive", "topic/porthole/v1/acme/dev1/cmd", false},
		{"iot:Receive", "topic/other/thing", false},
	}
	for _, tt := range tests {
		if got := p.allows("portholed", tt.action, arn+tt.resource); got != tt.want {
			t.Errorf("%s %s: allowed = %v; want %v", tt.action, tt.resource, got, tt.want)
		}
	}
}
