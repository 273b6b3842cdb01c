// Package idpstore keeps the embedded identity provider's state in SQLite:
// realms, clients, roles and composites, users with their hashed
// credentials and role mappings, user sessions, signing keys and revoked
// access tokens. The schema is applied with goose from embedded migration
// files when the store opens.
//
// The store knows nothing about OAuth or Keycloak semantics; it is the
// persistence edge of package idp.
package idpstore

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrations embed.FS

// versionTable is goose's bookkeeping table, named so that it cannot clash
// with another component's migrations should the file ever be shared.
const versionTable = "idp_goose_db_version"

// Sentinel errors returned (wrapped) by the store.
var (
	// ErrNotFound means the looked-up row does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a uniqueness constraint (username, email, client id,
	// role name) was violated.
	ErrConflict = errors.New("conflict")
)

// querier is what both *sql.DB and *sql.Tx offer, so that every method
// works inside and outside a transaction.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Store is the SQLite-backed state of the identity provider. It is safe for
// concurrent use.
type Store struct {
	db *sql.DB
	q  querier
}

// Open opens (creating if needed) the SQLite database at path and applies
// the migrations. An empty path opens a private in-memory database, which
// lives as long as the Store.
func Open(ctx context.Context, path string) (*Store, error) {
	const pragmas = "_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)"
	var dsn string
	if path == "" {
		dsn = "file::memory:?" + pragmas
	} else {
		dsn = "file:" + path + "?" + pragmas + "&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("idpstore: open %q: %w", path, err)
	}
	// Every connection to ":memory:" is a database of its own, so the
	// in-memory store must stay on one. A file database also uses one
	// connection: SQLite serialises writers anyway, and one connection
	// turns "database is locked" retries into a plain queue.
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := migrate(ctx, db); err != nil {
		_ = db.Close()
		return nil, err
	}
	return &Store{db: db, q: db}, nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("idpstore: migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys,
		goose.WithTableName(versionTable), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("idpstore: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("idpstore: migrate: %w", err)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("idpstore: close: %w", err)
	}
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("idpstore: ping: %w", err)
	}
	return nil
}

// InTx runs fn with a store whose every call is part of one transaction,
// committed when fn returns nil and rolled back otherwise.
func (s *Store) InTx(ctx context.Context, fn func(tx *Store) error) error {
	if _, ok := s.q.(*sql.Tx); ok {
		return fn(s) // already in a transaction
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("idpstore: begin: %w", err)
	}
	if err := fn(&Store{db: s.db, q: tx}); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("idpstore: commit: %w", err)
	}
	return nil
}

// mapErr turns driver errors into the store's sentinels.
func mapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("idpstore: %s: %w", op, ErrNotFound)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("idpstore: %s: %w: %s", op, ErrConflict, se.Error())
		}
	}
	return fmt.Errorf("idpstore: %s: %w", op, err)
}

// affected turns "no row changed" into ErrNotFound.
func affected(op string, res sql.Result, err error) error {
	if err != nil {
		return mapErr(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return mapErr(op, err)
	}
	if n == 0 {
		return fmt.Errorf("idpstore: %s: %w", op, ErrNotFound)
	}
	return nil
}

// jsonText encodes v for a JSON text column; nil slices and maps become
// empty ones so that the column never holds "null".
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" {
		switch v.(type) {
		case []string:
			return "[]"
		default:
			return "{}"
		}
	}
	return string(b)
}

// fromJSON decodes a JSON text column into dst.
func fromJSON(op, text string, dst any) error {
	if text == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(text), dst); err != nil {
		return fmt.Errorf("idpstore: %s: decode column: %w", op, err)
	}
	return nil
}

// likeEscape escapes LIKE metacharacters in a user-supplied fragment; the
// queries use ESCAPE '\'.
func likeEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
