// Package tsstoretest opens throw-away tsstore databases for tests and
// benchmarks and holds the contract suite every dialect must pass.
package tsstoretest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/comfortech/platform/libs/sqldb"
	"github.com/comfortech/platform/services/data/internal/telemetry/tsstore"
)

// DefaultPostgresDSN is used when COMFORT_TEST_POSTGRES_DSN is unset.
const DefaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// PostgresDSN returns the DSN of the test PostgreSQL server.
func PostgresDSN() string {
	if dsn := os.Getenv("COMFORT_TEST_POSTGRES_DSN"); dsn != "" {
		return dsn
	}
	return DefaultPostgresDSN
}

// OpenSQLite returns a migrated store in a fresh SQLite file under the
// test's temporary directory.
func OpenSQLite(tb testing.TB) (*tsstore.Store, *sqldb.DB) {
	tb.Helper()
	ctx := context.Background()
	db, err := sqldb.Open(ctx, "sqlite:"+filepath.Join(tb.TempDir(), "telemetry.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return migrate(tb, db), db
}

// OpenPostgres returns a migrated store in a fresh schema of the test
// PostgreSQL server, dropped when the test ends. It skips the test when
// the server is unreachable, unless CI=true, where it fails.
func OpenPostgres(tb testing.TB) (*tsstore.Store, *sqldb.DB) {
	tb.Helper()
	ctx := context.Background()
	admin, err := sqldb.Open(ctx, PostgresDSN())
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("PostgreSQL unreachable: %v", err)
		}
		tb.Skipf("PostgreSQL unreachable (set COMFORT_TEST_POSTGRES_DSN): %v", err)
	}
	tb.Cleanup(func() { _ = admin.Close() })
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "tsstore_test_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _, _ = admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`) })

	u, err := url.Parse(PostgresDSN())
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema) // pgx passes unknown parameters as run-time settings
	u.RawQuery = q.Encode()
	db, err := sqldb.Open(ctx, u.String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return migrate(tb, db), db
}

func migrate(tb testing.TB, db *sqldb.DB) *tsstore.Store {
	tb.Helper()
	s := tsstore.New(db)
	if err := s.Migrate(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return s
}
