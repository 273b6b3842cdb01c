package tsstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Condition is when a rule raises and clears its alert.
type Condition struct {
	Metric string
	// Operator is the name of a datav1.Operator, e.g. "OPERATOR_LESS_THAN".
	Operator    string
	Threshold   float64
	Hysteresis  float64
	MinDuration time.Duration
	Level       string
}

// Phase is where a rule's state machine is.
type Phase string

// The phases of a rule: ok → pending → firing → clearing → ok.
const (
	// PhaseOK: the condition does not hold.
	PhaseOK Phase = "ok"
	// PhasePending: the condition holds, not yet for the minimum duration.
	PhasePending Phase = "pending"
	// PhaseFiring: the alert is raised.
	PhaseFiring Phase = "firing"
	// PhaseClearing: the alert is raised and the value is back past the
	// hysteresis, not yet for the minimum duration.
	PhaseClearing Phase = "clearing"
)

// RuleState is the persisted state of a rule's state machine.
type RuleState struct {
	Phase Phase
	// Since is when the current pending or clearing phase began (ms).
	Since int64
	// SinceValue is the value that started it.
	SinceValue float64
	// LastTS is the time of the last evaluated point (ms); older points
	// are not evaluated, so late data cannot move the state backwards.
	LastTS int64
	// AlertID is the raised alert while firing or clearing.
	AlertID string
}

// Rule is an alert rule of a device with its state.
type Rule struct {
	ID               string
	DeviceID         string
	Name             string
	Condition        Condition
	Enabled          bool
	FromModelDefault bool
	CreateTime       time.Time
	UpdateTime       time.Time
	State            RuleState
}

// Alert is one raising of a rule.
type Alert struct {
	ID         string
	RuleID     string
	DeviceID   string
	RuleName   string
	Condition  Condition
	Active     bool
	RaiseValue float64
	RaiseTime  time.Time
	ClearValue float64
	ClearTime  time.Time // zero while active
}

const ruleColumns = `id, device_id, name, metric, operator, threshold, hysteresis, min_duration_ms, level,
	enabled, from_model_default, create_time, update_time, phase, phase_since, phase_value, last_ts, alert_id`

func scanRule(sc interface{ Scan(...any) error }) (Rule, error) {
	var (
		r                    Rule
		minDur, ct, ut       int64
		enabled, fromDefault bool
		alertID              sql.NullString
	)
	err := sc.Scan(&r.ID, &r.DeviceID, &r.Name, &r.Condition.Metric, &r.Condition.Operator, &r.Condition.Threshold,
		&r.Condition.Hysteresis, &minDur, &r.Condition.Level, &enabled, &fromDefault, &ct, &ut,
		&r.State.Phase, &r.State.Since, &r.State.SinceValue, &r.State.LastTS, &alertID)
	if err != nil {
		return Rule{}, err
	}
	r.Condition.MinDuration = time.Duration(minDur) * time.Millisecond
	r.Enabled, r.FromModelDefault = enabled, fromDefault
	r.CreateTime, r.UpdateTime = fromMS(ct), fromMS(ut)
	r.State.AlertID = alertID.String
	return r, nil
}

// nullable maps "" to NULL (for the UUID alert_id column).
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// InsertRule stores a new rule.
func (t *Tx) InsertRule(ctx context.Context, r Rule) error {
	c := r.Condition
	_, err := t.tx.ExecContext(ctx, `INSERT INTO alert_rules (`+ruleColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
		r.ID, r.DeviceID, r.Name, c.Metric, c.Operator, c.Threshold, c.Hysteresis, c.MinDuration.Milliseconds(), c.Level,
		r.Enabled, r.FromModelDefault, ms(r.CreateTime), ms(r.UpdateTime),
		orOK(r.State.Phase), r.State.Since, r.State.SinceValue, r.State.LastTS, nullable(r.State.AlertID))
	if err != nil {
		return fmt.Errorf("tsstore: insert rule: %w", err)
	}
	return nil
}

func orOK(p Phase) Phase {
	if p == "" {
		return PhaseOK
	}
	return p
}

