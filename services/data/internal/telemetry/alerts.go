package telemetry

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/comfortech/platform/libs/kafka"
	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
	"github.com/comfortech/platform/services/data/internal/app"
	"github.com/comfortech/platform/services/data/internal/telemetry/tsstore"
)

// Topics, source and CloudEvents types of the messages this package emits
// (proto/comfortech/events/v1 documents each).
const (
	TopicAlerts             = "alerts"
	TopicNotifications      = "notifications.outbox"
	TypeAlertRaised         = "comfortech.alert.raised.v1"
	TypeAlertCleared        = "comfortech.alert.cleared.v1"
	TypeNotificationRequest = "comfortech.notification.requested.v1"
	// NotificationApplication is the notifications-backend application of
	// alert notifications; event types are "alert.raised" and "alert.cleared".
	NotificationApplication = "comfortech"
	defaultLevel            = "warning"
)

// transition is what one sample did to a rule.
type transition int

const (
	noChange transition = iota
	raised
	cleared
)

// holds reports whether v meets the raise condition.
func holds(c tsstore.Condition, v float64) bool {
	switch c.Operator {
	case datav1.Operator_OPERATOR_LESS_THAN.String():
		return v < c.Threshold
	case datav1.Operator_OPERATOR_LESS_THAN_OR_EQUAL.String():
		return v <= c.Threshold
	case datav1.Operator_OPERATOR_GREATER_THAN.String():
		return v > c.Threshold
	case datav1.Operator_OPERATOR_GREATER_THAN_OR_EQUAL.String():
		return v >= c.Threshold
	}
	return false
}

// recovered reports whether v is back past the threshold by the
// hysteresis: the raise condition is false even with the threshold moved
// by the hysteresis away from the alarm side. With 0 hysteresis it is
// exactly "the condition no longer holds".
func recovered(c tsstore.Condition, v float64) bool {
	shifted := c
	switch c.Operator {
	case datav1.Operator_OPERATOR_LESS_THAN.String(), datav1.Operator_OPERATOR_LESS_THAN_OR_EQUAL.String():
		shifted.Threshold += c.Hysteresis
	default:
		shifted.Threshold -= c.Hysteresis
	}
	return !holds(shifted, v)
}

// step advances a rule's state machine by one sample at ts (ms) and tells
// whether that raised or cleared its alert. The machine is
//
//	ok ──cond──▶ pending ──cond for min_duration──▶ firing
//	firing ──recovered──▶ clearing ──recovered for min_duration──▶ ok
//
// with a false condition sending pending back to ok, and a value not
// recovered sending clearing back to firing; a zero min_duration skips
// pending and clearing. Debouncing the clear like the raise (on top of the
// hysteresis) keeps a value hovering at the threshold from flapping.
func step(st *tsstore.RuleState, c tsstore.Condition, ts int64, v float64) transition {
	minDur := c.MinDuration.Milliseconds()
	st.LastTS = ts
	switch st.Phase {
	case tsstore.PhasePending:
		if !holds(c, v) {
			st.Phase = tsstore.PhaseOK
		} else if ts-st.Since >= minDur {
			st.Phase = tsstore.PhaseFiring
			return raised
		}
	case tsstore.PhaseFiring:
		if recovered(c, v) {
			if minDur == 0 {
				st.Phase = tsstore.PhaseOK
				return cleared
			}
			st.Phase, st.Since, st.SinceValue = tsstore.PhaseClearing, ts, v
		}
	case tsstore.PhaseClearing:
		if !recovered(c, v) {
			st.Phase = tsstore.PhaseFiring
		} else if ts-st.Since >= minDur {
			st.Phase = tsstore.PhaseOK
			return cleared
		}
	default: // ok
		if holds(c, v) {
			if minDur == 0 {
				st.Phase = tsstore.PhaseFiring
				return raised
			}
			st.Phase, st.Since, st.SinceValue = tsstore.PhasePending, ts, v
		}
	}
	return noChange
}

// evaluate runs the enabled rules of the records' devices over the new
// records in time order, storing state changes and alerts and enqueueing
// their events. It reports whether it enqueued any.
func (s *Service) evaluate(ctx context.Context, tx *tsstore.Tx, recs []*datav1.TelemetryRecord) (bool, error) {
	if len(recs) == 0 {
		return false, nil
	}
	sortRecords(recs)
	var devices []string
	for i, r := range recs {
		if i == 0 || recs[i-1].GetDeviceId() != r.GetDeviceId() {
			devices = append(devices, r.GetDeviceId())
		}
	}
	rules, err := tx.EnabledRulesForUpdate(ctx, devices)
	if err != nil || len(rules) == 0 {
		return false, err
	}
	byDevice := map[string][]*datav1.TelemetryRecord{}
	for _, r := range recs {
		byDevice[r.GetDeviceId()] = append(byDevice[r.GetDeviceId()], r)
	}
	owners := map[string]string{}
	events := false
	for _, rule := range rules {
		before := rule.State
		for _, rec := range byDevice[rule.DeviceID] {
			v, ok := rec.GetMetrics()[rule.Condition.Metric]
			ts := rec.GetTime().AsTime().UnixMilli()
			// Points older than the last evaluated one arrived late: the
			// machine has moved past them.
			if !ok || ts < rule.State.LastTS {
				continue
			}
			tr := step(&rule.State, rule.Condition, ts, v)
			if tr == noChange {
				continue
			}
			owner, seen := owners[rule.DeviceID]
			if !seen {
				if owner, _, err = tx.DeviceOwner(ctx, rule.DeviceID); err != nil {
					return false, err
				}
				owners[rule.DeviceID] = owner
			}
			at := time.UnixMilli(ts).UTC()
			if tr == raised {
				err = s.raise(ctx, tx, &rule, owner, v, at)
			} else {
				err = s.clear(ctx, tx, &rule, owner, v, at, true)
			}
			if err != nil {
				return false, err
			}
			events = true
		}
		if rule.State != before {
			if err := tx.SaveRuleState(ctx, rule.ID, rule.State); err != nil {
				return false, err
			}
		}
	}
	return events, nil
}

