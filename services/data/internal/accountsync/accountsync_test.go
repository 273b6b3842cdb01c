package accountsync_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/comfortech/platform/libs/kafka"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
	"github.com/comfortech/platform/services/data/internal/accountsync"
	"github.com/comfortech/platform/services/data/internal/app"
	"github.com/comfortech/platform/services/data/internal/store/sqlstore"
	"github.com/comfortech/platform/services/data/internal/store/storetest"
)

func event(t *testing.T, source, typ, key string, data proto.Message) *kafka.Message {
	t.Helper()
	m, err := kafka.EncodeEvent(context.Background(), app.TopicAccountEvents, kafka.Event{Source: source, Type: typ, Key: key, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	return &m
}

// TestHandler: registrations create accounts once, deletions delete them,
// what can never apply is permanent, other events pass.
func TestHandler(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, err := app.New(sqlstore.New(storetest.OpenSQLite(t)), app.Config{})
	if err != nil {
		t.Fatal(err)
	}
	h := accountsync.Handler(a, nil)
	id := uuid.NewString()
	registered := event(t, "/gateways/auth", app.TypeAccountRegistered, id, &eventsv1.AccountRegistered{AccountId: id, Phone: "+79510000001"})
	for range 2 { // redelivery is harmless
		if err := h(ctx, registered); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.GetAccount(ctx, id); err != nil {
		t.Fatalf("account not created: %v", err)
	}
	taken := event(t, "/gateways/auth", app.TypeAccountRegistered, "x", &eventsv1.AccountRegistered{AccountId: uuid.NewString(), Phone: "+79510000001"})
	if err := h(ctx, taken); !kafka.IsPermanent(err) || !errors.Is(err, app.ErrConflict) {
		t.Errorf("registration with a taken phone: %v, want permanent conflict", err)
	}
	garbage := &kafka.Message{Topic: app.TopicAccountEvents, Value: []byte("{"),
		Headers: []kafka.Header{{Key: kafka.HeaderType, Value: []byte(app.TypeAccountRegistered)}}}
	if err := h(ctx, garbage); !kafka.IsPermanent(err) {
		t.Errorf("malformed event: %v, want permanent", err)
	}
	if err := h(ctx, event(t, app.Source, app.TypeAccountCreated, id, &eventsv1.AccountCreated{AccountId: id})); err != nil {
		t.Errorf("other event types must pass: %v", err)
	}
	// Our own AccountDeleted is skipped; the auth gateway's deletes.
	if err := h(ctx, event(t, app.Source, app.TypeAccountDeleted, id, &eventsv1.AccountDeleted{AccountId: id})); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetAccount(ctx, id); err != nil {
		t.Errorf("own AccountDeleted deleted the account: %v", err)
	}
	if err := h(ctx, event(t, "/gateways/auth", app.TypeAccountDeleted, id, &eventsv1.AccountDeleted{AccountId: id})); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetAccount(ctx, id); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("account after AccountDeleted: %v", err)
	}
	// A registration arriving after the deletion does not resurrect it.
	if err := h(ctx, registered); err != nil {
		t.Errorf("late registration: %v", err)
	}
	if _, err := a.GetAccount(ctx, id); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("late registration resurrected the account: %v", err)
	}
}
