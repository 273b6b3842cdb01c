// Package sqldbtest gives tests a private database of either kind the
// platform supports: a SQLite file in the test's temp directory, or a
// fresh schema on the test PostgreSQL server, dropped when the test ends.
package sqldbtest

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
)

// DefaultPostgresDSN is used unless COMFORT_TEST_POSTGRES_DSN says
// otherwise ("off" skips the PostgreSQL runs).
const DefaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// SQLiteURL returns the URL of a new SQLite database in t's temp directory.
func SQLiteURL(t testing.TB) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "test.db")
}

// PostgresURL creates a fresh, empty schema, dropped when t ends, and
// returns the URL of the test server that selects it. An unreachable
// server skips t, or fails it when CI=true.
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
	schema := "test_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		_ = admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	// Cleanups run last-registered first: this one runs after the
	// connections of the schema's users are closed.
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
	q.Set("search_path", schema) // pgx sends unknown parameters as run-time settings
	u.RawQuery = q.Encode()
	return u.String()
}

// Open opens the database at rawURL, closed when t ends.
func Open(t testing.TB, rawURL string) *sqldb.DB {
	t.Helper()
	db, err := sqldb.Open(context.Background(), rawURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}
