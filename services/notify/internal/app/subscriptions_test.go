package app_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/comfortech/platform/services/notify/internal/app"
)

// TestSubscriptionWants: a subscription takes an event when it is active,
// names the event's topic, existed and was active when the event happened,
// and each of its filters matches a CloudEvents attribute or a data field.
func TestSubscriptionWants(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	event := func() *app.CloudEvent {
		return &app.CloudEvent{Topic: "device.lifecycle", ID: "e1", Type: "comfortech.device.presence.v1", Source: "/services/device",
			Subject: "dev-1", Time: created.Add(time.Minute),
			Data: json.RawMessage(`{"device_id":"dev-1","online":false,"version":"42","reported":{"mode":"eco","target":21.5}}`)}
	}
	filter := func(attr string, op app.FilterOp, v string) []app.Filter {
		return []app.Filter{{Attribute: attr, Op: op, Value: v}}
	}
	tests := []struct {
		name    string
		sub     app.Subscription
		paused  bool
		changes func(e *app.CloudEvent)
		want    bool
	}{
		{name: "no filters", want: true},
		{name: "other topic", sub: app.Subscription{Topics: []string{"alerts"}}},
		{name: "paused", paused: true},
		{name: "disabled by the service", sub: app.Subscription{DisabledReason: "endpoint answered 410"}},
		{name: "event before the subscription", changes: func(e *app.CloudEvent) { e.Time = created.Add(-time.Second) }},
		{name: "event without a time", changes: func(e *app.CloudEvent) { e.Time = time.Time{} }, want: true},
		{name: "event of a pause, enabled again since", sub: app.Subscription{ActiveTime: created.Add(2 * time.Minute)}},
		{name: "event since enabled again", sub: app.Subscription{ActiveTime: created.Add(30 * time.Second)}, want: true},
		{name: "type prefix", sub: app.Subscription{Filters: filter("type", app.FilterPrefix, "comfortech.device.")}, want: true},
		{name: "type prefix, other type", sub: app.Subscription{Filters: filter("type", app.FilterPrefix, "comfortech.alert.")}},
		{name: "source exact", sub: app.Subscription{Filters: filter("source", app.FilterExact, "/services/device")}, want: true},
		{name: "subject suffix", sub: app.Subscription{Filters: filter("subject", app.FilterSuffix, "-1")}, want: true},
		{name: "data string", sub: app.Subscription{Filters: filter("data.device_id", app.FilterExact, "dev-1")}, want: true},
		{name: "data false", sub: app.Subscription{Filters: filter("data.online", app.FilterExact, "false")}, want: true},
		{name: "data true", sub: app.Subscription{Filters: filter("data.online", app.FilterExact, "true")}},
		{name: "data int64 (a string in protojson)", sub: app.Subscription{Filters: filter("data.version", app.FilterExact, "42")}, want: true},
		{name: "nested data", sub: app.Subscription{Filters: filter("data.reported.mode", app.FilterExact, "eco")}, want: true},
		{name: "nested number", sub: app.Subscription{Filters: filter("data.reported.target", app.FilterPrefix, "21")}, want: true},
		{name: "missing field", sub: app.Subscription{Filters: filter("data.model", app.FilterExact, "")}},
		{name: "an object is not a value", sub: app.Subscription{Filters: filter("data.reported", app.FilterPrefix, "")}},
		{name: "every filter must match", sub: app.Subscription{Filters: []app.Filter{
			{Attribute: "data.device_id", Op: app.FilterExact, Value: "dev-1"}, {Attribute: "data.online", Op: app.FilterExact, Value: "true"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := tc.sub
			if s.Topics == nil {
				s.Topics = []string{"device.lifecycle"}
			}
			s.Enabled, s.CreateTime = !tc.paused, created
			e := event()
			if tc.changes != nil {
				tc.changes(e)
			}
			if got := s.Wants(e); got != tc.want {
				t.Errorf("Wants = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestCloudEventJSON: a delivery's body is the event in CloudEvents
// structured mode, its data as JSON.
func TestCloudEventJSON(t *testing.T) {
	t.Parallel()
	e := &app.CloudEvent{Topic: "alerts", ID: "e1", Type: "comfortech.alert.raised.v1", Source: "/services/data", Subject: "dev-1",
		Time: time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC), TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		Data: json.RawMessage(`{ "rule_id" : "r1" }`)}
	b, err := e.JSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"specversion":"1.0","id":"e1","source":"/services/data","type":"comfortech.alert.raised.v1","subject":"dev-1",` +
		`"time":"2026-01-02T03:04:05.0000006Z","datacontenttype":"application/json",` +
		`"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","data":{"rule_id":"r1"}}`
	if string(b) != want {
		t.Errorf("JSON =\n%s\nwant\n%s", b, want)
	}
	e.Data = json.RawMessage(`{"rule_id":`)
	if _, err := e.JSON(); err == nil {
		t.Error("malformed data accepted")
	}
}
