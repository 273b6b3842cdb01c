package sqlstore_test

import (
	"testing"

	"github.com/comfortech/platform/services/notify/internal/app"
	"github.com/comfortech/platform/services/notify/internal/store/sqlstore"
	"github.com/comfortech/platform/services/notify/internal/store/storetest"
)

// TestStore runs the store contract on SQLite and PostgreSQL.
func TestStore(t *testing.T) {
	t.Parallel()
	for name, open := range storetest.Dialects() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t testing.TB) app.Store { return sqlstore.New(open(t)) })
		})
	}
}
