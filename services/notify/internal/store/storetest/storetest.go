// Package storetest is the contract suite of app.Store, run against SQLite
// and PostgreSQL, and the helpers giving any test of the service a fresh,
// migrated database of either kind.
package storetest

import (
	"context"
	"testing"

	"github.com/comfortech/platform/libs/sqldb"
	"github.com/comfortech/platform/libs/sqldb/sqldbtest"
	"github.com/comfortech/platform/services/notify/internal/store/sqlstore"
)

// Opener returns a fresh migrated database private to t.
type Opener func(t testing.TB) *sqldb.DB

// Dialects returns an Opener per database the suites run against.
func Dialects() map[string]Opener {
	return map[string]Opener{"sqlite": OpenSQLite, "postgres": OpenPostgres}
}

// SQLiteURL returns the URL of a new SQLite database in t's temp directory.
func SQLiteURL(t testing.TB) string { return sqldbtest.SQLiteURL(t) }

// OpenSQLite returns a migrated SQLite database.
func OpenSQLite(t testing.TB) *sqldb.DB { return open(t, SQLiteURL(t)) }

// OpenPostgres returns a migrated PostgreSQL database in a fresh schema.
func OpenPostgres(t testing.TB) *sqldb.DB { return open(t, PostgresURL(t)) }

func open(t testing.TB, u string) *sqldb.DB {
	t.Helper()
	db := sqldbtest.Open(t, u)
	if err := sqlstore.Migrate(context.Background(), db); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}

// PostgresURL creates a fresh schema, dropped when t ends, and returns the
// URL selecting it (sqldbtest.PostgresURL).
func PostgresURL(t testing.TB) string {
	t.Helper()
	return sqldbtest.PostgresURL(t)
}
