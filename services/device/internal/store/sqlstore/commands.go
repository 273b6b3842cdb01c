package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/comfortech/platform/services/device/internal/app"
)

var _ app.CommandStore = (*Store)(nil)

const commandColumns = `id, device_id, name, params, status, result, error, requested_by, created_us, sent_us, completed_us, expires_us`

// InsertCommand implements app.CommandStore.
func (s *Store) InsertCommand(ctx context.Context, c app.Command) error {
	params, err := json.Marshal(c.Params)
	if err != nil {
		return fmt.Errorf("sqlstore: command params: %w", err)
	}
	result, err := encodeResult(c.Result)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO device_commands (`+commandColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		c.ID, c.DeviceID, c.Name, string(params), string(c.Status), result, c.Error, c.RequestedBy,
		c.CreatedAt.UnixMicro(), micros(c.SentAt), micros(c.CompletedAt), c.ExpiresAt.UnixMicro())
	if isUniqueViolation(err) {
		return fmt.Errorf("command %s: %w", c.ID, app.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: insert command: %w", err)
	}
	return nil
}

// GetCommand implements app.CommandStore.
func (s *Store) GetCommand(ctx context.Context, deviceID, id string) (app.Command, error) {
	c, err := scanCommand(s.db.QueryRowContext(ctx, `SELECT `+commandColumns+` FROM device_commands
		WHERE id = $1 AND device_id = $2`, id, deviceID))
	if errors.Is(err, sql.ErrNoRows) {
		return app.Command{}, fmt.Errorf("command %s: %w", id, app.ErrNotFound)
	}
	return c, err
}

// ListCommands implements app.CommandStore.
func (s *Store) ListCommands(ctx context.Context, deviceID string, status app.CommandStatus, beforeID string, limit int) ([]app.Command, error) {
	return s.queryCommands(ctx, `SELECT `+commandColumns+` FROM device_commands
		WHERE device_id = $1 AND ($2 = '' OR status = $2) AND ($3 = '' OR id < $3)
		ORDER BY id DESC LIMIT $4`, deviceID, string(status), beforeID, limit)
}

// MarkCommandSent implements app.CommandStore.
func (s *Store) MarkCommandSent(ctx context.Context, id string, at time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE device_commands SET status = $2, sent_us = $3
		WHERE id = $1 AND status = $4`, id, string(app.CommandSent), at.UnixMicro(), string(app.CommandQueued))
	if err != nil {
		return false, fmt.Errorf("sqlstore: mark command sent: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlstore: mark command sent: %w", err)
	}
	return n == 1, nil
}

// RequeueCommand implements app.CommandStore.
func (s *Store) RequeueCommand(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE device_commands SET status = $2, sent_us = NULL
		WHERE id = $1 AND status = $3`, id, string(app.CommandQueued), string(app.CommandSent))
	if err != nil {
		return fmt.Errorf("sqlstore: requeue command: %w", err)
	}
	return nil
}

// CompleteCommand implements app.CommandStore.
func (s *Store) CompleteCommand(ctx context.Context, deviceID, id string, status app.CommandStatus, result map[string]any, errMsg string, at time.Time) (app.Command, bool, error) {
	res, err := encodeResult(result)
	if err != nil {
		return app.Command{}, false, err
	}
	c, err := scanCommand(s.db.QueryRowContext(ctx, `UPDATE device_commands
		SET status = $3, result = $4, error = $5, completed_us = $6
		WHERE id = $1 AND device_id = $2 AND status IN ($7, $8)
		RETURNING `+commandColumns, id, deviceID, string(status), res, errMsg, at.UnixMicro(),
		string(app.CommandQueued), string(app.CommandSent)))
	if errors.Is(err, sql.ErrNoRows) {
		return app.Command{}, false, nil
	}
	if err != nil {
		return app.Command{}, false, err
	}
	return c, true, nil
}

// QueuedCommands implements app.CommandStore.
func (s *Store) QueuedCommands(ctx context.Context, deviceID string, now time.Time) ([]app.Command, error) {
	return s.queryCommands(ctx, `SELECT `+commandColumns+` FROM device_commands
		WHERE device_id = $1 AND status = $2 AND expires_us > $3 ORDER BY id`,
		deviceID, string(app.CommandQueued), now.UnixMicro())
}

// DueCommands implements app.CommandStore.
func (s *Store) DueCommands(ctx context.Context, now time.Time, limit int) ([]app.Command, error) {
	return s.queryCommands(ctx, `SELECT `+commandColumns+` FROM device_commands
		WHERE status IN ($1, $2) AND expires_us <= $3 ORDER BY expires_us LIMIT $4`,
		string(app.CommandQueued), string(app.CommandSent), now.UnixMicro(), limit)
}

func (s *Store) queryCommands(ctx context.Context, q string, args ...any) ([]app.Command, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: query commands: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []app.Command
	for rows.Next() {
		c, err := scanCommand(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: query commands: %w", err)
	}
	return out, nil
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanCommand(r scanner) (app.Command, error) {
	var (
		c                      app.Command
		params, result, status string
		created, expires       int64
		sent, completed        sql.NullInt64
	)
	err := r.Scan(&c.ID, &c.DeviceID, &c.Name, &params, &status, &result, &c.Error, &c.RequestedBy,
		&created, &sent, &completed, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return app.Command{}, err
	}
	if err != nil {
		return app.Command{}, fmt.Errorf("sqlstore: scan command: %w", err)
	}
	c.Status = app.CommandStatus(status)
	if err := json.Unmarshal([]byte(params), &c.Params); err != nil {
		return app.Command{}, fmt.Errorf("sqlstore: command %s params: %w", c.ID, err)
	}
	if result != "" {
		if err := json.Unmarshal([]byte(result), &c.Result); err != nil {
			return app.Command{}, fmt.Errorf("sqlstore: command %s result: %w", c.ID, err)
		}
	}
	c.CreatedAt, c.ExpiresAt = time.UnixMicro(created).UTC(), time.UnixMicro(expires).UTC()
	c.SentAt, c.CompletedAt = fromMicros(sent), fromMicros(completed)
	return c, nil
}

// encodeResult is a result as stored: ” when there is none.
func encodeResult(r map[string]any) (string, error) {
	if r == nil {
		return "", nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("sqlstore: command result: %w", err)
	}
	return string(b), nil
}
