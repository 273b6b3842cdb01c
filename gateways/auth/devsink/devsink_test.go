package devsink_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/comfortech/platform/gateways/auth/devsink"
)

func TestSink(t *testing.T) {
	t.Parallel()
	s := devsink.New(2)
	if _, ok := s.Last("+7"); ok {
		t.Fatal("empty sink has a message")
	}
	for i := range 3 {
		if err := s.SendCode(t.Context(), "+7", fmt.Sprint(i), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	m, ok := s.Last("+7")
	if !ok || m.Code != "2" || m.Phone != "+7" || m.ExpiresAt.Sub(m.SentAt) != time.Minute {
		t.Fatalf("last: %+v", m)
	}
	if all := s.Messages("+7"); len(all) != 2 || all[0].Code != "1" {
		t.Fatalf("kept: %+v", all)
	}
}
