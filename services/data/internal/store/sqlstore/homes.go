package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/comfortech/platform/services/data/internal/app"
)

// homeSelect reads homes with their device count.
const homeSelect = `SELECT h.id, h.owner_id, h.name, h.timezone, h.created_us, h.updated_us,
	(SELECT COUNT(*) FROM devices d WHERE d.home_id = h.id) FROM homes h`

func scanHome(s scanner) (app.Home, error) {
	var (
		h                app.Home
		created, updated sql.NullInt64
	)
	err := s.Scan(&h.ID, &h.OwnerID, &h.Name, &h.Timezone, &created, &updated, &h.DeviceCount)
	h.CreatedAt, h.UpdatedAt = fromMicros(created), fromMicros(updated)
	return h, err
}

// GetHome implements app.Queries.
func (q queries) GetHome(ctx context.Context, id string) (app.Home, error) {
	h, err := scanHome(q.q.QueryRowContext(ctx, homeSelect+` WHERE h.id = $1`, id))
	return h, one("home", err)
}

// ListHomes implements app.Queries.
func (q queries) ListHomes(ctx context.Context, ownerID string, after app.Cursor, limit int) ([]app.Home, error) {
	query, args := listQuery(homeSelect+` WHERE h.owner_id = $1`, []any{ownerID}, "h.created_us", "h.id", after, limit)
	return collect(ctx, q.q, "list homes", query, args, scanHome)
}

// roomSelect reads rooms with their device count.
const roomSelect = `SELECT r.id, r.home_id, r.name, r.created_us, r.updated_us,
	(SELECT COUNT(*) FROM devices d WHERE d.room_id = r.id) FROM rooms r`

func scanRoom(s scanner) (app.Room, error) {
	var (
		r                app.Room
		created, updated sql.NullInt64
	)
	err := s.Scan(&r.ID, &r.HomeID, &r.Name, &created, &updated, &r.DeviceCount)
	r.CreatedAt, r.UpdatedAt = fromMicros(created), fromMicros(updated)
	return r, err
}

// GetRoom implements app.Queries.
func (q queries) GetRoom(ctx context.Context, homeID, roomID string) (app.Room, error) {
	r, err := scanRoom(q.q.QueryRowContext(ctx, roomSelect+` WHERE r.id = $1 AND r.home_id = $2`, roomID, homeID))
	return r, one("room", err)
}

// ListRooms implements app.Queries.
func (q queries) ListRooms(ctx context.Context, homeID string, after app.Cursor, limit int) ([]app.Room, error) {
	query, args := listQuery(roomSelect+` WHERE r.home_id = $1`, []any{homeID}, "r.created_us", "r.id", after, limit)
	return collect(ctx, q.q, "list rooms", query, args, scanRoom)
}

// InsertHome implements app.Tx.
func (t *txStore) InsertHome(ctx context.Context, h app.Home) error {
	_, err := exec(ctx, t.q, `INSERT INTO homes (id, owner_id, name, timezone, created_us, updated_us) VALUES ($1, $2, $3, $4, $5, $6)`,
		h.ID, h.OwnerID, h.Name, h.Timezone, micros(h.CreatedAt), micros(h.UpdatedAt))
	return wrap("insert home", err)
}

// UpdateHome implements app.Tx.
func (t *txStore) UpdateHome(ctx context.Context, h app.Home) error {
	_, err := exec(ctx, t.q, `UPDATE homes SET name = $2, timezone = $3, updated_us = $4 WHERE id = $1`,
		h.ID, h.Name, h.Timezone, micros(h.UpdatedAt))
	return wrap("update home", err)
}

// DeleteHome implements app.Tx.
func (t *txStore) DeleteHome(ctx context.Context, id string) error {
	_, err := exec(ctx, t.q, `DELETE FROM homes WHERE id = $1`, id)
	return wrap("delete home", err)
}

// DeleteHomesOf implements app.Tx.
func (t *txStore) DeleteHomesOf(ctx context.Context, ownerID string) error {
	_, err := exec(ctx, t.q, `DELETE FROM homes WHERE owner_id = $1`, ownerID)
	return wrap("delete homes", err)
}

// InsertRoom implements app.Tx.
func (t *txStore) InsertRoom(ctx context.Context, r app.Room) error {
	_, err := exec(ctx, t.q, `INSERT INTO rooms (id, home_id, name, created_us, updated_us) VALUES ($1, $2, $3, $4, $5)`,
		r.ID, r.HomeID, r.Name, micros(r.CreatedAt), micros(r.UpdatedAt))
	return roomErr("insert room", err)
}

// UpdateRoom implements app.Tx.
func (t *txStore) UpdateRoom(ctx context.Context, r app.Room) error {
	_, err := exec(ctx, t.q, `UPDATE rooms SET name = $2, updated_us = $3 WHERE id = $1`, r.ID, r.Name, micros(r.UpdatedAt))
	return roomErr("update room", err)
}

// roomErr turns the (home_id, name) unique violation into app.ErrConflict.
func roomErr(what string, err error) error {
	if isUniqueViolation(err) {
		return app.ErrConflict
	}
	return wrap(what, err)
}

// DeleteRoom implements app.Tx.
func (t *txStore) DeleteRoom(ctx context.Context, id string) error {
	// Explicit rather than relying on ON DELETE SET NULL, which SQLite
	// honours only with its foreign_keys pragma on.
	if _, err := exec(ctx, t.q, `UPDATE devices SET room_id = NULL WHERE room_id = $1`, id); err != nil {
		return wrap("delete room", err)
	}
	_, err := exec(ctx, t.q, `DELETE FROM rooms WHERE id = $1`, id)
	return wrap("delete room", err)
}

// MoveHomeDevices implements app.Tx.
func (t *txStore) MoveHomeDevices(ctx context.Context, from, to string, at time.Time) error {
	_, err := exec(ctx, t.q, `UPDATE devices SET home_id = $2, room_id = NULL, updated_us = $3 WHERE home_id = $1`,
		from, to, micros(at))
	return wrap("move devices", err)
}
