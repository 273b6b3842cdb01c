package tsstore_test

import (
	"testing"

	"github.com/comfortech/platform/services/data/internal/telemetry/tsstore"
	"github.com/comfortech/platform/services/data/internal/telemetry/tsstore/tsstoretest"
)

func TestSQLite(t *testing.T) {
	t.Parallel()
	tsstoretest.Run(t, func(tb testing.TB) *tsstore.Store {
		s, _ := tsstoretest.OpenSQLite(tb)
		return s
	})
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	tsstoretest.Run(t, func(tb testing.TB) *tsstore.Store {
		s, _ := tsstoretest.OpenPostgres(tb)
		return s
	})
}
