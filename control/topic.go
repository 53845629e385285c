package control

import (
	"fmt"
	"strings"
)

// TopicPrefix begins every Porthole topic; the version lets a future
// protocol live beside this one on the same broker.
const TopicPrefix = "porthole/v1/"

// StateFilter matches every device's state topic.
const StateFilter = TopicPrefix + "+/+/state"

const (
	cmdLeaf   = "cmd"
	stateLeaf = "state"
)

// CmdTopic is the topic the server publishes commands for one device on,
// "porthole/v1/<fleet>/<device>/cmd". It fails if fleet or device is not a
// [ValidName].
func CmdTopic(fleet, device string) (string, error) { return topic(fleet, device, cmdLeaf) }

// StateTopic is the topic one device publishes its state on,
// "porthole/v1/<fleet>/<device>/state". It fails if fleet or device is not a
// [ValidName].
func StateTopic(fleet, device string) (string, error) { return topic(fleet, device, stateLeaf) }

// ParseStateTopic splits a state topic into its fleet and device; ok is false
// for any other topic, including one whose names are not valid.
func ParseStateTopic(topic string) (fleet, device string, ok bool) {
	return parseTopic(topic, stateLeaf)
}

// ParseCmdTopic splits a command topic into its fleet and device; ok is false
// for any other topic, including one whose names are not valid.
func ParseCmdTopic(topic string) (fleet, device string, ok bool) {
	return parseTopic(topic, cmdLeaf)
}

// SharedStateFilter is the MQTT 5 shared subscription through which several
// server nodes split the state topics among them, each message going to one
// node of group: "$share/<group>/porthole/v1/+/+/state". The group must be a
// [ValidName].
func SharedStateFilter(group string) (string, error) {
	if !ValidName(group) {
		return "", fmt.Errorf("control: share group %q is not allowed: use 1 to 63 of a-z, 0-9 and -", group)
	}
	return "$share/" + group + "/" + StateFilter, nil
}

func topic(fleet, device, leaf string) (string, error) {
	for _, n := range []string{fleet, device} {
		if !ValidName(n) {
			return "", fmt.Errorf("control: %q is not a fleet or device name (1 to 63 of a-z, 0-9 and -)", n)
		}
	}
	return TopicPrefix + fleet + "/" + device + "/" + leaf, nil
}

func parseTopic(topic, leaf string) (fleet, device string, ok bool) {
	rest, ok := strings.CutPrefix(topic, TopicPrefix)
	if !ok {
		return "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[2] != leaf || !ValidName(parts[0]) || !ValidName(parts[1]) {
		return "", "", false
	}
	return parts[0], parts[1], true
}
