package sqlstore_test

import (
	"testing"

	"github.com/comfortech/platform/services/device/internal/store/storetest"
)

func TestStore(t *testing.T) {
	t.Parallel()
	for name, open := range storetest.Dialects() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, open)
		})
	}
}