// UpdateRule stores a changed rule, definition and state.
func (t *Tx) UpdateRule(ctx context.Context, r Rule) error {
	c := r.Condition
	res, err := t.tx.ExecContext(ctx, `UPDATE alert_rules SET name = $3, metric = $4, operator = $5, threshold = $6,
		hysteresis = $7, min_duration_ms = $8, level = $9, enabled = $10, update_time = $11,
		phase = $12, phase_since = $13, phase_value = $14, last_ts = $15, alert_id = $16
		WHERE device_id = $1 AND id = $2`,
		r.DeviceID, r.ID, r.Name, c.Metric, c.Operator, c.Threshold, c.Hysteresis, c.MinDuration.Milliseconds(), c.Level,
		r.Enabled, ms(r.UpdateTime), orOK(r.State.Phase), r.State.Since, r.State.SinceValue, r.State.LastTS, nullable(r.State.AlertID))
	if err != nil {
		return fmt.Errorf("tsstore: update rule: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return ErrNotFound
	}
	return nil
}

// SaveRuleState stores the state of a rule's state machine.
func (t *Tx) SaveRuleState(ctx context.Context, ruleID string, st RuleState) error {
	_, err := t.tx.ExecContext(ctx, `UPDATE alert_rules SET phase = $2, phase_since = $3, phase_value = $4, last_ts = $5, alert_id = $6 WHERE id = $1`,
		ruleID, orOK(st.Phase), st.Since, st.SinceValue, st.LastTS, nullable(st.AlertID))
	if err != nil {
		return fmt.Errorf("tsstore: save rule state: %w", err)
	}
	return nil
}

// DeleteRule deletes a rule; ErrNotFound when the device has no such rule.
func (t *Tx) DeleteRule(ctx context.Context, deviceID, ruleID string) error {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM alert_rules WHERE device_id = $1 AND id = $2`, deviceID, ruleID)
	if err != nil {
		return fmt.Errorf("tsstore: delete rule: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return ErrNotFound
	}
	return nil
}

// RuleForUpdate returns a rule of a device, locked until the transaction
// ends; ErrNotFound when the device has no such rule.
func (t *Tx) RuleForUpdate(ctx context.Context, deviceID, ruleID string) (Rule, error) {
	r, err := scanRule(t.tx.QueryRowContext(ctx, `SELECT `+ruleColumns+` FROM alert_rules WHERE device_id = $1 AND id = $2`+t.forUpdate(), deviceID, ruleID))
	if errors.Is(err, sql.ErrNoRows) {
		return Rule{}, ErrNotFound
	}
	if err != nil {
		return Rule{}, fmt.Errorf("tsstore: rule: %w", err)
	}
	return r, nil
}

// EnabledRulesForUpdate returns the enabled rules of the given devices,
// by device and age, locked until the transaction ends so that concurrent
// appends for a device evaluate its rules one after the other.
func (t *Tx) EnabledRulesForUpdate(ctx context.Context, deviceIDs []string) ([]Rule, error) {
	var out []Rule
	// Chunks keep the statement under every driver's parameter limit.
	for chunk := range slices.Chunk(deviceIDs, 500) {
		args := make([]any, len(chunk))
		ph := make([]string, len(chunk))
		for i, id := range chunk {
			args[i], ph[i] = id, fmt.Sprintf("$%d", i+1)
		}
		rows, err := t.tx.QueryContext(ctx, `SELECT `+ruleColumns+` FROM alert_rules WHERE enabled AND device_id IN (`+
			strings.Join(ph, ", ")+`) ORDER BY device_id, create_time, id`+t.forUpdate(), args...)
		if err != nil {
			return nil, fmt.Errorf("tsstore: rules: %w", err)
		}
		rules, err := collectRules(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, rules...)
	}
	return out, nil
}

func collectRules(rows *sql.Rows) ([]Rule, error) {
	defer func() { _ = rows.Close() }()
	var out []Rule
	for rows.Next() {
		r, err := scanRule(rows)
		if err != nil {
			return nil, fmt.Errorf("tsstore: rules: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tsstore: rules: %w", err)
	}
	return out, nil
}

// Rule returns a rule of a device; ErrNotFound when it has no such rule.
func (s *Store) Rule(ctx context.Context, deviceID, ruleID string) (Rule, error) {
	r, err := scanRule(s.db.QueryRowContext(ctx, `SELECT `+ruleColumns+` FROM alert_rules WHERE device_id = $1 AND id = $2`, deviceID, ruleID))
	if errors.Is(err, sql.ErrNoRows) {
		return Rule{}, ErrNotFound
	}
	if err != nil {
		return Rule{}, fmt.Errorf("tsstore: rule: %w", err)
	}
	return r, nil
}

// RuleCursor is the position of the last rule of a page.
type RuleCursor struct {
	CreateTime time.Time
	ID         string
}

// ListRules returns up to limit rules of a device after the cursor (nil =
// from the start), oldest first.
func (s *Store) ListRules(ctx context.Context, deviceID string, after *RuleCursor, limit int) ([]Rule, error) {
	q := `SELECT ` + ruleColumns + ` FROM alert_rules WHERE device_id = $1`
	args := []any{deviceID, limit}
	if after != nil {
		q += ` AND (create_time > $3 OR (create_time = $3 AND id > $4))`
		args = append(args, ms(after.CreateTime), after.ID)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY create_time, id LIMIT $2`, args...)
	if err != nil {
		return nil, fmt.Errorf("tsstore: list rules: %w", err)
	}
	return collectRules(rows)
}

