// Package storetest is the contract suite of app.Store, run against
// SQLite and PostgreSQL, and the helpers that give any test of the
// service a fresh, migrated database of either kind.
package storetest

import (
	"context"
	"testing"

	"github.com/comfortech/platform/libs/sqldb"
	"github.com/comfortech/platform/libs/sqldb/sqldbtest"
	"github.com/comfortech/platform/services/device/internal/store/sqlstore"
)

// Opener returns a fresh migrated database private to t.
type Opener func(t testing.TB) *sqldb.DB

// Dialects returns an Opener per database the suites run against.
func Dialects() map[string]Opener {
	return map[string]Opener{"sqlite": OpenSQLite, "postgres": OpenPostgres}
}

// OpenSQLite returns a migrated SQLite database in t's temp directory.
func OpenSQLite(t testing.TB) *sqldb.DB {
	t.Helper()
	db := sqldbtest.Open(t, sqldbtest.SQLiteURL(t))
	migrate(t, db)
	return db
}

// OpenPostgres returns a migrated PostgreSQL database in a fresh schema.
func OpenPostgres(t testing.TB) *sqldb.DB {
	t.Helper()
	db := sqldbtest.Open(t, sqldbtest.PostgresURL(t))
	migrate(t, db)
	return db
}

// PostgresURL is sqldbtest.PostgresURL: a fresh schema on the test server.
func PostgresURL(t testing.TB) string {
	t.Helper()
	return sqldbtest.PostgresURL(t)
}

func migrate(t testing.TB, db *sqldb.DB) {
	t.Helper()
	if err := sqlstore.Migrate(context.Background(), db); err != nil {
		t.Fatalf("migrate: %v", err)
	}
}
