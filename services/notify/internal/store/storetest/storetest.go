// Package storetest is the contract suite of app.Store, run against SQLite
// and PostgreSQL, and the helpers giving any test of the service a fresh,
// migrated database of either kind.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/comfortech/platform/libs/sqldb"
	"github.com/comfortech/platform/services/notify/internal/store/sqlstore"
)

// DefaultPostgresDSN is used unless COMFORT_TEST_POSTGRES_DSN says
// otherwise ("off" skips the PostgreSQL runs).
const DefaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Opener returns a fresh migrated database private to t.
type Opener func(t testing.TB) *sqldb.DB

// Dialects returns an Opener per database the suites run against.
func Dialects() map[string]Opener {
	return map[string]Opener{"sqlite": OpenSQLite, "postgres": OpenPostgres}
}

// SQLiteURL returns the URL of a new SQLite database in t's temp directory.
func SQLiteURL(t testing.TB) string { return "sqlite:" + filepath.Join(t.TempDir(), "notify.db") }

// OpenSQLite returns a migrated SQLite database.
func OpenSQLite(t testing.TB) *sqldb.DB { return open(t, SQLiteURL(t)) }

// OpenPostgres returns a migrated PostgreSQL database in a fresh schema.
func OpenPostgres(t testing.TB) *sqldb.DB { return open(t, PostgresURL(t)) }

func open(t testing.TB, u string) *sqldb.DB {
	t.Helper()
	db, err := sqldb.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := sqlstore.Migrate(context.Background(), db); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}

// PostgresURL creates a fresh schema, dropped when t ends, and returns the
// URL selecting it. An unreachable server skips t, or fails it when CI=true.
func PostgresURL(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("COMFORT_TEST_POSTGRES_DSN")
	if dsn == "off" {
		t.Skip("COMFORT_TEST_POSTGRES_DSN=off")
	}
	if dsn == "" {
		dsn = DefaultPostgresDSN
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := sqldb.Open(ctx, dsn)
	if err != nil {
		msg := fmt.Sprintf("PostgreSQL unreachable (set COMFORT_TEST_POSTGRES_DSN, or =off to skip): %v", err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "notify_test_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		_ = admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		defer func() { _ = admin.Close() }()
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
