package telemetry_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
	"github.com/comfortech/platform/services/data/internal/app"
	"github.com/comfortech/platform/services/data/internal/telemetry"
	"github.com/comfortech/platform/services/data/internal/telemetry/tsstore/tsstoretest"
)

// tooCold is "temperature < 10 for 5 min", clearing at 10.5.
func tooCold() *datav1.AlertCondition {
	return &datav1.AlertCondition{Metric: "temperature", Operator: datav1.Operator_OPERATOR_LESS_THAN, Threshold: 10,
		Hysteresis: 0.5, MinDuration: durationpb.New(5 * time.Minute), Level: "critical"}
}

func (f *fixture) createRule(t *testing.T, cond *datav1.AlertCondition) *datav1.AlertRule {
	t.Helper()
	resp, err := f.rules.CreateAlertRule(as(f.owner), &datav1.CreateAlertRuleRequest{DeviceId: f.device, Name: "Too cold", Condition: cond})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Rule
}

func decode[T proto.Message](t *testing.T, b []byte, m T) T {
	t.Helper()
	if err := protojson.Unmarshal(b, m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAlertStateMachine(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, f *fixture) {
		rule := f.createRule(t, tooCold())
		min := func(m float64) time.Time { return t0.Add(time.Duration(m * float64(time.Minute))) }
		seq := int64(0)
		steps := []struct {
			what   string
			at     []float64 // minutes after t0, one record each, appended as one batch
			values []float64
			events int // outbox messages so far
		}{
			{"cold starts pending", []float64{0}, []float64{9}, 0},
			{"warm again resets", []float64{2}, []float64{11}, 0},
			{"cold again, 4 of 5 minutes", []float64{7, 3}, []float64{9.5, 9}, 0}, // out of order in the batch
			{"cold for 5 minutes raises", []float64{8}, []float64{9.8}, 2},
			{"inside the hysteresis stays firing", []float64{9, 10, 11}, []float64{10.2, 9.9, 10.4}, 2},
			{"recovered starts clearing", []float64{12}, []float64{10.6}, 2},
			{"cold again interrupts clearing", []float64{14}, []float64{10.1}, 2},
			{"recovered for 5 minutes clears", []float64{15, 18, 20}, []float64{10.7, 11, 10.8}, 4},
			{"a late point changes nothing", []float64{1}, []float64{-5}, 4},
		}
		var all []*datav1.TelemetryRecord
		for _, s := range steps {
			var batch []*datav1.TelemetryRecord
			for i, m := range s.at {
				batch = append(batch, rec(f.device, seq, min(m), map[string]float64{"temperature": s.values[i], "humidity": 30}))
				seq++
			}
			all = append(all, batch...)
			f.append(t, batch...)
			if got := len(f.outbox(t)); got != s.events {
				t.Fatalf("%s: %d outbox messages, want %d", s.what, got, s.events)
			}
		}
		// Replaying everything is all duplicates and emits nothing again.
		if r := f.append(t, all...); r.Accepted != 0 || int(r.Duplicates) != len(all) {
			t.Fatalf("replay: %v", r)
		}

		msgs := f.outbox(t)
		if len(msgs) != 4 {
			t.Fatalf("%d outbox messages after replay, want 4", len(msgs))
		}
		wantTypes := []string{telemetry.TypeAlertRaised, telemetry.TypeNotificationRequest, telemetry.TypeAlertCleared, telemetry.TypeNotificationRequest}
		wantTopics := []string{"alerts", "notifications.outbox", "alerts", "notifications.outbox"}
		for i, m := range msgs {
			if m.ceType != wantTypes[i] || m.topic != wantTopics[i] {
				t.Fatalf("message %d is %s on %s, want %s on %s", i, m.ceType, m.topic, wantTypes[i], wantTopics[i])
			}
		}
		raisedEv := decode(t, msgs[0].value, &eventsv1.AlertRaised{})
		if raisedEv.RuleId != rule.Id || raisedEv.OwnerAccountId != f.owner || raisedEv.Value != 9.8 || !raisedEv.Time.AsTime().Equal(min(8)) || msgs[0].key != f.device {
			t.Fatalf("AlertRaised = %v (key %s)", raisedEv, msgs[0].key)
		}
		n := decode(t, msgs[1].value, &eventsv1.OutboxNotification{})
		if n.Application != "comfortech" || n.EventType != "alert.raised" || n.Level != "critical" || n.AccountId != f.owner ||
			n.Id != raisedEv.AlertId+":raised" || n.Message == "" || n.Payload.Fields["value"].GetNumberValue() != 9.8 || msgs[1].key != f.owner {
			t.Fatalf("raise notification = %v", n)
		}
		clearedEv := decode(t, msgs[2].value, &eventsv1.AlertCleared{})
		if clearedEv.AlertId != raisedEv.AlertId || clearedEv.Value != 10.8 || !clearedEv.Time.AsTime().Equal(min(20)) {
			t.Fatalf("AlertCleared = %v", clearedEv)
		}
		if n := decode(t, msgs[3].value, &eventsv1.OutboxNotification{}); n.EventType != "alert.cleared" || n.Id != raisedEv.AlertId+":cleared" {
			t.Fatalf("clear notification = %v", n)
		}

		alerts, err := f.rules.ListAlerts(as(f.member), &datav1.ListAlertsRequest{DeviceId: f.device})
		if err != nil {
			t.Fatal(err)
		}
		if len(alerts.Items) != 1 || alerts.Items[0].State != datav1.AlertState_ALERT_STATE_CLEARED || alerts.Items[0].RaiseValue != 9.8 || alerts.Items[0].ClearValue != 10.8 {
			t.Fatalf("alerts = %v", alerts.Items)
		}
	})
}

