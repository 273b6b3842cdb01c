package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"

	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	"github.com/comfortech/platform/services/data/internal/app"
)

const modelCols = `id, title, description, metrics, commands, default_alert_rules, created_us, updated_us`

func scanModel(s scanner) (app.DeviceModel, error) {
	var (
		m                        app.DeviceModel
		metrics, commands, rules string
		created, updated         sql.NullInt64
	)
	if err := s.Scan(&m.ID, &m.Title, &m.Description, &metrics, &commands, &rules, &created, &updated); err != nil {
		return m, err
	}
	m.CreatedAt, m.UpdatedAt = fromMicros(created), fromMicros(updated)
	if err := json.Unmarshal([]byte(metrics), &m.Metrics); err != nil {
		return m, fmt.Errorf("model %s metrics: %w", m.ID, err)
	}
	if err := json.Unmarshal([]byte(commands), &m.Commands); err != nil {
		return m, fmt.Errorf("model %s commands: %w", m.ID, err)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(rules), &raw); err != nil {
		return m, fmt.Errorf("model %s rules: %w", m.ID, err)
	}
	for _, r := range raw {
		t := &datav1.AlertRuleTemplate{}
		// DiscardUnknown: rows written by a newer version stay readable.
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(r, t); err != nil {
			return m, fmt.Errorf("model %s rules: %w", m.ID, err)
		}
		m.DefaultAlertRules = append(m.DefaultAlertRules, t)
	}
	return m, nil
}

// GetModel implements app.Queries.
func (q queries) GetModel(ctx context.Context, id string) (app.DeviceModel, error) {
	m, err := scanModel(q.q.QueryRowContext(ctx, `SELECT `+modelCols+` FROM device_models WHERE id = $1`, id))
	return m, one("device model", err)
}

// ListModels implements app.Queries.
func (q queries) ListModels(ctx context.Context, after app.Cursor, limit int) ([]app.DeviceModel, error) {
	query, args := listQuery(`SELECT `+modelCols+` FROM device_models WHERE TRUE`, nil, "", "id", after, limit)
	return collect(ctx, q.q, "list models", query, args, scanModel)
}

// PutModel implements app.Tx.
func (t *txStore) PutModel(ctx context.Context, m app.DeviceModel) error {
	metrics, err := json.Marshal(orEmpty(m.Metrics))
	if err != nil {
		return fmt.Errorf("sqlstore: model metrics: %w", err)
	}
	commands, err := json.Marshal(orEmpty(m.Commands))
	if err != nil {
		return fmt.Errorf("sqlstore: model commands: %w", err)
	}
	raw := make([]json.RawMessage, 0, len(m.DefaultAlertRules))
	for _, r := range m.DefaultAlertRules {
		b, err := protojson.Marshal(r)
		if err != nil {
			return fmt.Errorf("sqlstore: model rules: %w", err)
		}
		raw = append(raw, b)
	}
	rules, err := json.Marshal(raw)
	if err != nil {
		return fmt.Errorf("sqlstore: model rules: %w", err)
	}
	_, err = exec(ctx, t.q, `INSERT INTO device_models (`+modelCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (id) DO UPDATE SET title = excluded.title, description = excluded.description,
			metrics = excluded.metrics, commands = excluded.commands, default_alert_rules = excluded.default_alert_rules,
			updated_us = excluded.updated_us`,
		m.ID, m.Title, m.Description, string(metrics), string(commands), string(rules), micros(m.CreatedAt), micros(m.UpdatedAt))
	return wrap("put model", err)
}

// DeleteModel implements app.Tx.
func (t *txStore) DeleteModel(ctx context.Context, id string) error {
	_, err := exec(ctx, t.q, `DELETE FROM device_models WHERE id = $1`, id)
	return wrap("delete model", err)
}

// orEmpty makes a nil slice encode as [] rather than null.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
