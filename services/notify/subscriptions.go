package notify

import (
	"context"
	"errors"
	"fmt"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/comfortech/platform/libs/kafka"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
	notifyv1 "github.com/comfortech/platform/proto/comfortech/notify/v1"
	"github.com/comfortech/platform/proto/eventcatalog"
	"github.com/comfortech/platform/services/notify/internal/app"
)

// GroupSubscriptions is the consumer group reading the topics event
// subscriptions may name.
const GroupSubscriptions = "notify-subscriptions"

// subscribableTopics are the topics an event subscription may name: those
// the API's validation rule on Subscription.event_types accepts.
func subscribableTopics() []string {
	fd := (&notifyv1.Subscription{}).ProtoReflect().Descriptor().Fields().ByName("event_types")
	rules, _ := proto.GetExtension(fd.Options(), validate.E_Field).(*validate.FieldRules)
	return rules.GetRepeated().GetItems().GetString().GetIn()
}

// dataJSON is how subscribers get an event's data: protojson with proto
// field names, as the catalog describes it, with fields at their default
// value written out, so that `online: false` is there to filter on.
var dataJSON = protojson.MarshalOptions{UseProtoNames: true, EmitDefaultValues: true}

// decodeEvent reads a record of a subscribable topic: a CloudEvent whose
// value is its catalogued message (a JSON object for a type the catalog
// does not know). It returns nil for a record no subscription receives:
// notifications.delivery records of subscription deliveries, each of
// which would otherwise cause another.
func decodeEvent(m *kafka.Message, cat *eventcatalog.Catalog) (*app.CloudEvent, error) {
	var data proto.Message = &structpb.Struct{}
	if e, ok := cat.Lookup(m.Topic, m.Header(kafka.HeaderType)); ok {
		data = e.Message.New().Interface()
	}
	e, err := kafka.DecodeEvent(m, data)
	if err != nil {
		return nil, err
	}
	if d, ok := data.(*eventsv1.DeliveryAttempted); ok && d.GetSubscription() != "" {
		return nil, nil
	}
	raw, err := dataJSON.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", kafka.ErrInvalidEvent, e.Type, err)
	}
	subject := m.Header("ce_subject")
	if subject == "" {
		subject = string(m.Key) // the entity the event is about
	}
	return &app.CloudEvent{Topic: m.Topic, ID: e.ID, Type: e.Type, Source: e.Source, Subject: subject, Time: e.Time,
		TraceParent: m.Header("traceparent"), Data: raw}, nil
}

// decodeEvents decodes the records some active subscription may want;
// the others are passed over undecoded (telemetry is plenty).
func decodeEvents(ctx context.Context, svc *app.Service, cat *eventcatalog.Catalog, ms []*kafka.Message) ([]*app.CloudEvent, error) {
	subscribed, err := svc.SubscribedTopics(ctx)
	if err != nil {
		return nil, err
	}
	var events []*app.CloudEvent
	for _, m := range ms {
		if _, want := subscribed[m.Topic]; !want {
			continue
		}
		e, err := decodeEvent(m, cat)
		if err != nil {
			return nil, err
		}
		if e != nil {
			events = append(events, e)
		}
	}
	return events, nil
}

// eventsBatchHandler delivers the records of a partition fetched together
// to the subscriptions that want them. A record that cannot be decoded
// fails the batch, and the runner then handles each with eventHandler,
// dead-lettering the bad one.
func eventsBatchHandler(svc *app.Service, cat *eventcatalog.Catalog) kafka.BatchHandler {
	return func(ctx context.Context, ms []*kafka.Message) error {
		events, err := decodeEvents(ctx, svc, cat, ms)
		if err != nil {
			return err
		}
		return svc.HandleEvents(ctx, events)
	}
}

// eventHandler delivers one record; a malformed one goes to its topic's
// DLQ at once with the reason.
func eventHandler(svc *app.Service, cat *eventcatalog.Catalog) kafka.Handler {
	return func(ctx context.Context, m *kafka.Message) error {
		events, err := decodeEvents(ctx, svc, cat, []*kafka.Message{m})
		if err == nil {
			err = svc.HandleEvents(ctx, events)
		}
		if errors.Is(err, kafka.ErrInvalidEvent) || errors.Is(err, app.ErrInvalid) {
			return kafka.Permanent(err)
		}
		return err
	}
}
