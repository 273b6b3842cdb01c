package sqlstore

import (
	"context"
	"database/sql"
	"encoding/hex"

	"github.com/comfortech/platform/services/data/internal/app"
)

const deviceCols = `d.id, d.serial, d.model, d.firmware_version, d.claim_code_hash, d.name, d.owner_id, d.home_id, d.room_id,
	d.online, d.last_seen_us, d.claimed_us, d.created_us, d.updated_us`

// scanDevice scans deviceCols followed by extra destinations.
func scanDevice(s scanner, extra ...any) (app.Device, error) {
	var (
		d                                   app.Device
		hash                                string
		owner, home, room                   sql.NullString
		lastSeen, claimed, created, updated sql.NullInt64
	)
	dest := append([]any{&d.ID, &d.Serial, &d.Model, &d.FirmwareVersion, &hash, &d.Name, &owner, &home, &room,
		&d.Online, &lastSeen, &claimed, &created, &updated}, extra...)
	if err := s.Scan(dest...); err != nil {
		return app.Device{}, err
	}
	var err error
	d.ClaimCodeHash, err = hex.DecodeString(hash)
	d.OwnerID, d.HomeID, d.RoomID = owner.String, home.String, room.String
	d.LastSeen, d.ClaimedAt = fromMicros(lastSeen), fromMicros(claimed)
	d.CreatedAt, d.UpdatedAt = fromMicros(created), fromMicros(updated)
	return d, err
}

// GetDevice implements app.Queries.
func (q queries) GetDevice(ctx context.Context, id string) (app.Device, error) {
	d, err := scanDevice(q.q.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM devices d WHERE d.id = $1`+q.lock, id))
	return d, one("device", err)
}

// GetDeviceBySerial implements app.Queries.
func (q queries) GetDeviceBySerial(ctx context.Context, serial string) (app.Device, error) {
	d, err := scanDevice(q.q.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM devices d WHERE d.serial = $1`+q.lock, serial))
	return d, one("device", err)
}

// ListAccessibleDevices implements app.Queries. The home and room filters
// apply to owned devices only: a member does not see the owner's homes.
func (q queries) ListAccessibleDevices(ctx context.Context, accountID string, f app.DeviceFilter, after app.Cursor, limit int) ([]app.DeviceView, error) {
	base := `SELECT ` + deviceCols + `, CASE WHEN d.owner_id = $1 THEN 1 ELSE 2 END FROM devices d
		WHERE d.claimed_us IS NOT NULL
		AND (d.owner_id = $1 OR EXISTS (SELECT 1 FROM shares s WHERE s.device_id = d.id AND s.account_id = $1))`
	args := []any{accountID}
	if f.HomeID != "" {
		args = append(args, f.HomeID)
		base += ` AND d.owner_id = $1 AND d.home_id = $2`
	}
	if f.RoomID != "" {
		args = append(args, f.RoomID)
		base += ` AND d.owner_id = $1 AND d.room_id = $` + itoa(len(args))
	}
	query, args := listQuery(base, args, "d.claimed_us", "d.id", after, limit)
	return collect(ctx, q.q, "list devices", query, args, func(s scanner) (app.DeviceView, error) {
		var role int
		d, err := scanDevice(s, &role)
		if role == 1 {
			return app.DeviceView{Device: d, Role: app.AccessOwner}, err
		}
		return app.DeviceView{Device: d, Role: app.AccessMember}, err
	})
}

// ListOwnedDevices implements app.Queries.
func (q queries) ListOwnedDevices(ctx context.Context, accountID string) ([]app.Device, error) {
	return collect(ctx, q.q, "list owned devices", `SELECT `+deviceCols+` FROM devices d WHERE d.owner_id = $1 ORDER BY d.id`,
		[]any{accountID}, func(s scanner) (app.Device, error) { return scanDevice(s) })
}

