package notify

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"buf.build/go/protovalidate"
	"github.com/google/uuid"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/comfortech/platform/libs/kafka"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
	"github.com/comfortech/platform/services/notify/internal/app"
)

// TypeDelivery is the ce_type of notifications.delivery events.
const TypeDelivery = "comfortech.notification.delivery.v1"

// decodeNotification reads an outbox record: a CloudEvent (binary mode)
// or, from outside producers, the bare notifications-backend JSON.
func decodeNotification(m *kafka.Message, v protovalidate.Validator) (*app.Notification, error) {
	n := &eventsv1.OutboxNotification{}
	if m.Header(kafka.HeaderSpecVersion) != "" {
		if _, err := kafka.DecodeEvent(m, n); err != nil {
			return nil, err
		}
	} else if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(m.Value, n); err != nil {
		return nil, fmt.Errorf("%w: value is not an OutboxNotification: %w", kafka.ErrInvalidEvent, err)
	}
	if err := v.Validate(n); err != nil {
		return nil, fmt.Errorf("%w: %w", kafka.ErrInvalidEvent, err)
	}
	return &app.Notification{ID: n.GetId(), Application: n.GetApplication(), EventType: n.GetEventType(), Level: n.GetLevel(),
		Message: n.GetMessage(), Timestamp: n.GetTimestamp().AsTime(), AccountID: n.GetAccountId(), Payload: n.GetPayload().AsMap()}, nil
}

// outboxHandler routes notifications.outbox records; malformed ones and
// ones naming an unregistered application or event type go to the DLQ
// at once with the reason.
func outboxHandler(svc *app.Service) kafka.Handler {
	v, err := protovalidate.New()
	if err != nil {
		panic(err) // only fails for invalid compiled-in descriptors
	}
	return func(ctx context.Context, m *kafka.Message) error {
		n, err := decodeNotification(m, v)
		if err != nil {
			return kafka.Permanent(err)
		}
		err = svc.Handle(ctx, n, m.Value)
		if errors.Is(err, app.ErrInvalid) {
			return kafka.Permanent(err)
		}
		return err
	}
}

// outboxBatchHandler routes the notifications.outbox records fetched
// together in one go (HandleBatch). Any record that cannot be decoded or
// routed fails the batch before anything is written, and the runner then
// handles each record with outboxHandler, dead-lettering the bad one.
func outboxBatchHandler(svc *app.Service) kafka.BatchHandler {
	v, err := protovalidate.New()
	if err != nil {
		panic(err) // only fails for invalid compiled-in descriptors
	}
	return func(ctx context.Context, ms []*kafka.Message) error {
		in := make([]app.Incoming, len(ms))
		for i, m := range ms {
			n, err := decodeNotification(m, v)
			if err != nil {
				return err
			}
			in[i] = app.Incoming{Notification: n, Source: m.Value}
		}
		return svc.HandleBatch(ctx, in)
	}
}

// dlqHandler records notifications.outbox.dlq records as dead letters,
// once each (the id derives from the record's position).
func dlqHandler(svc *app.Service) kafka.Handler {
	return func(ctx context.Context, m *kafka.Message) error {
		hs := make(map[string]string, len(m.Headers))
		for _, h := range m.Headers {
			hs[h.Key] = string(h.Value)
		}
		topic := m.Header(kafka.HeaderDLQTopic)
		if topic == "" {
			topic = TopicOutbox
		}
		attempts, _ := strconv.Atoi(m.Header(kafka.HeaderDLQAttempts))
		d := &app.DeadLetter{
			ID:    uuid.NewSHA1(uuid.NameSpaceURL, fmt.Appendf(nil, "kafka:%s/%d/%d", m.Topic, m.Partition, m.Offset)).String(),
			Topic: topic, Key: string(m.Key), Value: string(m.Value), Headers: hs, Reason: m.Header(kafka.HeaderDLQReason),
			Attempts: attempts, CreateTime: time.Now().UTC(),
		}
		var n eventsv1.OutboxNotification
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(m.Value, &n); err == nil {
			d.NotificationID = n.GetId()
		}
		return svc.AddDeadLetter(ctx, d)
	}
}

var outcomes = map[app.Status]eventsv1.DeliveryOutcome{
	app.StatusSent: eventsv1.DeliveryOutcome_DELIVERY_OUTCOME_SENT, app.StatusRetrying: eventsv1.DeliveryOutcome_DELIVERY_OUTCOME_RETRYING,
	app.StatusFailed: eventsv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED, app.StatusSkipped: eventsv1.DeliveryOutcome_DELIVERY_OUTCOME_SKIPPED,
}

var deliveryChannels = map[app.Channel]eventsv1.DeliveryChannel{
	app.Push: eventsv1.DeliveryChannel_DELIVERY_CHANNEL_PUSH, app.SMS: eventsv1.DeliveryChannel_DELIVERY_CHANNEL_SMS,
	app.Email: eventsv1.DeliveryChannel_DELIVERY_CHANNEL_EMAIL, app.Webhook: eventsv1.DeliveryChannel_DELIVERY_CHANNEL_WEBHOOK,
}

// deliveryEvents is the DeliveryAttempted event of a delivery-log entry,
// keyed by account (by subscription for an event delivery).
func deliveryEvents(a *app.Attempt) []app.Event {
	key := a.AccountID
	if a.Subscription != "" {
		key = a.Subscription
	}
	m, err := kafka.EncodeEvent(context.Background(), TopicDelivery, kafka.Event{
		ID: a.ID, Source: "/services/notify", Type: TypeDelivery, Time: a.Time, Key: key,
		Data: &eventsv1.DeliveryAttempted{DeliveryId: a.ID, NotificationId: a.NotificationID, AccountId: a.AccountID,
			Subscription: a.Subscription, Application: a.Application,
			EventType: a.EventType, Level: a.Level, Channel: deliveryChannels[a.Channel], Recipient: a.Recipient, Attempt: int32(a.Attempt),
			Outcome: outcomes[a.Status], ProviderStatus: int32(a.ProviderStatus), Detail: a.Detail, Latency: durationpb.New(a.Latency),
			Time: timestamppb.New(a.Time)},
	})
	if err != nil {
		return nil
	}
	e := app.Event{Topic: m.Topic, Key: string(m.Key), Value: m.Value, Headers: map[string]string{}}
	for _, h := range m.Headers {
		e.Headers[h.Key] = string(h.Value)
	}
	return []app.Event{e}
}
