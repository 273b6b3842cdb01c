package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/comfortech/platform/services/data/internal/app"
)

// GetState implements app.Queries.
func (q queries) GetState(ctx context.Context, deviceID string) (app.DeviceState, error) {
	var (
		desired, desiredTimes, reported, reportedTimes string
		dv, rv                                         int64
		dAt, rAt                                       sql.NullInt64
	)
	err := q.q.QueryRowContext(ctx, `SELECT desired, desired_times, desired_version, desired_us,
		reported, reported_times, reported_version, reported_us FROM device_states WHERE device_id = $1`+q.lock, deviceID).
		Scan(&desired, &desiredTimes, &dv, &dAt, &reported, &reportedTimes, &rv, &rAt)
	st := app.DeviceState{DeviceID: deviceID}
	if errors.Is(err, sql.ErrNoRows) {
		// A registered device has no state row until its first change.
		st.Desired, st.Reported = emptyDocument(), emptyDocument()
		return st, nil
	}
	if err != nil {
		return st, wrap("get state", err)
	}
	if st.Desired, err = decodeDocument(desired, desiredTimes, dv, dAt); err != nil {
		return st, err
	}
	st.Reported, err = decodeDocument(reported, reportedTimes, rv, rAt)
	return st, err
}

func emptyDocument() app.Document {
	return app.Document{Values: map[string]any{}, FieldTimes: map[string]time.Time{}}
}

func decodeDocument(values, times string, version int64, at sql.NullInt64) (app.Document, error) {
	d := app.Document{Version: version, UpdatedAt: fromMicros(at)}
	var us map[string]int64
	if err := json.Unmarshal([]byte(values), &d.Values); err != nil {
		return d, fmt.Errorf("sqlstore: state document: %w", err)
	}
	if err := json.Unmarshal([]byte(times), &us); err != nil {
		return d, fmt.Errorf("sqlstore: state times: %w", err)
	}
	if d.Values == nil {
		d.Values = map[string]any{}
	}
	d.FieldTimes = make(map[string]time.Time, len(us))
	for k, v := range us {
		d.FieldTimes[k] = time.UnixMicro(v).UTC()
	}
	return d, nil
}

func encodeDocument(d app.Document) (values, times string, err error) {
	if d.Values == nil {
		d.Values = map[string]any{}
	}
	v, err := json.Marshal(d.Values)
	if err != nil {
		return "", "", fmt.Errorf("sqlstore: state document: %w", err)
	}
	us := make(map[string]int64, len(d.FieldTimes))
	for k, t := range d.FieldTimes {
		us[k] = t.UnixMicro()
	}
	ts, err := json.Marshal(us)
	if err != nil {
		return "", "", fmt.Errorf("sqlstore: state times: %w", err)
	}
	return string(v), string(ts), nil
}

// PutState implements app.Tx.
func (t *txStore) PutState(ctx context.Context, s app.DeviceState) error {
	desired, desiredTimes, err := encodeDocument(s.Desired)
	if err != nil {
		return err
	}
	reported, reportedTimes, err := encodeDocument(s.Reported)
	if err != nil {
		return err
	}
	_, err = exec(ctx, t.q, `INSERT INTO device_states (device_id, desired, desired_times, desired_version, desired_us,
			reported, reported_times, reported_version, reported_us)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (device_id) DO UPDATE SET desired = excluded.desired, desired_times = excluded.desired_times,
			desired_version = excluded.desired_version, desired_us = excluded.desired_us,
			reported = excluded.reported, reported_times = excluded.reported_times,
			reported_version = excluded.reported_version, reported_us = excluded.reported_us`,
		s.DeviceID, desired, desiredTimes, s.Desired.Version, micros(s.Desired.UpdatedAt),
		reported, reportedTimes, s.Reported.Version, micros(s.Reported.UpdatedAt))
	return wrap("put state", err)
}