func TestGreaterThanWithoutMinDurationRaisesAndClearsAtOnce(t *testing.T) {
	t.Parallel()
	_, db := tsstoretest.OpenSQLite(t)
	f := newFixture(t, db, telemetry.Config{})
	f.createRule(t, &datav1.AlertCondition{Metric: "co2", Operator: datav1.Operator_OPERATOR_GREATER_THAN_OR_EQUAL, Threshold: 1000, Hysteresis: 100, Level: "warning"})
	for i, v := range []float64{900, 1000, 950, 1100, 899} {
		f.append(t, rec(f.device, int64(i), t0.Add(time.Duration(i)*time.Minute), map[string]float64{"co2": v}))
	}
	var types []string
	for _, m := range f.outbox(t) {
		types = append(types, m.ceType)
	}
	want := []string{telemetry.TypeAlertRaised, telemetry.TypeNotificationRequest, telemetry.TypeAlertCleared, telemetry.TypeNotificationRequest}
	if len(types) != len(want) {
		t.Fatalf("events %v, want %v", types, want)
	}
}

func TestRuleChangesClearTheirAlert(t *testing.T) {
	t.Parallel()
	_, db := tsstoretest.OpenSQLite(t)
	f := newFixture(t, db, telemetry.Config{})
	cond := tooCold()
	cond.MinDuration = nil
	r1, r2 := f.createRule(t, cond), f.createRule(t, cond)
	f.append(t, rec(f.device, 1, t0, map[string]float64{"temperature": 5}))
	if got := len(f.outbox(t)); got != 4 {
		t.Fatalf("%d messages after raising two rules, want 4", got)
	}
	ctx := as(f.owner)
	// Renaming keeps the alert; a new threshold clears it.
	if _, err := f.rules.UpdateAlertRule(ctx, &datav1.UpdateAlertRuleRequest{DeviceId: f.device, RuleId: r1.Id, Name: proto.String("Freezing")}); err != nil {
		t.Fatal(err)
	}
	if got := len(f.outbox(t)); got != 4 {
		t.Fatalf("rename emitted events")
	}
	newCond := tooCold()
	newCond.Threshold = 3
	upd, err := f.rules.UpdateAlertRule(ctx, &datav1.UpdateAlertRuleRequest{DeviceId: f.device, RuleId: r1.Id, Condition: newCond})
	if err != nil {
		t.Fatal(err)
	}
	if upd.Rule.Name != "Freezing" || upd.Rule.Condition.Threshold != 3 {
		t.Fatalf("updated rule = %v", upd.Rule)
	}
	if _, err := f.rules.DeleteAlertRule(ctx, &datav1.DeleteAlertRuleRequest{DeviceId: f.device, RuleId: r2.Id}); err != nil {
		t.Fatal(err)
	}
	msgs := f.outbox(t)
	if len(msgs) != 8 || msgs[4].ceType != telemetry.TypeAlertCleared || msgs[6].ceType != telemetry.TypeAlertCleared {
		t.Fatalf("%d messages after update and delete, want 8 (two clears with notifications)", len(msgs))
	}
	active, err := f.rules.ListAlerts(ctx, &datav1.ListAlertsRequest{DeviceId: f.device, State: datav1.AlertState_ALERT_STATE_ACTIVE})
	if err != nil || len(active.Items) != 0 {
		t.Fatalf("active alerts = %v, %v", active, err)
	}
}

