package accountevents_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/comfortech/platform/gateways/auth/internal/accountevents"
	"github.com/comfortech/platform/gateways/auth/internal/app"
	"github.com/comfortech/platform/libs/kafka"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
)

// suspensions records SetSuspended calls and answers err.
type suspensions struct {
	calls []string
	err   error
}

func (s *suspensions) SetSuspended(_ context.Context, accountID string, suspended bool) error {
	s.calls = append(s.calls, fmt.Sprintf("%s=%v", accountID, suspended))
	return s.err
}

func event(t *testing.T, typ, key string, data proto.Message) *kafka.Message {
	t.Helper()
	m, err := kafka.EncodeEvent(context.Background(), accountevents.Topic, kafka.Event{Source: "/services/data", Type: typ, Key: key, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	return &m
}

// TestHandler: suspensions and reinstatements reach the use case, other
// events pass, malformed ones are permanent, failures are retried.
func TestHandler(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const id = "5f0c8d3e-0000-4000-8000-000000000001"
	s := &suspensions{}
	h := accountevents.Handler(s)
	for _, m := range []*kafka.Message{
		event(t, accountevents.TypeSuspended, id, &eventsv1.AccountSuspended{AccountId: id, Reason: "fraud", ActorId: "x"}),
		event(t, "comfortech.account.updated.v1", id, &eventsv1.AccountUpdated{AccountId: id}),
		event(t, accountevents.TypeReinstated, id, &eventsv1.AccountReinstated{AccountId: id}),
	} {
		if err := h(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(s.calls) != "["+id+"=true "+id+"=false]" {
		t.Errorf("calls %v", s.calls)
	}
	garbage := &kafka.Message{Topic: accountevents.Topic, Value: []byte("{"),
		Headers: []kafka.Header{{Key: kafka.HeaderType, Value: []byte(accountevents.TypeSuspended)}}}
	if err := h(ctx, garbage); !kafka.IsPermanent(err) {
		t.Errorf("malformed event: %v, want permanent", err)
	}
	if err := h(ctx, event(t, accountevents.TypeSuspended, "", &eventsv1.AccountSuspended{})); !kafka.IsPermanent(err) {
		t.Errorf("event without an account: %v, want permanent", err)
	}
	s.err = app.ErrUnavailable
	if err := h(ctx, event(t, accountevents.TypeSuspended, id, &eventsv1.AccountSuspended{AccountId: id})); kafka.IsPermanent(err) || !errors.Is(err, app.ErrUnavailable) {
		t.Errorf("identity provider down: %v, want a retryable error", err)
	}
}
