package inject_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/kafka/kafkatest"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
	"github.com/comfortech/platform/services/notify/inject"
)

// TestPublish publishes a numbered batch to an embedded broker and reads it
// back as the notify service does: CloudEvents of the outbox type, keyed by
// the account, each with its own idempotency key and the template data.
func TestPublish(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.NewCluster(t)
	brokers := cluster.ListenAddrs()
	account := uuid.NewString()
	n, err := inject.Publish(context.Background(), brokers, "inject-test", inject.Request{
		AccountID: account, Level: "critical", EventType: "device.fault", Count: 3,
		Payload: `{"device": "Living room"}`, Source: "/test",
	})
	if err != nil || n != 3 {
		t.Fatalf("Publish = %d, %v", n, err)
	}
	msgs := kafkatest.ReadTopic(t, brokers, inject.Topic, 3, 10*time.Second)
	ids := map[string]bool{}
	numbers := map[string]bool{}
	for _, m := range msgs {
		var got eventsv1.OutboxNotification
		ev, err := kafka.DecodeEvent(&m, &got)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type != "comfortech.notification.requested.v1" || ev.Source != "/test" || string(m.Key) != account {
			t.Errorf("event %+v key %s", ev, m.Key)
		}
		if got.GetApplication() != inject.DefaultApplication || got.GetEventType() != "device.fault" || got.GetLevel() != "critical" ||
			got.GetAccountId() != account || got.GetPayload().GetFields()["device"].GetStringValue() != "Living room" {
			t.Errorf("notification %v", &got)
		}
		ids[got.GetId()] = true
		numbers[got.GetMessage()] = true
	}
	if len(ids) != 3 {
		t.Errorf("idempotency keys not unique: %v", ids)
	}
	for _, want := range []string{"Test notification #1", "Test notification #2", "Test notification #3"} {
		if !numbers[want] {
			t.Errorf("no %q among %v", want, numbers)
		}
	}
}

// TestMessagesRefuses checks that a request that cannot be dispatched is
// refused before anything is sent, with the field named.
func TestMessagesRefuses(t *testing.T) {
	t.Parallel()
	account := uuid.NewString()
	for _, c := range []struct {
		name string
		req  inject.Request
		want string
	}{
		{"no account", inject.Request{}, "account"},
		{"account not a UUID", inject.Request{AccountID: "bob"}, "account"},
		{"unknown level", inject.Request{AccountID: account, Level: "fatal"}, "level"},
		{"negative count", inject.Request{AccountID: account, Count: -1}, "count"},
		{"payload not an object", inject.Request{AccountID: account, Payload: "[1]"}, "payload"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			msgs, err := inject.Messages(context.Background(), c.req)
			if !errors.Is(err, inject.ErrInvalid) || !strings.Contains(err.Error(), c.want) || msgs != nil {
				t.Fatalf("Messages = %d messages, %v; want an error naming %s", len(msgs), err, c.want)
			}
		})
	}
	msgs, err := inject.Messages(context.Background(), inject.Request{AccountID: account})
	if err != nil || len(msgs) != 1 {
		t.Fatalf("defaults: %d messages, %v", len(msgs), err)
	}
}
