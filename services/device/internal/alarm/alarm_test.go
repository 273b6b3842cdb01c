package alarm

import "testing"

func TestParse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body string
		ok         bool
		level      string
	}{
		{"full", `{"ts": 1700000000000, "type": "fault", "level": "error", "message": "E4"}`, true, "error"},
		{"default level of a known type", `{"ts": 1700000000000, "type": "co_detected"}`, true, "critical"},
		{"default level of an unknown type", `{"ts": 1700000000000, "type": "door_open"}`, true, "warning"},
		{"not json", `fault`, false, ""},
		{"no ts", `{"type": "fault"}`, false, ""},
		{"fractional ts", `{"ts": 1.5, "type": "fault"}`, false, ""},
		{"bad type", `{"ts": 1, "type": "Fault!"}`, false, ""},
		{"bad level", `{"ts": 1, "type": "fault", "level": "doom"}`, false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a, err := parse([]byte(c.body))
			if (err == nil) != c.ok || (c.ok && a.level != c.level) {
				t.Errorf("parse(%s) = %+v, %v", c.body, a, err)
			}
		})
	}
}
