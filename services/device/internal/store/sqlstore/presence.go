package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/comfortech/platform/services/device/internal/app"
)

var _ app.PresenceStore = (*Store)(nil)

const presenceColumns = `id, device_id, online, reason, at_us`

// InsertPresenceEvent implements app.PresenceStore.
func (s *Store) InsertPresenceEvent(ctx context.Context, e app.PresenceEvent) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO presence_events (`+presenceColumns+`) VALUES ($1, $2, $3, $4, $5)`,
		e.ID, e.DeviceID, e.Online, string(e.Reason), e.At.UnixMicro()); err != nil {
		return fmt.Errorf("sqlstore: insert presence event: %w", err)
	}
	return nil
}

// LatestPresenceEvent implements app.PresenceStore.
func (s *Store) LatestPresenceEvent(ctx context.Context, deviceID string) (app.PresenceEvent, bool, error) {
	e, err := scanPresence(s.db.QueryRowContext(ctx, `SELECT `+presenceColumns+` FROM presence_events
		WHERE device_id = $1 ORDER BY id DESC LIMIT 1`, deviceID))
	if errors.Is(err, sql.ErrNoRows) {
		return app.PresenceEvent{}, false, nil
	}
	if err != nil {
		return app.PresenceEvent{}, false, err
	}
	return e, true, nil
}

// ListPresenceEvents implements app.PresenceStore.
func (s *Store) ListPresenceEvents(ctx context.Context, deviceID string, start, end time.Time, beforeID string, limit int) ([]app.PresenceEvent, error) {
	var startUS, endUS int64 = 0, 1<<63 - 1
	if !start.IsZero() {
		startUS = start.UnixMicro()
	}
	if !end.IsZero() {
		endUS = end.UnixMicro()
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+presenceColumns+` FROM presence_events
		WHERE device_id = $1 AND at_us >= $2 AND at_us < $3 AND ($4 = '' OR id < $4)
		ORDER BY id DESC LIMIT $5`, deviceID, startUS, endUS, beforeID, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list presence events: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []app.PresenceEvent
	for rows.Next() {
		e, err := scanPresence(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list presence events: %w", err)
	}
	return out, nil
}

func scanPresence(r scanner) (app.PresenceEvent, error) {
	var (
		e      app.PresenceEvent
		reason string
		at     int64
	)
	err := r.Scan(&e.ID, &e.DeviceID, &e.Online, &reason, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return app.PresenceEvent{}, err
	}
	if err != nil {
		return app.PresenceEvent{}, fmt.Errorf("sqlstore: scan presence event: %w", err)
	}
	e.Reason, e.At = app.PresenceReason(reason), time.UnixMicro(at).UTC()
	return e, nil
}
