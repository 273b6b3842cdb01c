package app_test

import (
	"testing"
	"time"

	"github.com/comfortech/platform/services/notify/internal/app"
)

// TestRoute: the most specific rule wins, defaults apply without one,
// disabled channels never apply, quiet hours hold back all but critical.
func TestRoute(t *testing.T) {
	t.Parallel()
	et := app.EventType{ID: "alert.raised", Levels: app.Levels, DefaultChannels: []app.Channel{app.Push}}
	moscow, _ := time.LoadLocation("Europe/Moscow")
	night := time.Date(2026, 1, 1, 20, 30, 0, 0, time.UTC) // 23:30 in Moscow
	day := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	rules := []app.Rule{
		{Channels: []app.Channel{app.Email}},
		{Application: "comfortech", Channels: []app.Channel{app.SMS}},
		{Application: "comfortech", EventType: "alert.raised", Levels: []string{"critical"}, Channels: []app.Channel{app.SMS, app.Push}},
		{Application: "comfortech", EventType: "alert.raised", Levels: []string{"info", "warning"}, Channels: nil},
	}
	quiet := app.QuietHours{Enabled: true, Start: "22:00", End: "07:00"}
	for _, tc := range []struct {
		name      string
		p         app.Preferences
		app, lvl  string
		now       time.Time
		want      []app.Channel
		wantQuiet bool
	}{
		{"defaults", app.Preferences{}, "comfortech", "info", day, []app.Channel{app.Push}, false},
		{"event type and level rule", app.Preferences{Rules: rules}, "comfortech", "critical", day, []app.Channel{app.SMS, app.Push}, false},
		{"muted levels", app.Preferences{Rules: rules}, "comfortech", "info", day, []app.Channel{}, false},
		{"application rule", app.Preferences{Rules: rules}, "comfortech", "error", day, []app.Channel{app.SMS}, false},
		{"any rule", app.Preferences{Rules: rules}, "other", "error", day, []app.Channel{app.Email}, false},
		{"disabled channel", app.Preferences{Rules: rules, DisabledChannels: []app.Channel{app.SMS}}, "comfortech", "critical", day, []app.Channel{app.Push}, false},
		{"quiet hours in the account's zone", app.Preferences{QuietHours: quiet}, "comfortech", "warning", night, nil, true},
		{"critical overrides quiet hours", app.Preferences{QuietHours: quiet}, "comfortech", "critical", night, []app.Channel{app.Push}, false},
		{"outside quiet hours", app.Preferences{QuietHours: quiet}, "comfortech", "warning", day, []app.Channel{app.Push}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, q := app.Route(&tc.p, et, tc.app, tc.lvl, tc.now, moscow)
			if q != tc.wantQuiet || len(got) != len(tc.want) {
				t.Fatalf("Route = %v quiet=%v, want %v quiet=%v", got, q, tc.want, tc.wantQuiet)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("Route = %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// TestLoadRegistrations reads YAML and JSON registrations and refuses a
// bad one naming the file.
func TestLoadRegistrations(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir+"/a.yaml", "name: devices\ntitle: Devices\nevent_types:\n  - id: filter-change\n    title: Filter\n    levels: [info]\n")
	write(t, dir+"/b.json", `{"name":"billing","title":"Billing","event_types":[{"id":"invoice","title":"Invoice","levels":["info"],"default_channels":["email"]}]}`)
	write(t, dir+"/notes.txt", "ignored")
	apps, err := app.LoadRegistrations(dir)
	if err != nil || len(apps) != 2 || apps[1].EventTypes[0].DefaultChannels[0] != app.Email {
		t.Fatalf("LoadRegistrations = %v, %v", apps, err)
	}
	write(t, dir+"/c.yaml", "name: Bad Name\ntitle: x\n")
	if _, err := app.LoadRegistrations(dir); err == nil {
		t.Fatal("a bad registration was accepted")
	}
}
