package otpstore_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/comfortech/platform/gateways/auth/internal/app"
	"github.com/comfortech/platform/gateways/auth/internal/otpstore"
)

func TestMemory(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	m := otpstore.New(2, func() time.Time { return now })
	ctx := t.Context()
	put := func(phone string, exp time.Time) error {
		return m.Update(ctx, phone, func(*app.OTPRecord) *app.OTPRecord {
			return &app.OTPRecord{ExpiresAt: exp, AttemptsLeft: 3}
		})
	}
	if err := put("a", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	// fn sees a copy: changing it without returning it changes nothing.
	_ = m.Update(ctx, "a", func(r *app.OTPRecord) *app.OTPRecord { r.AttemptsLeft = 0; return nil })
	var seen *app.OTPRecord
	_ = m.Update(ctx, "a", func(r *app.OTPRecord) *app.OTPRecord { seen = r; return r })
	if seen != nil {
		t.Fatalf("deleted record still there: %+v", seen)
	}
	if err := put("a", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := put("b", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := put("c", now.Add(time.Minute)); !errors.Is(err, otpstore.ErrFull) {
		t.Fatalf("third record in a store of 2: %v", err)
	}
	// Replacing an existing record is always possible.
	if err := put("a", now.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
}

func TestMemorySweepsExpired(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	m := otpstore.New(3000, func() time.Time { return now })
	for i := range 2000 {
		_ = m.Update(t.Context(), fmt.Sprint(i), func(*app.OTPRecord) *app.OTPRecord {
			return &app.OTPRecord{ExpiresAt: now.Add(-time.Second)} // already expired
		})
	}
	if n := m.Len(); n >= 2000 {
		t.Fatalf("%d records kept: expired ones are never swept", n)
	}
}
