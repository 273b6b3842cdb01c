package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/comfortech/platform/services/device/internal/app"
	"github.com/comfortech/platform/services/device/internal/store/sqlstore"
)

// Run runs the contract suite of app.Store on databases from open, each
// case on a fresh one.
func Run(t *testing.T, open Opener) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s app.Store)
	}{
		{"insert and get", testInsertGet},
		{"batch is all or nothing", testBatchConflict},
		{"update secrets", testUpdate},
		{"delete", testDelete},
	}
	commandCases := []struct {
		name string
		fn   func(t *testing.T, s app.CommandStore)
	}{
		{"command life", testCommandLife},
		{"command lists", testCommandLists},
	}
	t.Run("presence history", func(t *testing.T) {
		t.Parallel()
		testPresence(t, sqlstore.New(open(t)))
	})
	t.Run("owners", func(t *testing.T) {
		t.Parallel()
		testOwners(t, sqlstore.New(open(t)))
	})
	for _, c := range commandCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, sqlstore.New(open(t)))
		})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, sqlstore.New(open(t)))
		})
	}
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 123456000, time.UTC)

func cred(serial string) app.Credential {
	return app.Credential{DeviceID: uuid.Must(uuid.NewV7()).String(), Serial: serial, Model: "ac-1",
		SecretHash: "$argon2id$h", CreatedAt: t0, UpdatedAt: t0}
}

func testInsertGet(t *testing.T, s app.Store) {
	ctx := context.Background()
	c := cred("SN-0001")
	if err := s.InsertCredentials(ctx, []app.Credential{c}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetCredential(ctx, c.DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	if got != c {
		t.Errorf("got %+v, want %+v", got, c)
	}
	if _, err := s.GetCredential(ctx, uuid.NewString()); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("missing: %v, want ErrNotFound", err)
	}
}

func testBatchConflict(t *testing.T, s app.Store) {
	ctx := context.Background()
	if err := s.InsertCredentials(ctx, []app.Credential{cred("SN-0001")}); err != nil {
		t.Fatal(err)
	}
	batch := []app.Credential{cred("SN-0002"), cred("SN-0003"), cred("SN-0001")}
	err := s.InsertCredentials(ctx, batch)
	ie, ok := errors.AsType[*app.ItemError](err)
	if !ok || ie.Index != 2 || !errors.Is(err, app.ErrConflict) {
		t.Fatalf("duplicate serial: %v, want ItemError{2} wrapping ErrConflict", err)
	}
	if _, err := s.GetCredential(ctx, batch[0].DeviceID); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("item 0 of a failed batch: %v, want ErrNotFound", err)
	}
}

func testUpdate(t *testing.T, s app.Store) {
	ctx := context.Background()
	c := cred("SN-0001")
	if err := s.InsertCredentials(ctx, []app.Credential{c}); err != nil {
		t.Fatal(err)
	}
	steps := []app.Credential{
		{SecretHash: "new", OldSecretHash: c.SecretHash, OldSecretExpiresAt: t0.Add(time.Hour)},
		{RevokedAt: t0.Add(2 * time.Hour)},
		{SecretHash: "newer"},
	}
	for i, st := range steps {
		want := c
		want.SecretHash, want.OldSecretHash, want.OldSecretExpiresAt, want.RevokedAt = st.SecretHash, st.OldSecretHash, st.OldSecretExpiresAt, st.RevokedAt
		want.UpdatedAt = t0.Add(time.Duration(i+1) * time.Minute)
		if err := s.UpdateSecrets(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetCredential(ctx, c.DeviceID)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("step %d: got %+v, want %+v", i, got, want)
		}
	}
	missing := cred("SN-0009")
	if err := s.UpdateSecrets(ctx, missing); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("update missing: %v, want ErrNotFound", err)
	}
}

func testDelete(t *testing.T, s app.Store) {
	ctx := context.Background()
	a, b := cred("SN-0001"), cred("SN-0002")
	if err := s.InsertCredentials(ctx, []app.Credential{a, b}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCredentials(ctx, a.DeviceID, uuid.NewString()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetCredential(ctx, a.DeviceID); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("deleted: %v", err)
	}
	if _, err := s.GetCredential(ctx, b.DeviceID); err != nil {
		t.Errorf("other: %v", err)
	}
	// A serial is free again once its device is gone.
	if err := s.InsertCredentials(ctx, []app.Credential{cred("SN-0001")}); err != nil {
		t.Errorf("reuse serial: %v", err)
	}
}
