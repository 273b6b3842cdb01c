// Package acl decides which MQTT topics a device may use: only its own
// subtree `devices/{id}/`, in the direction of the protocol
// (ARCHITECTURE.md §6). It is pure so that every broker integration (the
// embedded broker's hook, BrokerAuthService, the Mosquitto roles) shares
// one definition.
package acl

import "strings"

// Prefix is the root of every device's subtree.
const Prefix = "devices/"

// Publish lists the topics a device publishes to, relative to its
// subtree; "+" stands for exactly one non-empty level (a command id).
var Publish = []string{"telemetry", "state/reported", "commands/+/result", "status", "events"}

// Subscribe lists the topic filters a device subscribes to, relative to
// its subtree; "+" matches one level, so the filter may be "+" itself or a
// concrete command id.
var Subscribe = []string{"state/desired", "commands/+"}

// ValidDeviceID reports whether id can name a subtree: non-empty and free
// of the characters MQTT gives a meaning to.
func ValidDeviceID(id string) bool {
	return id != "" && !strings.ContainsAny(id, "/+#$\x00")
}

// Allowed reports whether device id may publish to topic (write) or
// subscribe to the topic filter topic (!write).
func Allowed(id, topic string, write bool) bool {
	if !ValidDeviceID(id) {
		return false
	}
	rest, ok := strings.CutPrefix(topic, Prefix+id+"/")
	if !ok {
		return false
	}
	patterns := Subscribe
	if write {
		patterns = Publish
	}
	for _, p := range patterns {
		if match(p, rest, !write) {
			return true
		}
	}
	return false
}

// match reports whether the relative topic rest fits pattern, where "+"
// in the pattern stands for one non-empty level. A literal "+" in rest is
// accepted at a "+" position only for filters; "#" never is.
func match(pattern, rest string, filter bool) bool {
	pl := strings.Split(pattern, "/")
	rl := strings.Split(rest, "/")
	if len(pl) != len(rl) {
		return false
	}
	for i, p := range pl {
		r := rl[i]
		if strings.ContainsRune(r, '#') {
			return false
		}
		if p == "+" {
			if r == "" || (r == "+" && !filter) || (r != "+" && strings.ContainsRune(r, '+')) {
				return false
			}
			continue
		}
		if r != p {
			return false
		}
	}
	return true
}

// Filters returns the absolute topic filters of device id for a broker
// that stores ACLs as patterns (Mosquitto's dynamic security): the ones
// it may publish to and the ones it may subscribe to.
func Filters(id string) (publish, subscribe []string) {
	for _, p := range Publish {
		publish = append(publish, Prefix+id+"/"+p)
	}
	for _, s := range Subscribe {
		subscribe = append(subscribe, Prefix+id+"/"+s)
	}
	return publish, subscribe
}
