package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/comfortech/platform/services/data/internal/app"
)

const accountCols = `id, phone, name, email, locale, timezone, suspended, suspend_reason, created_us, updated_us, deleted_us`

func scanAccount(s scanner) (app.Account, error) {
	var (
		a                app.Account
		phone            sql.NullString
		created, updated sql.NullInt64
		deleted          sql.NullInt64
	)
	err := s.Scan(&a.ID, &phone, &a.Name, &a.Email, &a.Locale, &a.Timezone, &a.Suspended, &a.SuspendReason,
		&created, &updated, &deleted)
	a.Phone = phone.String
	a.CreatedAt, a.UpdatedAt, a.DeletedAt = fromMicros(created), fromMicros(updated), fromMicros(deleted)
	return a, err
}

// GetAccount implements app.Queries.
func (q queries) GetAccount(ctx context.Context, id string) (app.Account, error) {
	a, err := scanAccount(q.q.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE id = $1`+q.lock, id))
	return a, one("account", err)
}

// AccountByPhone implements app.Queries.
func (q queries) AccountByPhone(ctx context.Context, phone string) (app.Account, error) {
	a, err := scanAccount(q.q.QueryRowContext(ctx,
		`SELECT `+accountCols+` FROM accounts WHERE phone = $1 AND deleted_us IS NULL`, phone))
	return a, one("account", err)
}

// InsertAccount implements app.Tx.
func (t *txStore) InsertAccount(ctx context.Context, a app.Account) (bool, error) {
	n, err := exec(ctx, t.q, `INSERT INTO accounts (id, phone, name, email, locale, timezone, suspended, suspend_reason, created_us, updated_us)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`,
		a.ID, a.Phone, a.Name, a.Email, a.Locale, a.Timezone, a.Suspended, a.SuspendReason, micros(a.CreatedAt), micros(a.UpdatedAt))
	return n == 1, wrap("insert account", err)
}

// UpdateAccount implements app.Tx.
func (t *txStore) UpdateAccount(ctx context.Context, a app.Account) error {
	_, err := exec(ctx, t.q, `UPDATE accounts SET name = $2, email = $3, locale = $4, timezone = $5, updated_us = $6 WHERE id = $1`,
		a.ID, a.Name, a.Email, a.Locale, a.Timezone, micros(a.UpdatedAt))
	return wrap("update account", err)
}

// TombstoneAccount implements app.Tx.
func (t *txStore) TombstoneAccount(ctx context.Context, id string, at time.Time) error {
	_, err := exec(ctx, t.q, `UPDATE accounts SET phone = NULL, name = '', email = '', suspend_reason = '',
		updated_us = $2, deleted_us = $2 WHERE id = $1`, id, micros(at))
	return wrap("tombstone account", err)
}
