package telemetry

import (
	"context"
	"errors"
	"math"
	"regexp"
	"strconv"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	"github.com/comfortech/platform/services/data/internal/app"
	"github.com/comfortech/platform/services/data/internal/telemetry/tsstore"
)

// Page sizes of the rule and alert lists.
const (
	defaultListPage = 50
	maxListPage     = 500
)

var metricName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// toCondition checks a condition (as the proto's rules do, for callers
// that bypass the validating interceptor, e.g. model defaults) and
// converts it. An empty level means "warning".
func toCondition(field string, c *datav1.AlertCondition) (tsstore.Condition, error) {
	switch {
	case c == nil:
		return tsstore.Condition{}, invalid(field, "is required")
	case !metricName.MatchString(c.GetMetric()):
		return tsstore.Condition{}, invalid(field+".metric", "must match ^[a-z][a-z0-9_]{0,63}$")
	case c.GetOperator() == datav1.Operator_OPERATOR_UNSPECIFIED || datav1.Operator_name[int32(c.GetOperator())] == "":
		return tsstore.Condition{}, invalid(field+".operator", "must be a defined operator")
	case math.IsNaN(c.GetThreshold()) || math.IsInf(c.GetThreshold(), 0):
		return tsstore.Condition{}, invalid(field+".threshold", "must be finite")
	case !(c.GetHysteresis() >= 0) || math.IsInf(c.GetHysteresis(), 0):
		return tsstore.Condition{}, invalid(field+".hysteresis", "must be finite and not negative")
	case c.GetMinDuration().AsDuration() < 0 || c.GetMinDuration().AsDuration() > 24*time.Hour:
		return tsstore.Condition{}, invalid(field+".min_duration", "must be from 0 to 24h")
	}
	level := c.GetLevel()
	switch level {
	case "":
		level = defaultLevel
	case "info", "warning", "error", "critical":
	default:
		return tsstore.Condition{}, invalid(field+".level", "must be info, warning, error or critical")
	}
	return tsstore.Condition{
		Metric: c.GetMetric(), Operator: c.GetOperator().String(), Threshold: c.GetThreshold(),
		Hysteresis: c.GetHysteresis(), MinDuration: c.GetMinDuration().AsDuration(), Level: level,
	}, nil
}

func fromCondition(c tsstore.Condition) *datav1.AlertCondition {
	return &datav1.AlertCondition{
		Metric: c.Metric, Operator: datav1.Operator(datav1.Operator_value[c.Operator]), Threshold: c.Threshold,
		Hysteresis: c.Hysteresis, MinDuration: durationpb.New(c.MinDuration), Level: c.Level,
	}
}

func fromRule(r tsstore.Rule) *datav1.AlertRule {
	return &datav1.AlertRule{
		Id: r.ID, DeviceId: r.DeviceID, Name: r.Name, Condition: fromCondition(r.Condition), Enabled: r.Enabled,
		FromModelDefault: r.FromModelDefault, CreateTime: timestamppb.New(r.CreateTime), UpdateTime: timestamppb.New(r.UpdateTime),
	}
}

func fromAlert(a tsstore.Alert) *datav1.Alert {
	out := &datav1.Alert{
		Id: a.ID, RuleId: a.RuleID, DeviceId: a.DeviceID, RuleName: a.RuleName, Condition: fromCondition(a.Condition),
		State: datav1.AlertState_ALERT_STATE_ACTIVE, RaiseValue: a.RaiseValue, RaiseTime: timestamppb.New(a.RaiseTime),
	}
	if !a.Active {
		out.State, out.ClearValue, out.ClearTime = datav1.AlertState_ALERT_STATE_CLEARED, a.ClearValue, timestamppb.New(a.ClearTime)
	}
	return out
}

// validName checks a rule's display name.
func validName(field, name string) error {
	if n := len([]rune(name)); n < 1 || n > 100 {
		return invalid(field, "must be 1 to 100 characters")
	}
	return nil
}

// ruleNotFound hides whether a rule id exists on another device.
func ruleNotFound(err error) error {
	if errors.Is(err, tsstore.ErrNotFound) {
		return &app.Error{Kind: app.ErrNotFound, Msg: "alert rule not found"}
	}
	return err
}

