// Package sqlstore implements app.Store over database/sql for PostgreSQL
// (pgx) and SQLite (modernc.org/sqlite) with the same SQL: both bind $n by
// number, times are Unix microseconds and flags integers. The one
// difference — PostgreSQL claims due deliveries with FOR UPDATE SKIP
// LOCKED so replicas don't take the same ones, SQLite serialises writers
// by itself — is decided from the sqldb.Dialect.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/comfortech/platform/libs/outbox"
	"github.com/comfortech/platform/libs/sqldb"
	"github.com/comfortech/platform/services/notify/internal/app"
)

// VersionTable records the service's own migrations, apart from the outbox's.
const VersionTable = "notify_goose_db_version"

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates or upgrades the service's tables and the outbox table.
func Migrate(ctx context.Context, db *sqldb.DB) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	if err := sqldb.Migrate(ctx, db.DB, db.Dialect, fsys, VersionTable); err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	return outbox.Migrate(ctx, db.DB, db.Dialect)
}

// Store is the app.Store over one database.
type Store struct {
	db *sqldb.DB
	// wmu serializes this process's write transactions on SQLite, which
	// has one writer at a time: waiting here is a wake-up the moment the
	// writer commits, where SQLite's busy handler sleeps for up to tens
	// of milliseconds between tries.
	wmu sync.Mutex
}

var _ app.Store = (*Store)(nil)

// New returns a store over db, which must be migrated (Migrate).
func New(db *sqldb.DB) *Store { return &Store{db: db} }

func us(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromUS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func notFound(what string) error {
	return &app.Error{Kind: app.ErrNotFound, Msg: what + " not found"}
}

func size(p app.Page, def int) int {
	if p.Size <= 0 {
		return def
	}
	return p.Size
}

// timeToken encodes a (created_at, id) position of a newest-first list.
func timeToken(at int64, id string) string { return strconv.FormatInt(at, 10) + ":" + id }

func parseTimeToken(tok string) (int64, string, error) {
	at, id, ok := strings.Cut(tok, ":")
	v, err := strconv.ParseInt(at, 10, 64)
	if !ok || err != nil {
		return 0, "", &app.Error{Kind: app.ErrInvalid, Field: "page_token", Msg: "invalid page token"}
	}
	return v, id, nil
}

// tx runs fn in a transaction.
func (s *Store) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if s.db.Dialect == sqldb.SQLite {
		s.wmu.Lock()
		defer s.wmu.Unlock()
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: commit: %w", err)
	}
	return nil
}