func TestDefaultRulesAndUnclaim(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		dev := uuid.NewString()
		f.access.set(f.owner, dev, app.AccessOwner)
		defaults := []*datav1.AlertRuleTemplate{
			{Name: "Too cold", Condition: &datav1.AlertCondition{Metric: "temperature", Operator: datav1.Operator_OPERATOR_LESS_THAN, Threshold: 5}},
			{Name: "Too hot", Condition: &datav1.AlertCondition{Metric: "temperature", Operator: datav1.Operator_OPERATOR_GREATER_THAN, Threshold: 35, Level: "error"}},
		}
		for range 2 { // the core retries the hook
			if err := f.svc.DeviceClaimed(ctx, dev, f.owner, defaults); err != nil {
				t.Fatal(err)
			}
		}
		list, err := f.rules.ListAlertRules(as(f.owner), &datav1.ListAlertRulesRequest{DeviceId: dev, PageSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		next, err := f.rules.ListAlertRules(as(f.owner), &datav1.ListAlertRulesRequest{DeviceId: dev, PageSize: 1, PageToken: list.NextPageToken})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != 1 || len(next.Items) != 1 || next.NextPageToken != "" || list.Items[0].Name != "Too cold" || !list.Items[0].FromModelDefault ||
			list.Items[0].Condition.Level != "warning" || next.Items[0].Condition.Level != "error" {
			t.Fatalf("default rules: %v then %v", list.Items, next.Items)
		}

		f.append(t, rec(dev, 1, t0, map[string]float64{"temperature": 40}))
		if err := f.svc.DeviceUnclaimed(ctx, dev); err != nil {
			t.Fatal(err)
		}
		msgs := f.outbox(t)
		if len(msgs) != 3 || msgs[2].ceType != telemetry.TypeAlertCleared {
			t.Fatalf("%d messages, want raise + notification + clear without notification", len(msgs))
		}
		rules, err := f.rules.ListAlertRules(as(f.owner), &datav1.ListAlertRulesRequest{DeviceId: dev})
		if err != nil || len(rules.Items) != 0 {
			t.Fatalf("rules after unclaim = %v, %v", rules, err)
		}
		latest, err := f.tel.GetLatestTelemetry(as(f.owner), &datav1.GetLatestTelemetryRequest{DeviceId: dev})
		if err != nil || len(latest.Metrics) != 0 {
			t.Fatalf("telemetry after unclaim = %v, %v", latest, err)
		}
	})
}

