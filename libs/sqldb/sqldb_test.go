package sqldb_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/comfortech/platform/libs/sqldb"
)

func postgresURL(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("COMFORT_TEST_POSTGRES_DSN")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	if dsn == "off" {
		t.Skip("COMFORT_TEST_POSTGRES_DSN=off")
	}
	return dsn
}

var migrations = fstest.MapFS{
	"00001_things.sql": {Data: []byte("-- +goose Up\nCREATE TABLE sqldb_test_things (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n-- +goose Down\nDROP TABLE sqldb_test_things;\n")},
}

func TestOpenAndMigrate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, url string
		dialect   sqldb.Dialect
	}{
		{"sqlite", "sqlite:" + filepath.Join(t.TempDir(), "nested", "data.db"), sqldb.SQLite},
		{"postgres", postgresURL(t), sqldb.Postgres},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db, err := sqldb.Open(ctx, tc.url)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if db.Dialect != tc.dialect {
				t.Fatalf("dialect %q", db.Dialect)
			}
			table := "sqldb_test_version_" + tc.name
			if tc.dialect == sqldb.Postgres {
				// A fresh schema per run keeps the shared database clean.
				schema := "sqldb_test_" + strings.ReplaceAll(t.Name(), "/", "_")
				_, _ = db.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
				if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _, _ = db.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
				db.SetMaxOpenConns(1)
				if _, err := db.ExecContext(ctx, "SET search_path TO "+schema); err != nil {
					t.Fatal(err)
				}
			}
			for range 2 { // idempotent
				if err := sqldb.Migrate(ctx, db.DB, db.Dialect, migrations, table); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := db.ExecContext(ctx, "INSERT INTO sqldb_test_things (id, name) VALUES ($1, $2)", 1, "heater"); err != nil {
				t.Fatal(err)
			}
			var name string
			if err := db.QueryRowContext(ctx, "SELECT name FROM sqldb_test_things WHERE id = $1", 1).Scan(&name); err != nil || name != "heater" {
				t.Fatalf("read back %q, %v", name, err)
			}
			if err := db.Check(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestOpenRejectsBadURLs(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"mysql://x", "sqlite:", "://"} {
		if db, err := sqldb.Open(context.Background(), u); err == nil {
			_ = db.Close()
			t.Errorf("%q accepted", u)
		}
	}
	_, err := sqldb.Open(context.Background(), "postgres://nobody:secret@127.0.0.1:1/none?connect_timeout=1")
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("unreachable database: %v (must fail without the password)", err)
	}
}
