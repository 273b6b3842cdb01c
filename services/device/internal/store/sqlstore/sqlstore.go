// Package sqlstore implements app.Store over database/sql, for PostgreSQL
// (pgx) and SQLite (modernc.org/sqlite) alike: both drivers bind $n by
// number and the schema uses only types both understand, so every query is
// written once.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/comfortech/platform/libs/sqldb"
	"github.com/comfortech/platform/services/device/internal/app"
)

// VersionTable records the service's migrations.
const VersionTable = "device_goose_db_version"

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates or upgrades the service's tables.
func Migrate(ctx context.Context, db *sqldb.DB) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	if err := sqldb.Migrate(ctx, db.DB, db.Dialect, fsys, VersionTable); err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	return nil
}

// Store is the app.Store over one database.
type Store struct {
	db *sqldb.DB
}

var _ app.Store = (*Store)(nil)

// New returns a store over db, which must be migrated (Migrate).
func New(db *sqldb.DB) *Store { return &Store{db: db} }

const columns = `device_id, serial, model, secret_hash, old_secret_hash, old_secret_exp_us, revoked_us, created_us, updated_us`

// InsertCredentials implements app.Store.
func (s *Store) InsertCredentials(ctx context.Context, cs []app.Credential) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO device_credentials (`+columns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`)
	if err != nil {
		return fmt.Errorf("sqlstore: prepare: %w", err)
	}
	defer func() { _ = stmt.Close() }()
	for i, c := range cs {
		_, err := stmt.ExecContext(ctx, c.DeviceID, c.Serial, c.Model, c.SecretHash, c.OldSecretHash,
			micros(c.OldSecretExpiresAt), micros(c.RevokedAt), c.CreatedAt.UnixMicro(), c.UpdatedAt.UnixMicro())
		if isUniqueViolation(err) {
			return &app.ItemError{Index: i, Err: fmt.Errorf("serial %q: %w", c.Serial, app.ErrConflict)}
		}
		if err != nil {
			return fmt.Errorf("sqlstore: insert credential: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: commit: %w", err)
	}
	return nil
}

// GetCredential implements app.Store.
func (s *Store) GetCredential(ctx context.Context, deviceID string) (app.Credential, error) {
	var (
		c                app.Credential
		oldExp, revoked  sql.NullInt64
		created, updated int64
	)
	err := s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM device_credentials WHERE device_id = $1`, deviceID).
		Scan(&c.DeviceID, &c.Serial, &c.Model, &c.SecretHash, &c.OldSecretHash, &oldExp, &revoked, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return app.Credential{}, fmt.Errorf("credential %s: %w", deviceID, app.ErrNotFound)
	}
	if err != nil {
		return app.Credential{}, fmt.Errorf("sqlstore: get credential: %w", err)
	}
	c.OldSecretExpiresAt, c.RevokedAt = fromMicros(oldExp), fromMicros(revoked)
	c.CreatedAt, c.UpdatedAt = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
	return c, nil
}

// UpdateSecrets implements app.Store.
func (s *Store) UpdateSecrets(ctx context.Context, c app.Credential) error {
	res, err := s.db.ExecContext(ctx, `UPDATE device_credentials SET secret_hash = $2, old_secret_hash = $3,
		old_secret_exp_us = $4, revoked_us = $5, updated_us = $6 WHERE device_id = $1`,
		c.DeviceID, c.SecretHash, c.OldSecretHash, micros(c.OldSecretExpiresAt), micros(c.RevokedAt), c.UpdatedAt.UnixMicro())
	if err != nil {
		return fmt.Errorf("sqlstore: update credential: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlstore: update credential: %w", err)
	} else if n == 0 {
		return fmt.Errorf("credential %s: %w", c.DeviceID, app.ErrNotFound)
	}
	return nil
}

// DeleteCredentials implements app.Store.
func (s *Store) DeleteCredentials(ctx context.Context, ids ...string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, `DELETE FROM device_credentials WHERE device_id = $1`, id); err != nil {
			return fmt.Errorf("sqlstore: delete credential: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: commit: %w", err)
	}
	return nil
}

// micros is t as stored; the zero time is NULL.
func micros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

// fromMicros is the inverse of micros.
func fromMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

// isUniqueViolation reports a unique or primary-key violation, in
// either driver's error type.
func isUniqueViolation(err error) bool {
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pe.Code == "23505"
	}
	if se, ok := errors.AsType[*sqlite.Error](err); ok {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}