// TestAuthorization calls every RPC as a stranger, a member, the owner and
// nobody: a stranger learns nothing (NOT_FOUND), a member reads but does
// not change rules (PERMISSION_DENIED).
func TestAuthorization(t *testing.T) {
	t.Parallel()
	_, db := tsstoretest.OpenSQLite(t)
	f := newFixture(t, db, telemetry.Config{})
	rule := f.createRule(t, tooCold())
	// The stranger's own device, to try the owner's rule id through it.
	strangerRule, err := f.rules.CreateAlertRule(as(f.stranger), &datav1.CreateAlertRuleRequest{DeviceId: f.other, Name: "x", Condition: tooCold()})
	if err != nil {
		t.Fatal(err)
	}
	day := func() (*timestamppb.Timestamp, *timestamppb.Timestamp) {
		return timestamppb.New(t0), timestamppb.New(t0.Add(24 * time.Hour))
	}
	calls := map[string]struct {
		write bool
		call  func(ctx context.Context, dev, ruleID string) error
	}{
		"QueryTelemetry": {false, func(ctx context.Context, dev, _ string) error {
			s, e := day()
			_, err := f.tel.QueryTelemetry(ctx, &datav1.QueryTelemetryRequest{DeviceId: dev, StartTime: s, EndTime: e})
			return err
		}},
		"AggregateTelemetry": {false, func(ctx context.Context, dev, _ string) error {
			s, e := day()
			_, err := f.tel.AggregateTelemetry(ctx, &datav1.AggregateTelemetryRequest{DeviceId: dev, StartTime: s, EndTime: e, Bucket: durationpb.New(time.Hour)})
			return err
		}},
		"GetLatestTelemetry": {false, func(ctx context.Context, dev, _ string) error {
			_, err := f.tel.GetLatestTelemetry(ctx, &datav1.GetLatestTelemetryRequest{DeviceId: dev})
			return err
		}},
		"ListAlertRules": {false, func(ctx context.Context, dev, _ string) error {
			_, err := f.rules.ListAlertRules(ctx, &datav1.ListAlertRulesRequest{DeviceId: dev})
			return err
		}},
		"GetAlertRule": {false, func(ctx context.Context, dev, id string) error {
			_, err := f.rules.GetAlertRule(ctx, &datav1.GetAlertRuleRequest{DeviceId: dev, RuleId: id})
			return err
		}},
		"ListAlerts": {false, func(ctx context.Context, dev, _ string) error {
			_, err := f.rules.ListAlerts(ctx, &datav1.ListAlertsRequest{DeviceId: dev})
			return err
		}},
		"CreateAlertRule": {true, func(ctx context.Context, dev, _ string) error {
			_, err := f.rules.CreateAlertRule(ctx, &datav1.CreateAlertRuleRequest{DeviceId: dev, Name: "n", Condition: tooCold()})
			return err
		}},
		"UpdateAlertRule": {true, func(ctx context.Context, dev, id string) error {
			_, err := f.rules.UpdateAlertRule(ctx, &datav1.UpdateAlertRuleRequest{DeviceId: dev, RuleId: id, Enabled: proto.Bool(true)})
			return err
		}},
		"DeleteAlertRule": {true, func(ctx context.Context, dev, id string) error {
			_, err := f.rules.DeleteAlertRule(ctx, &datav1.DeleteAlertRuleRequest{DeviceId: dev, RuleId: id})
			return err
		}},
	}
	for name, c := range calls {
		t.Run(name, func(t *testing.T) {
			check := func(who string, ctx context.Context, dev, ruleID string, want codes.Code) {
				t.Helper()
				if got := status.Code(c.call(ctx, dev, ruleID)); got != want {
					t.Errorf("%s: %v, want %v", who, got, want)
				}
			}
			check("stranger", as(f.stranger), f.device, rule.Id, codes.NotFound)
			check("unknown device", as(f.owner), uuid.NewString(), rule.Id, codes.NotFound)
			check("anonymous", as(""), f.device, rule.Id, codes.Unauthenticated)
			if c.write {
				check("member", as(f.member), f.device, rule.Id, codes.PermissionDenied)
			} else {
				check("member", as(f.member), f.device, rule.Id, codes.OK)
			}
			if strings.HasSuffix(name, "AlertRule") && name != "CreateAlertRule" {
				// Another device's rule id through my device: not found.
				check("foreign rule", as(f.owner), f.device, strangerRule.Rule.Id, codes.NotFound)
			}
		})
	}
}

func TestBadRequestsAreInvalidArgument(t *testing.T) {
	t.Parallel()
	_, db := tsstoretest.OpenSQLite(t)
	f := newFixture(t, db, telemetry.Config{})
	ctx := as(f.owner)
	_, err := f.tel.QueryTelemetry(ctx, &datav1.QueryTelemetryRequest{DeviceId: f.device, StartTime: timestamppb.New(t0), EndTime: timestamppb.New(t0.Add(time.Hour)), PageToken: "garbage"})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad page token: %v", err)
	}
	_, err = f.tel.AggregateTelemetry(ctx, &datav1.AggregateTelemetryRequest{DeviceId: f.device, StartTime: timestamppb.New(t0), EndTime: timestamppb.New(t0.Add(30 * 24 * time.Hour)), Bucket: durationpb.New(time.Second)})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("too many buckets: %v", err)
	}
	_, err = f.rules.CreateAlertRule(ctx, &datav1.CreateAlertRuleRequest{DeviceId: f.device, Name: "x", Condition: &datav1.AlertCondition{Metric: "temperature"}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("no operator: %v", err)
	}
}

func TestRetentionDeletesOldPoints(t *testing.T) {
	t.Parallel()
	_, db := tsstoretest.OpenSQLite(t)
	f := newFixture(t, db, telemetry.Config{Retention: 24 * time.Hour})
	f.append(t, rec(f.device, 1, t0, map[string]float64{"temperature": 1}), rec(f.device, 2, t0.Add(30*time.Hour), map[string]float64{"temperature": 2}))
	f.clock.set(t0.Add(48 * time.Hour))
	n, err := f.svc.DeleteExpired(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("deleted %d, %v; want 1", n, err)
	}
	resp, err := f.tel.QueryTelemetry(as(f.owner), &datav1.QueryTelemetryRequest{DeviceId: f.device, StartTime: timestamppb.New(t0), EndTime: timestamppb.New(t0.Add(48 * time.Hour))})
	if err != nil || len(resp.Items) != 1 || resp.Items[0].Seq != 2 {
		t.Fatalf("points left: %v, %v", resp, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.svc.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil when ctx ends", err)
	}
}
