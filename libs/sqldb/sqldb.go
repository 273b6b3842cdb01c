// Package sqldb opens a service's database from one URL — PostgreSQL
// (pgx) in production, embedded SQLite (modernc.org/sqlite) for the
// one-command dev mode — and runs its goose migrations.
//
// Both drivers bind $1, $2, ... by number, so a service writes its SQL once;
// Dialect says where the two really differ (DDL, locking, upserts).
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Dialect is the SQL flavour of a database.
type Dialect string

// The supported dialects.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// DB is an open database and its dialect.
type DB struct {
	*sql.DB
	Dialect Dialect
}

// Open opens the database at rawURL:
//
//	postgres://user@host:5432/db?sslmode=disable   (also postgresql://)
//	sqlite:/var/lib/comfortech/data.db              (also sqlite://relative/path.db)
//
// SQLite databases are created with their directory, in WAL mode, with
// foreign keys on, a busy timeout and immediate write transactions, so
// concurrent writers queue instead of failing. Open checks the connection.
func Open(ctx context.Context, rawURL string) (*DB, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	var db *DB
	switch u.Scheme {
	case "postgres", "postgresql":
		sdb, err := sql.Open("pgx", rawURL)
		if err != nil {
			return nil, fmt.Errorf("database: %w", err)
		}
		sdb.SetMaxOpenConns(20)
		sdb.SetMaxIdleConns(20)
		sdb.SetConnMaxIdleTime(5 * time.Minute)
		db = &DB{DB: sdb, Dialect: Postgres}
	case "sqlite":
		path := u.Opaque
		if path == "" {
			path = u.Host + u.Path
		}
		if path == "" {
			return nil, errors.New("database url: sqlite: needs a file path, e.g. sqlite:.data/data.db")
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("database: %w", err)
		}
		dsn := "file:" + path + "?_txlock=immediate" +
			"&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
		sdb, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("database: %w", err)
		}
		sdb.SetMaxOpenConns(4)
		db = &DB{DB: sdb, Dialect: SQLite}
	default:
		return nil, fmt.Errorf("database url: scheme %q: want postgres or sqlite (postgres://host/db, sqlite:path)", u.Scheme)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("database %s: %w", redact(u), err)
	}
	return db, nil
}

// Check reports whether the database answers, for /readyz.
func (db *DB) Check(ctx context.Context) error { return db.PingContext(ctx) }

// Migrate applies the goose migrations in fsys (the files directly in it)
// and records them in table, so that several migration sets (the
// service's, the outbox's) number from 1 independently in one database.
// opts add provider options, e.g. goose.WithGoMigrations for a step that
// differs between the dialects.
func Migrate(ctx context.Context, db *sql.DB, d Dialect, fsys fs.FS, table string, opts ...goose.ProviderOption) error {
	gd := goose.DialectPostgres
	if d == SQLite {
		gd = goose.DialectSQLite3
	}
	opts = append([]goose.ProviderOption{goose.WithTableName(table), goose.WithDisableGlobalRegistry(true)}, opts...)
	p, err := goose.NewProvider(gd, db, fsys, opts...)
	if err != nil {
		return fmt.Errorf("migrations %s: %w", table, err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", table, err)
	}
	return nil
}

// redact drops the password of a URL for error messages.
func redact(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User(c.User.Username())
	}
	return strings.TrimSuffix(c.String(), "?")
}