// CountDevicesOfModel implements app.Queries.
func (q queries) CountDevicesOfModel(ctx context.Context, modelID string) (int, error) {
	var n int
	err := q.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM devices WHERE model = $1`, modelID).Scan(&n)
	return n, wrap("count devices", err)
}

// InsertDevice implements app.Tx.
func (t *txStore) InsertDevice(ctx context.Context, d app.Device) (bool, error) {
	n, err := exec(ctx, t.q, `INSERT INTO devices (id, serial, model, firmware_version, claim_code_hash, name, online, created_us, updated_us)
		VALUES ($1, $2, $3, $4, $5, '', FALSE, $6, $7) ON CONFLICT DO NOTHING`,
		d.ID, d.Serial, d.Model, d.FirmwareVersion, hex.EncodeToString(d.ClaimCodeHash), micros(d.CreatedAt), micros(d.UpdatedAt))
	return n == 1, wrap("insert device", err)
}

// UpdateDevice implements app.Tx.
func (t *txStore) UpdateDevice(ctx context.Context, d app.Device) error {
	_, err := exec(ctx, t.q, `UPDATE devices SET firmware_version = $2, name = $3, owner_id = $4, home_id = $5, room_id = $6,
		online = $7, last_seen_us = $8, claimed_us = $9, updated_us = $10 WHERE id = $1`,
		d.ID, d.FirmwareVersion, d.Name, nullString(d.OwnerID), nullString(d.HomeID), nullString(d.RoomID),
		d.Online, micros(d.LastSeen), micros(d.ClaimedAt), micros(d.UpdatedAt))
	return wrap("update device", err)
}

// ClaimDevice implements app.Tx.
func (t *txStore) ClaimDevice(ctx context.Context, d app.Device) (bool, error) {
	n, err := exec(ctx, t.q, `UPDATE devices SET name = $2, owner_id = $3, home_id = $4, room_id = $5, claimed_us = $6, updated_us = $7
		WHERE id = $1 AND owner_id IS NULL`,
		d.ID, d.Name, d.OwnerID, nullString(d.HomeID), nullString(d.RoomID), micros(d.ClaimedAt), micros(d.UpdatedAt))
	return n == 1, wrap("claim device", err)
}

// DeleteDevice implements app.Tx.
func (t *txStore) DeleteDevice(ctx context.Context, id string) error {
	// Children first: no reliance on SQLite's foreign_keys pragma.
	for _, stmt := range []string{
		`DELETE FROM shares WHERE device_id = $1`,
		`DELETE FROM device_states WHERE device_id = $1`,
		`DELETE FROM devices WHERE id = $1`,
	} {
		if _, err := exec(ctx, t.q, stmt, id); err != nil {
			return wrap("delete device", err)
		}
	}
	return nil
}

// scanShare scans a share joined with its member's account.
func scanShare(s scanner) (app.Share, error) {
	var (
		sh      app.Share
		phone   sql.NullString
		created sql.NullInt64
	)
	err := s.Scan(&sh.DeviceID, &sh.AccountID, &phone, &sh.MemberName, &created)
	sh.MemberPhone, sh.CreatedAt = phone.String, fromMicros(created)
	return sh, err
}

const shareSelect = `SELECT s.device_id, s.account_id, a.phone, a.name, s.created_us FROM shares s JOIN accounts a ON a.id = s.account_id`

// GetShare implements app.Queries.
func (q queries) GetShare(ctx context.Context, deviceID, accountID string) (app.Share, error) {
	s, err := scanShare(q.q.QueryRowContext(ctx, shareSelect+` WHERE s.device_id = $1 AND s.account_id = $2`, deviceID, accountID))
	return s, one("share", err)
}

// ListShares implements app.Queries.
func (q queries) ListShares(ctx context.Context, deviceID string, after app.Cursor, limit int) ([]app.Share, error) {
	query, args := listQuery(shareSelect+` WHERE s.device_id = $1`, []any{deviceID}, "s.created_us", "s.account_id", after, limit)
	return collect(ctx, q.q, "list shares", query, args, scanShare)
}

// ListReceivedShares implements app.Queries.
func (q queries) ListReceivedShares(ctx context.Context, accountID string) ([]app.Share, error) {
	return collect(ctx, q.q, "list received shares", shareSelect+` WHERE s.account_id = $1 ORDER BY s.device_id`,
		[]any{accountID}, scanShare)
}

// InsertShare implements app.Tx.
func (t *txStore) InsertShare(ctx context.Context, s app.Share) error {
	_, err := exec(ctx, t.q, `INSERT INTO shares (device_id, account_id, created_us) VALUES ($1, $2, $3)`,
		s.DeviceID, s.AccountID, micros(s.CreatedAt))
	if isUniqueViolation(err) {
		return app.ErrConflict
	}
	return wrap("insert share", err)
}

// DeleteShare implements app.Tx.
func (t *txStore) DeleteShare(ctx context.Context, deviceID, accountID string) (bool, error) {
	n, err := exec(ctx, t.q, `DELETE FROM shares WHERE device_id = $1 AND account_id = $2`, deviceID, accountID)
	return n == 1, wrap("delete share", err)
}

// DeleteSharesOfDevice implements app.Tx.
func (t *txStore) DeleteSharesOfDevice(ctx context.Context, deviceID string) ([]string, error) {
	return collect(ctx, t.q, "delete shares", `DELETE FROM shares WHERE device_id = $1 RETURNING account_id`,
		[]any{deviceID}, func(s scanner) (string, error) {
			var id string
			return id, s.Scan(&id)
		})
}
