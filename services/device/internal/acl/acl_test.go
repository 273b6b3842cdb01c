package acl_test

import (
	"testing"

	"github.com/comfortech/platform/services/device/internal/acl"
)

func TestAllowed(t *testing.T) {
	t.Parallel()
	const id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	const other = "0190a1b2-c3d4-7e5f-8a9b-ffffffffffff"
	d := "devices/" + id + "/"
	cases := []struct {
		topic string
		write bool
		want  bool
	}{
		{d + "telemetry", true, true},
		{d + "state/reported", true, true},
		{d + "commands/c1/result", true, true},
		{d + "status", true, true},
		{d + "events", true, true},
		{d + "telemetry", false, false},
		{d + "state/desired", true, false},
		{d + "commands/c1", true, false},
		{d + "commands/+/result", true, false},
		{d + "commands//result", true, false},
		{d + "commands/a+b/result", true, false},
		{d + "telemetry/extra", true, false},
		{d + "#", true, false},
		{d + "state/desired", false, true},
		{d + "commands/+", false, true},
		{d + "commands/c1", false, true},
		{d + "commands/#", false, false},
		{d + "commands/+/result", false, false},
		{d + "#", false, false},
		{d + "+", false, false},
		{d + "state/+", false, false},
		{"devices/" + other + "/telemetry", true, false},
		{"devices/" + other + "/state/desired", false, false},
		{"devices/+/state/desired", false, false},
		{"devices/#", false, false},
		{"#", false, false},
		{"$share/g/" + d + "state/desired", false, false},
		{"$SYS/broker/uptime", false, false},
		{"devices/" + id, true, false},
		{"other/" + id + "/telemetry", true, false},
	}
	for _, c := range cases {
		if got := acl.Allowed(id, c.topic, c.write); got != c.want {
			t.Errorf("Allowed(%q, write=%v) = %v, want %v", c.topic, c.write, got, c.want)
		}
	}
}

func TestAllowedRejectsBadIDs(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"", "+", "#", "a/b", "$x"} {
		if acl.Allowed(id, "devices/"+id+"/telemetry", true) {
			t.Errorf("id %q allowed", id)
		}
	}
}

func TestFilters(t *testing.T) {
	t.Parallel()
	pub, sub := acl.Filters("x")
	if len(pub) != len(acl.Publish) || pub[0] != "devices/x/telemetry" {
		t.Errorf("publish = %v", pub)
	}
	if len(sub) != len(acl.Subscribe) || sub[1] != "devices/x/commands/+" {
		t.Errorf("subscribe = %v", sub)
	}
}
