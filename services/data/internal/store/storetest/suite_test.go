package storetest_test

import (
	"testing"

	"github.com/comfortech/platform/services/data/internal/store/storetest"
)

// TestStore runs the contract suite on SQLite and PostgreSQL.
func TestStore(t *testing.T) {
	t.Parallel()
	for name, open := range storetest.Dialects() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, open)
		})
	}
}
