// Package sqlstore implements app.Store over database/sql, for PostgreSQL
// (pgx) and SQLite (modernc.org/sqlite) alike: both drivers bind $n by
// number and the schema uses only types both understand, so every query is
// written once. Where the two differ, the store decides once from the
// sqldb.Dialect: PostgreSQL needs SELECT ... FOR UPDATE to serialise
// read-modify-write transactions (SQLite serialises write transactions by
// itself and has no FOR UPDATE), set in InTx; devices.serial is made to
// compare byte by byte on PostgreSQL (migration 2, serialBytewise); and
// the fleet list is planned per call and its large totals estimated on
// PostgreSQL only (fleet.go).
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/outbox"
	"github.com/comfortech/platform/libs/sqldb"
	"github.com/comfortech/platform/services/data/internal/app"
)

// VersionTable records the service's own migrations, apart from the
// outbox's.
const VersionTable = "data_goose_db_version"

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates or upgrades the service's tables and the outbox table.
func Migrate(ctx context.Context, db *sqldb.DB) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	if err := sqldb.Migrate(ctx, db.DB, db.Dialect, fsys, VersionTable,
		goose.WithGoMigrations(serialBytewise(db.Dialect))); err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	return outbox.Migrate(ctx, db.DB, db.Dialect)
}

// serialBytewise is migration 2, the one step that differs between the
// dialects: devices.serial compares byte by byte, as SQLite's default
// BINARY collation already does. PostgreSQL compares text by the
// database's collation, which under a linguistic one (en_US.UTF-8)
// ignores hyphens at first and cannot bound a prefix with a range; in "C"
// the fleet list's serial order and its prefix filter (a range on the
// serial index, see fleetWhere) are the same in both databases.
func serialBytewise(d sqldb.Dialect) *goose.Migration {
	alter := func(collation string) *goose.GoFunc {
		return &goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
			if d != sqldb.Postgres {
				return nil
			}
			_, err := tx.ExecContext(ctx, `ALTER TABLE devices ALTER COLUMN serial TYPE TEXT COLLATE `+collation)
			return err
		}}
	}
	return goose.NewGoMigration(2, alter(`"C"`), alter(`"default"`))
}

// Store is the app.Store over one database.
type Store struct {
	queries
	db *sqldb.DB
}

var (
	_ app.Store = (*Store)(nil)
	_ app.Tx    = (*txStore)(nil)
)

// New returns a store over db, which must be migrated (Migrate).
func New(db *sqldb.DB) *Store {
	return &Store{queries: queries{q: db.DB, dialect: db.Dialect}, db: db}
}

// InTx implements app.Store.
func (s *Store) InTx(ctx context.Context, fn func(tx app.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	t := &txStore{queries: queries{q: tx, dialect: s.db.Dialect}, tx: tx}
	if s.db.Dialect == sqldb.Postgres {
		t.lock = " FOR UPDATE"
	}
	if err := fn(t); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: commit: %w", err)
	}
	return nil
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// queries implements app.Queries on a database or a transaction.
type queries struct {
	q       querier
	dialect sqldb.Dialect
	// lock is appended to the single-row getters: " FOR UPDATE" inside a
	// PostgreSQL transaction, "" otherwise.
	lock string
}

// txStore implements app.Tx.
type txStore struct {
	queries
	tx *sql.Tx
}

// Enqueue implements app.Tx.
func (t *txStore) Enqueue(ctx context.Context, msgs ...kafka.Message) error {
	return outbox.Enqueue(ctx, t.tx, msgs...)
}

// Shared helpers: conversions at the SQL boundary.

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

// nullString stores "" as NULL (optional references).
func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// exec runs a statement and returns the rows it affected.
func exec(ctx context.Context, q querier, query string, args ...any) (int64, error) {
	res, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// one reports a missing row as app.ErrNotFound.
func one(what string, err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, app.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: %s: %w", what, err)
	}
	return nil
}

// wrap adds context to a database error.
func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("sqlstore: %s: %w", what, err)
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

// listQuery builds a keyset-paginated query: base (with its WHERE and the
// first args), then "(timeCol, idCol) > (cursor)" when after is set, the
// order and the limit. timeCol "" sorts by idCol alone.
func listQuery(base string, args []any, timeCol, idCol string, after app.Cursor, limit int) (string, []any) {
	return keysetQuery(base, args, timeCol, idCol, after, limit, false)
}

// listQueryDesc is listQuery in descending order: the rows before the
// cursor, last first.
func listQueryDesc(base string, args []any, timeCol, idCol string, after app.Cursor, limit int) (string, []any) {
	return keysetQuery(base, args, timeCol, idCol, after, limit, true)
}

func keysetQuery(base string, args []any, timeCol, idCol string, after app.Cursor, limit int, desc bool) (string, []any) {
	var b strings.Builder
	b.WriteString(base)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	cmp, dir := " > ", ""
	if desc {
		cmp, dir = " < ", " DESC"
	}
	if !after.IsZero() {
		if timeCol == "" {
			b.WriteString(" AND " + idCol + cmp + arg(after.ID))
		} else {
			// Row-value comparison: one index range scan in both databases.
			b.WriteString(" AND (" + timeCol + ", " + idCol + ")" + cmp + "(" + arg(after.Time) + ", " + arg(after.ID) + ")")
		}
	}
	if timeCol == "" {
		b.WriteString(" ORDER BY " + idCol + dir)
	} else {
		b.WriteString(" ORDER BY " + timeCol + dir + ", " + idCol + dir)
	}
	b.WriteString(" LIMIT " + arg(limit))
	return b.String(), args
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// collect scans every row of a query with scan.
func collect[T any](ctx context.Context, q querier, what, query string, args []any, scan func(scanner) (T, error)) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, wrap(what, err)
	}
	defer func() { _ = rows.Close() }()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, wrap(what, err)
		}
		out = append(out, v)
	}
	return out, wrap(what, rows.Err())
}

func itoa(n int) string { return strconv.Itoa(n) }