// PutApplication implements app.Store.
func (s *Store) PutApplication(ctx context.Context, a *app.Application) error {
	doc, err := json.Marshal(a)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO applications (name, doc, created_at, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (name) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at`,
		a.Name, string(doc), us(a.CreateTime), us(a.UpdateTime))
	if err != nil {
		return fmt.Errorf("sqlstore: put application: %w", err)
	}
	return nil
}

func scanApplication(sc interface{ Scan(...any) error }) (*app.Application, error) {
	var doc string
	var created, updated int64
	if err := sc.Scan(&doc, &created, &updated); err != nil {
		return nil, err
	}
	a := &app.Application{}
	if err := json.Unmarshal([]byte(doc), a); err != nil {
		return nil, fmt.Errorf("sqlstore: application: %w", err)
	}
	a.CreateTime, a.UpdateTime = fromUS(created), fromUS(updated)
	return a, nil
}

// GetApplication implements app.Store.
func (s *Store) GetApplication(ctx context.Context, name string) (*app.Application, error) {
	a, err := scanApplication(s.db.QueryRowContext(ctx, `SELECT doc, created_at, updated_at FROM applications WHERE name = $1`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("application")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get application: %w", err)
	}
	return a, nil
}

// ListApplications implements app.Store.
func (s *Store) ListApplications(ctx context.Context, p app.Page) ([]*app.Application, string, error) {
	n := size(p, 50)
	rows, err := s.db.QueryContext(ctx, `SELECT doc, created_at, updated_at FROM applications WHERE name > $1 ORDER BY name LIMIT $2`, p.Token, n+1)
	if err != nil {
		return nil, "", fmt.Errorf("sqlstore: list applications: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []*app.Application
	for rows.Next() {
		a, err := scanApplication(rows)
		if err != nil {
			return nil, "", err
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	if len(out) > n {
		return out[:n], out[n-1].Name, nil
	}
	return out, "", nil
}

// DeleteApplication implements app.Store; the application's templates go too.
func (s *Store) DeleteApplication(ctx context.Context, name string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM applications WHERE name = $1`, name)
		if err != nil {
			return fmt.Errorf("sqlstore: delete application: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("application")
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM templates WHERE application = $1`, name)
		return err
	})
}

// GetPreferences implements app.Store.
func (s *Store) GetPreferences(ctx context.Context, accountID string) (*app.Preferences, error) {
	var doc string
	var updated int64
	err := s.db.QueryRowContext(ctx, `SELECT doc, updated_at FROM preferences WHERE account_id = $1`, accountID).Scan(&doc, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("preferences")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get preferences: %w", err)
	}
	p := &app.Preferences{}
	if err := json.Unmarshal([]byte(doc), p); err != nil {
		return nil, fmt.Errorf("sqlstore: preferences: %w", err)
	}
	p.AccountID, p.UpdateTime = accountID, fromUS(updated)
	return p, nil
}

// PutPreferences implements app.Store.
func (s *Store) PutPreferences(ctx context.Context, p *app.Preferences) error {
	doc, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO preferences (account_id, doc, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (account_id) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at`,
		p.AccountID, string(doc), us(p.UpdateTime))
	if err != nil {
		return fmt.Errorf("sqlstore: put preferences: %w", err)
	}
	return nil
}

// PutPushToken implements app.Store: a known token moves to the account
// registering it and keeps its id and creation time (t is updated).
func (s *Store) PutPushToken(ctx context.Context, t *app.PushToken) error {
	err := s.db.QueryRowContext(ctx, `INSERT INTO push_tokens (id, account_id, platform, token, app_version, created_at, last_seen_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (token) DO UPDATE SET account_id = excluded.account_id, platform = excluded.platform,
			app_version = excluded.app_version, last_seen_at = excluded.last_seen_at
		RETURNING id, created_at`,
		t.ID, t.AccountID, string(t.Platform), t.Token, t.AppVersion, us(t.CreateTime), us(t.LastSeen)).Scan(&t.ID, new(int64))
	if err != nil {
		return fmt.Errorf("sqlstore: put push token: %w", err)
	}
	return nil
}

// ListPushTokens implements app.Store.
func (s *Store) ListPushTokens(ctx context.Context, accountID string, p app.Page) ([]*app.PushToken, string, error) {
	n := size(p, 50)
	rows, err := s.db.QueryContext(ctx, `SELECT id, account_id, platform, token, app_version, created_at, last_seen_at
		FROM push_tokens WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3`, accountID, p.Token, n+1)
	if err != nil {
		return nil, "", fmt.Errorf("sqlstore: list push tokens: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []*app.PushToken
	for rows.Next() {
		t := &app.PushToken{}
		var pl string
		var c, l int64
		if err := rows.Scan(&t.ID, &t.AccountID, &pl, &t.Token, &t.AppVersion, &c, &l); err != nil {
			return nil, "", err
		}
		t.Platform, t.CreateTime, t.LastSeen = app.Platform(pl), fromUS(c), fromUS(l)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	if len(out) > n {
		return out[:n], out[n-1].ID, nil
	}
	return out, "", nil
}

// DeletePushToken implements app.Store.
func (s *Store) DeletePushToken(ctx context.Context, accountID, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM push_tokens WHERE account_id = $1 AND id = $2`, accountID, id)
	if err != nil {
		return fmt.Errorf("sqlstore: delete push token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("push token")
	}
	return nil
}

// DeletePushTokenValue implements app.Store.
func (s *Store) DeletePushTokenValue(ctx context.Context, token string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM push_tokens WHERE token = $1`, token)
	return err
}

const webhookCols = `id, account_id, url, description, event_types, enabled, disabled_reason, secret, old_secret, old_expire, created_at, updated_at`

func scanWebhook(sc interface{ Scan(...any) error }) (*app.WebhookEndpoint, error) {
	e := &app.WebhookEndpoint{}
	var ets string
	var enabled int
	var oe, c, u int64
	if err := sc.Scan(&e.ID, &e.AccountID, &e.URL, &e.Description, &ets, &enabled, &e.DisabledReason, &e.Secret, &e.OldSecret, &oe, &c, &u); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(ets), &e.EventTypes); err != nil {
		return nil, fmt.Errorf("sqlstore: webhook event types: %w", err)
	}
	e.Enabled, e.OldExpire, e.CreateTime, e.UpdateTime = enabled == 1, fromUS(oe), fromUS(c), fromUS(u)
	return e, nil
}

func jsonList(v []string) string {
	if v == nil {
		v = []string{}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// CreateWebhook implements app.Store.
func (s *Store) CreateWebhook(ctx context.Context, e *app.WebhookEndpoint) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO webhooks (`+webhookCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		e.ID, e.AccountID, e.URL, e.Description, jsonList(e.EventTypes), b2i(e.Enabled), e.DisabledReason, e.Secret, e.OldSecret,
		us(e.OldExpire), us(e.CreateTime), us(e.UpdateTime))
	if err != nil {
		return fmt.Errorf("sqlstore: create webhook: %w", err)
	}
	return nil
}

// GetWebhook implements app.Store.
func (s *Store) GetWebhook(ctx context.Context, id string) (*app.WebhookEndpoint, error) {
	e, err := scanWebhook(s.db.QueryRowContext(ctx, `SELECT `+webhookCols+` FROM webhooks WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("webhook endpoint")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get webhook: %w", err)
	}
	return e, nil
}

// ListWebhooks implements app.Store.
func (s *Store) ListWebhooks(ctx context.Context, accountID string, p app.Page) ([]*app.WebhookEndpoint, string, error) {
	n := size(p, 50)
	rows, err := s.db.QueryContext(ctx, `SELECT `+webhookCols+` FROM webhooks WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3`, accountID, p.Token, n+1)
	if err != nil {
		return nil, "", fmt.Errorf("sqlstore: list webhooks: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []*app.WebhookEndpoint
	for rows.Next() {
		e, err := scanWebhook(rows)
		if err != nil {
			return nil, "", err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	if len(out) > n {
		return out[:n], out[n-1].ID, nil
	}
	return out, "", nil
}

// UpdateWebhook implements app.Store.
func (s *Store) UpdateWebhook(ctx context.Context, e *app.WebhookEndpoint) error {
	res, err := s.db.ExecContext(ctx, `UPDATE webhooks SET url = $2, description = $3, event_types = $4, enabled = $5, disabled_reason = $6,
		secret = $7, old_secret = $8, old_expire = $9, updated_at = $10 WHERE id = $1`,
		e.ID, e.URL, e.Description, jsonList(e.EventTypes), b2i(e.Enabled), e.DisabledReason, e.Secret, e.OldSecret, us(e.OldExpire), us(e.UpdateTime))
	if err != nil {
		return fmt.Errorf("sqlstore: update webhook: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("webhook endpoint")
	}
	return nil
}

// DeleteWebhook implements app.Store.
func (s *Store) DeleteWebhook(ctx context.Context, accountID, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM webhooks WHERE account_id = $1 AND id = $2`, accountID, id)
	if err != nil {
		return fmt.Errorf("sqlstore: delete webhook: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("webhook endpoint")
	}
	return nil
}

// newID returns id, or a fresh UUID when it is empty.
func newID(id string) string {
	if id == "" {
		return uuid.NewString()
	}
	return id
}