func (s *Service) createRule(ctx context.Context, req *datav1.CreateAlertRuleRequest) (*datav1.CreateAlertRuleResponse, error) {
	if err := validName("name", req.GetName()); err != nil {
		return nil, err
	}
	cond, err := toCondition("condition", req.GetCondition())
	if err != nil {
		return nil, err
	}
	owner, err := s.authorize(ctx, req.GetDeviceId(), ownerRole)
	if err != nil {
		return nil, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	r := tsstore.Rule{ID: id.String(), DeviceID: req.GetDeviceId(), Name: req.GetName(), Condition: cond, Enabled: req.Enabled == nil || req.GetEnabled(), CreateTime: now, UpdateTime: now}
	err = s.store.InTx(ctx, func(tx *tsstore.Tx) error {
		if err := tx.LearnDeviceOwner(ctx, r.DeviceID, owner); err != nil {
			return err
		}
		return tx.InsertRule(ctx, r)
	})
	if err != nil {
		return nil, err
	}
	return &datav1.CreateAlertRuleResponse{Rule: fromRule(r)}, nil
}

// ruleCursor is where a ListAlertRules page ended.
type ruleCursor struct {
	CreateTime int64  `json:"t"`
	ID         string `json:"i"`
}

func (s *Service) listRules(ctx context.Context, req *datav1.ListAlertRulesRequest) (*datav1.ListAlertRulesResponse, error) {
	size, err := pageSize(req.GetPageSize(), defaultListPage, maxListPage)
	if err != nil {
		return nil, err
	}
	if _, err := s.authorize(ctx, req.GetDeviceId(), readRole); err != nil {
		return nil, err
	}
	var after *tsstore.RuleCursor
	if tok := req.GetPageToken(); tok != "" {
		var c ruleCursor
		if err := decodeToken(tok, "rules", req.GetDeviceId(), &c); err != nil {
			return nil, err
		}
		after = &tsstore.RuleCursor{CreateTime: time.UnixMilli(c.CreateTime), ID: c.ID}
	}
	rules, err := s.store.ListRules(ctx, req.GetDeviceId(), after, size+1)
	if err != nil {
		return nil, err
	}
	resp := &datav1.ListAlertRulesResponse{Items: make([]*datav1.AlertRule, 0, len(rules))}
	if len(rules) > size {
		rules = rules[:size]
		last := rules[size-1]
		resp.NextPageToken = encodeToken("rules", req.GetDeviceId(), ruleCursor{CreateTime: last.CreateTime.UnixMilli(), ID: last.ID})
	}
	for _, r := range rules {
		resp.Items = append(resp.Items, fromRule(r))
	}
	return resp, nil
}

func (s *Service) getRule(ctx context.Context, req *datav1.GetAlertRuleRequest) (*datav1.GetAlertRuleResponse, error) {
	if _, err := s.authorize(ctx, req.GetDeviceId(), readRole); err != nil {
		return nil, err
	}
	if uuid.Validate(req.GetRuleId()) != nil {
		return nil, &app.Error{Kind: app.ErrNotFound, Msg: "alert rule not found"}
	}
	r, err := s.store.Rule(ctx, req.GetDeviceId(), req.GetRuleId())
	if err != nil {
		return nil, ruleNotFound(err)
	}
	return &datav1.GetAlertRuleResponse{Rule: fromRule(r)}, nil
}

// updateRule changes a rule. A changed condition or a disabled rule
// restarts its state machine; an alert it had raised is cleared (with its
// events), since the condition it reported no longer applies.
func (s *Service) updateRule(ctx context.Context, req *datav1.UpdateAlertRuleRequest) (*datav1.UpdateAlertRuleResponse, error) {
	if req.Name != nil {
		if err := validName("name", req.GetName()); err != nil {
			return nil, err
		}
	}
	var cond *tsstore.Condition
	if req.GetCondition() != nil {
		c, err := toCondition("condition", req.GetCondition())
		if err != nil {
			return nil, err
		}
		cond = &c
	}
	if _, err := s.authorize(ctx, req.GetDeviceId(), ownerRole); err != nil {
		return nil, err
	}
	if uuid.Validate(req.GetRuleId()) != nil {
		return nil, &app.Error{Kind: app.ErrNotFound, Msg: "alert rule not found"}
	}
	var (
		out    tsstore.Rule
		events bool
	)
	err := s.store.InTx(ctx, func(tx *tsstore.Tx) error {
		r, err := tx.RuleForUpdate(ctx, req.GetDeviceId(), req.GetRuleId())
		if err != nil {
			return ruleNotFound(err)
		}
		reset := false
		if req.Name != nil {
			r.Name = req.GetName()
		}
		if cond != nil && *cond != r.Condition {
			r.Condition, reset = *cond, true
		}
		if req.Enabled != nil {
			reset = reset || (r.Enabled && !req.GetEnabled())
			r.Enabled = req.GetEnabled()
		}
		now := s.now().UTC().Truncate(time.Millisecond)
		r.UpdateTime = now
		if reset {
			if r.State.AlertID != "" {
				owner, _, err := tx.DeviceOwner(ctx, r.DeviceID)
				if err != nil {
					return err
				}
				if err := s.clear(ctx, tx, &r, owner, 0, now, true); err != nil {
					return err
				}
				events = true
			}
			r.State = tsstore.RuleState{Phase: tsstore.PhaseOK, LastTS: r.State.LastTS}
		}
		out = r
		return tx.UpdateRule(ctx, r)
	})
	if err != nil {
		return nil, err
	}
	if events {
		s.notify()
	}
	return &datav1.UpdateAlertRuleResponse{Rule: fromRule(out)}, nil
}

func (s *Service) deleteRule(ctx context.Context, req *datav1.DeleteAlertRuleRequest) (*datav1.DeleteAlertRuleResponse, error) {
	if _, err := s.authorize(ctx, req.GetDeviceId(), ownerRole); err != nil {
		return nil, err
	}
	if uuid.Validate(req.GetRuleId()) != nil {
		return nil, &app.Error{Kind: app.ErrNotFound, Msg: "alert rule not found"}
	}
	events := false
	err := s.store.InTx(ctx, func(tx *tsstore.Tx) error {
		r, err := tx.RuleForUpdate(ctx, req.GetDeviceId(), req.GetRuleId())
		if err != nil {
			return ruleNotFound(err)
		}
		if r.State.AlertID != "" {
			owner, _, err := tx.DeviceOwner(ctx, r.DeviceID)
			if err != nil {
				return err
			}
			if err := s.clear(ctx, tx, &r, owner, 0, s.now().UTC(), true); err != nil {
				return err
			}
			events = true
		}
		return tx.DeleteRule(ctx, r.DeviceID, r.ID)
	})
	if err != nil {
		return nil, err
	}
	if events {
		s.notify()
	}
	return &datav1.DeleteAlertRuleResponse{}, nil
}

// alertCursor is where a ListAlerts page ended.
type alertCursor struct {
	RaiseTime int64  `json:"t"`
	ID        string `json:"i"`
}

func (s *Service) listAlerts(ctx context.Context, req *datav1.ListAlertsRequest) (*datav1.ListAlertsResponse, error) {
	size, err := pageSize(req.GetPageSize(), defaultListPage, maxListPage)
	if err != nil {
		return nil, err
	}
	var active *bool
	switch req.GetState() {
	case datav1.AlertState_ALERT_STATE_UNSPECIFIED:
	case datav1.AlertState_ALERT_STATE_ACTIVE, datav1.AlertState_ALERT_STATE_CLEARED:
		v := req.GetState() == datav1.AlertState_ALERT_STATE_ACTIVE
		active = &v
	default:
		return nil, invalid("state", "must be a defined alert state")
	}
	if _, err := s.authorize(ctx, req.GetDeviceId(), readRole); err != nil {
		return nil, err
	}
	var after *tsstore.AlertCursor
	if tok := req.GetPageToken(); tok != "" {
		var c alertCursor
		if err := decodeToken(tok, "alerts", req.GetDeviceId(), &c); err != nil {
			return nil, err
		}
		after = &tsstore.AlertCursor{RaiseTime: time.UnixMilli(c.RaiseTime), ID: c.ID}
	}
	alerts, err := s.store.ListAlerts(ctx, req.GetDeviceId(), active, after, size+1)
	if err != nil {
		return nil, err
	}
	resp := &datav1.ListAlertsResponse{Items: make([]*datav1.Alert, 0, len(alerts))}
	if len(alerts) > size {
		alerts = alerts[:size]
		last := alerts[size-1]
		resp.NextPageToken = encodeToken("alerts", req.GetDeviceId(), alertCursor{RaiseTime: last.RaiseTime.UnixMilli(), ID: last.ID})
	}
	for _, a := range alerts {
		resp.Items = append(resp.Items, fromAlert(a))
	}
	return resp, nil
}

// DeviceClaimed records the owner of a newly claimed device and copies
// its model's default rules to it (enabled). The core calls it after the
// claim commits, and retries it: a second call for the same owner changes
// nothing. Data left from a previous owner (an unclaim this package
// missed) is removed first.
func (s *Service) DeviceClaimed(ctx context.Context, deviceID, ownerAccountID string, defaults []*datav1.AlertRuleTemplate) error {
	if uuid.Validate(deviceID) != nil {
		return invalid("device_id", "must be a UUID")
	}
	type tmpl struct {
		name string
		cond tsstore.Condition
	}
	var rules []tmpl
	for i, d := range defaults {
		// The admin API validated the model; a template that still fails
		// is skipped rather than failing the claim's hook forever.
		field := "default_alert_rules[" + strconv.Itoa(i) + "]"
		c, err := toCondition(field+".condition", d.GetCondition())
		if err == nil {
			err = validName(field+".name", d.GetName())
		}
		if err != nil {
			s.log.Warn("skipping invalid default alert rule", zap.String("device_id", deviceID), zap.Error(err))
			continue
		}
		rules = append(rules, tmpl{d.GetName(), c})
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	return s.store.InTx(ctx, func(tx *tsstore.Tx) error {
		owner, claimed, err := tx.DeviceOwner(ctx, deviceID)
		if err != nil {
			return err
		}
		switch {
		case owner == ownerAccountID && claimed:
			return nil
		case owner != "" && owner != ownerAccountID:
			if err := tx.DeleteDevice(ctx, deviceID); err != nil {
				return err
			}
		}
		if err := tx.SetDeviceOwner(ctx, deviceID, ownerAccountID, now); err != nil {
			return err
		}
		for i, t := range rules {
			id, err := uuid.NewV7()
			if err != nil {
				return err
			}
			// Distinct create times keep the model's order in listings.
			at := now.Add(time.Duration(i) * time.Millisecond)
			r := tsstore.Rule{ID: id.String(), DeviceID: deviceID, Name: t.name, Condition: t.cond, Enabled: true, FromModelDefault: true, CreateTime: at, UpdateTime: at}
			if err := tx.InsertRule(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeviceUnclaimed removes a device's rules, alerts and telemetry, so a
// next owner starts empty. Its active alerts are reported cleared on
// `alerts` (without notifying the former owner).
func (s *Service) DeviceUnclaimed(ctx context.Context, deviceID string) error {
	if uuid.Validate(deviceID) != nil {
		return invalid("device_id", "must be a UUID")
	}
	events := false
	err := s.store.InTx(ctx, func(tx *tsstore.Tx) error {
		owner, _, err := tx.DeviceOwner(ctx, deviceID)
		if err != nil {
			return err
		}
		active, err := tx.ActiveAlerts(ctx, deviceID)
		if err != nil {
			return err
		}
		now := s.now().UTC()
		for _, a := range active {
			r := tsstore.Rule{ID: a.RuleID, DeviceID: deviceID, State: tsstore.RuleState{AlertID: a.ID}}
			if err := s.clear(ctx, tx, &r, owner, 0, now, false); err != nil {
				return err
			}
			events = true
		}
		return tx.DeleteDevice(ctx, deviceID)
	})
	if err == nil && events {
		s.notify()
	}
	return err
}
