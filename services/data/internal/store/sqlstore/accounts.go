package sqlstore

import (
	"context"
	"database/sql"
	"strings"
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

// ListAccounts implements app.Queries. The query matches with LOWER on
// both sides, so it ignores case everywhere PostgreSQL does and, on
// SQLite (whose LOWER folds only ASCII), for ASCII letters.
func (q queries) ListAccounts(ctx context.Context, f app.AccountFilter, after app.Cursor, limit int) ([]app.Account, error) {
	base := `SELECT ` + accountCols + ` FROM accounts WHERE deleted_us IS NULL`
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + itoa(len(args))
	}
	if f.Phone != "" {
		base += ` AND phone = ` + arg(f.Phone)
	}
	if f.Query != "" {
		p := arg("%" + likeEscaper.Replace(f.Query) + "%")
		base += ` AND (LOWER(name) LIKE LOWER(` + p + `) ESCAPE '\' OR LOWER(email) LIKE LOWER(` + p + `) ESCAPE '\'
			OR phone LIKE ` + p + ` ESCAPE '\')`
	}
	if f.Suspended != nil {
		base += ` AND suspended = ` + arg(*f.Suspended)
	}
	query, args := listQueryDesc(base, args, "created_us", "id", after, limit)
	return collect(ctx, q.q, "list accounts", query, args, scanAccount)
}

// likeEscaper escapes LIKE's wildcards (and its escape character, a
// backslash) so a search matches them literally.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// InsertAccount implements app.Tx.
func (t *txStore) InsertAccount(ctx context.Context, a app.Account) (bool, error) {
	n, err := exec(ctx, t.q, `INSERT INTO accounts (id, phone, name, email, locale, timezone, suspended, suspend_reason, created_us, updated_us)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`,
		a.ID, a.Phone, a.Name, a.Email, a.Locale, a.Timezone, a.Suspended, a.SuspendReason, micros(a.CreatedAt), micros(a.UpdatedAt))
	return n == 1, wrap("insert account", err)
}

// UpdateAccount implements app.Tx.
func (t *txStore) UpdateAccount(ctx context.Context, a app.Account) error {
	_, err := exec(ctx, t.q, `UPDATE accounts SET name = $2, email = $3, locale = $4, timezone = $5,
		suspended = $6, suspend_reason = $7, updated_us = $8 WHERE id = $1`,
		a.ID, a.Name, a.Email, a.Locale, a.Timezone, a.Suspended, a.SuspendReason, micros(a.UpdatedAt))
	return wrap("update account", err)
}

// TombstoneAccount implements app.Tx.
func (t *txStore) TombstoneAccount(ctx context.Context, id string, at time.Time) error {
	_, err := exec(ctx, t.q, `UPDATE accounts SET phone = NULL, name = '', email = '', suspend_reason = '',
		updated_us = $2, deleted_us = $2 WHERE id = $1`, id, micros(at))
	return wrap("tombstone account", err)
}