// raise stores a new alert of rule with the value v that raised it at
// at, and enqueues AlertRaised and the owner's notification.
func (s *Service) raise(ctx context.Context, tx *tsstore.Tx, rule *tsstore.Rule, owner string, v float64, at time.Time) error {
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("telemetry: alert id: %w", err)
	}
	a := tsstore.Alert{ID: id.String(), RuleID: rule.ID, DeviceID: rule.DeviceID, RuleName: rule.Name, Condition: rule.Condition, Active: true, RaiseValue: v, RaiseTime: at}
	if err := tx.InsertAlert(ctx, a); err != nil {
		return err
	}
	rule.State.AlertID = a.ID
	c := a.Condition
	ev := &eventsv1.AlertRaised{
		AlertId: a.ID, RuleId: a.RuleID, RuleName: a.RuleName, DeviceId: a.DeviceID, OwnerAccountId: owner,
		Metric: c.Metric, Operator: c.Operator, Threshold: c.Threshold, MinDuration: durationpb.New(c.MinDuration),
		Value: v, Level: c.Level, Time: timestamppb.New(at),
	}
	msg := fmt.Sprintf("%s: %s is %g (%s %g)", a.RuleName, c.Metric, v, symbol(c.Operator), c.Threshold)
	return s.emit(ctx, tx, a, owner, TypeAlertRaised, "alert.raised", ev, msg, v, at, true)
}

// clear marks the rule's active alert cleared by value v at at and
// enqueues AlertCleared, and the owner's notification when notify.
func (s *Service) clear(ctx context.Context, tx *tsstore.Tx, rule *tsstore.Rule, owner string, v float64, at time.Time, notify bool) error {
	id := rule.State.AlertID
	rule.State.AlertID = ""
	if id == "" {
		return nil
	}
	a, err := tx.ClearAlert(ctx, id, v, at)
	if err != nil {
		return err
	}
	ev := &eventsv1.AlertCleared{
		AlertId: a.ID, RuleId: a.RuleID, RuleName: a.RuleName, DeviceId: a.DeviceID, OwnerAccountId: owner,
		Metric: a.Condition.Metric, Value: v, Level: a.Condition.Level, RaiseTime: timestamppb.New(a.RaiseTime), Time: timestamppb.New(at),
	}
	msg := fmt.Sprintf("%s cleared: %s is %g", a.RuleName, a.Condition.Metric, v)
	return s.emit(ctx, tx, a, owner, TypeAlertCleared, "alert.cleared", ev, msg, v, at, notify)
}

// emit enqueues an alert event on `alerts` and, when notify and the owner
// is known, the owner's notification on `notifications.outbox`. Both ids
// derive from the alert and the transition, so a consumer recognises a
// redelivery.
func (s *Service) emit(ctx context.Context, tx *tsstore.Tx, a tsstore.Alert, owner, ceType, eventType string, ev proto.Message, msg string, v float64, at time.Time, notify bool) error {
	suffix := ":" + eventType[len("alert."):]
	alertMsg, err := kafka.EncodeEvent(ctx, TopicAlerts, kafka.Event{ID: a.ID + suffix, Source: app.Source, Type: ceType, Time: at, Key: a.DeviceID, Data: ev})
	if err != nil {
		return err
	}
	msgs := []kafka.Message{alertMsg}
	if notify && owner != "" {
		payload, err := structpb.NewStruct(map[string]any{
			"alert_id": a.ID, "rule_id": a.RuleID, "rule_name": a.RuleName, "device_id": a.DeviceID,
			"metric": a.Condition.Metric, "operator": symbol(a.Condition.Operator), "threshold": a.Condition.Threshold, "value": v,
		})
		if err != nil {
			return fmt.Errorf("telemetry: notification payload: %w", err)
		}
		n := &eventsv1.OutboxNotification{
			Application: NotificationApplication, EventType: eventType, Level: a.Condition.Level, Message: msg,
			Timestamp: timestamppb.New(at), AccountId: owner, Id: a.ID + suffix, Payload: payload,
		}
		nm, err := kafka.EncodeEvent(ctx, TopicNotifications, kafka.Event{ID: "notification:" + a.ID + suffix, Source: app.Source, Type: TypeNotificationRequest, Time: at, Key: owner, Data: n})
		if err != nil {
			return err
		}
		msgs = append(msgs, nm)
	}
	return tx.Enqueue(ctx, msgs...)
}

// symbol renders an operator for people.
func symbol(op string) string {
	switch op {
	case datav1.Operator_OPERATOR_LESS_THAN.String():
		return "<"
	case datav1.Operator_OPERATOR_LESS_THAN_OR_EQUAL.String():
		return "<="
	case datav1.Operator_OPERATOR_GREATER_THAN.String():
		return ">"
	case datav1.Operator_OPERATOR_GREATER_THAN_OR_EQUAL.String():
		return ">="
	}
	return op
}