const alertColumns = `id, rule_id, device_id, rule_name, metric, operator, threshold, hysteresis, min_duration_ms,
	level, active, raise_value, raise_time, clear_value, clear_time`

// InsertAlert stores a newly raised alert.
func (t *Tx) InsertAlert(ctx context.Context, a Alert) error {
	c := a.Condition
	_, err := t.tx.ExecContext(ctx, `INSERT INTO alerts (`+alertColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		a.ID, a.RuleID, a.DeviceID, a.RuleName, c.Metric, c.Operator, c.Threshold, c.Hysteresis, c.MinDuration.Milliseconds(),
		c.Level, a.Active, a.RaiseValue, ms(a.RaiseTime), a.ClearValue, clearMS(a.ClearTime))
	if err != nil {
		return fmt.Errorf("tsstore: insert alert: %w", err)
	}
	return nil
}

func clearMS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return ms(t)
}

// ClearAlert marks an active alert cleared and returns it as stored;
// ErrNotFound when it is not active.
func (t *Tx) ClearAlert(ctx context.Context, alertID string, value float64, at time.Time) (Alert, error) {
	res, err := t.tx.ExecContext(ctx, `UPDATE alerts SET active = false, clear_value = $2, clear_time = $3 WHERE id = $1 AND active`,
		alertID, value, ms(at))
	if err != nil {
		return Alert{}, fmt.Errorf("tsstore: clear alert: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return Alert{}, ErrNotFound
	}
	a, err := scanAlert(t.tx.QueryRowContext(ctx, `SELECT `+alertColumns+` FROM alerts WHERE id = $1`, alertID))
	if err != nil {
		return Alert{}, fmt.Errorf("tsstore: clear alert: %w", err)
	}
	return a, nil
}

// ActiveAlerts returns the active alerts of a device.
func (t *Tx) ActiveAlerts(ctx context.Context, deviceID string) ([]Alert, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT `+alertColumns+` FROM alerts WHERE device_id = $1 AND active ORDER BY raise_time, id`, deviceID)
	if err != nil {
		return nil, fmt.Errorf("tsstore: active alerts: %w", err)
	}
	return collectAlerts(rows)
}

func scanAlert(sc interface{ Scan(...any) error }) (Alert, error) {
	var (
		a          Alert
		minDur     int64
		raise, clr int64
		active     bool
	)
	err := sc.Scan(&a.ID, &a.RuleID, &a.DeviceID, &a.RuleName, &a.Condition.Metric, &a.Condition.Operator, &a.Condition.Threshold,
		&a.Condition.Hysteresis, &minDur, &a.Condition.Level, &active, &a.RaiseValue, &raise, &a.ClearValue, &clr)
	if err != nil {
		return Alert{}, err
	}
	a.Condition.MinDuration = time.Duration(minDur) * time.Millisecond
	a.Active = active
	a.RaiseTime, a.ClearTime = fromMS(raise), fromMS(clr)
	return a, nil
}

func collectAlerts(rows *sql.Rows) ([]Alert, error) {
	defer func() { _ = rows.Close() }()
	var out []Alert
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, fmt.Errorf("tsstore: alerts: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tsstore: alerts: %w", err)
	}
	return out, nil
}

// AlertCursor is the position of the last alert of a page.
type AlertCursor struct {
	RaiseTime time.Time
	ID        string
}

// ListAlerts returns up to limit alerts of a device after the cursor (nil =
// from the start), newest first; active filters on the state when not nil.
func (s *Store) ListAlerts(ctx context.Context, deviceID string, active *bool, after *AlertCursor, limit int) ([]Alert, error) {
	q := `SELECT ` + alertColumns + ` FROM alerts WHERE device_id = $1`
	args := []any{deviceID, limit}
	if active != nil {
		args = append(args, *active)
		q += fmt.Sprintf(` AND active = $%d`, len(args))
	}
	if after != nil {
		args = append(args, ms(after.RaiseTime), after.ID)
		n := len(args)
		q += fmt.Sprintf(` AND (raise_time < $%d OR (raise_time = $%d AND id < $%d))`, n-1, n-1, n)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY raise_time DESC, id DESC LIMIT $2`, args...)
	if err != nil {
		return nil, fmt.Errorf("tsstore: list alerts: %w", err)
	}
	return collectAlerts(rows)
}
