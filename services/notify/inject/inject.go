// Package inject publishes test notifications to notifications.outbox (the
// original `rake notifications:send`), as CloudEvents like the platform's
// producers send them, so that the notify service dispatches them as it
// would any other. Command notify-inject and `comfortctl notify send` use
// it.
package inject

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/comfortech/platform/libs/kafka"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
	"github.com/comfortech/platform/services/notify/internal/app"
)

// Topic is where notifications are published.
const Topic = "notifications.outbox"

// ErrInvalid is wrapped by the error of a request that cannot be sent, so
// that a tool can tell its user's mistake from a broker failure.
var ErrInvalid = errors.New("invalid notification request")

// eventType is the CloudEvents type of an outbox notification.
const eventType = "comfortech.notification.requested.v1"

// Defaults of a Request's empty fields.
const (
	DefaultApplication = "comfortech"
	DefaultEventType   = "alert.raised"
	DefaultLevel       = "info"
	DefaultMessage     = "Test notification"
	DefaultSource      = "/services/notify/cmd/notify-inject"
)

// Request describes the notifications to publish. Empty fields take the
// defaults above; AccountID is required.
type Request struct {
	// Application is the registered application name.
	Application string
	// EventType is the event type id within the application.
	EventType string
	// Level is info, warning, error or critical.
	Level string
	// AccountID is the recipient account (a UUID).
	AccountID string
	// Message is the text; with Count > 1 each one is numbered ("… #2").
	Message string
	// Payload is the template data, a JSON object ("" means {}).
	Payload string
	// Count is how many notifications to publish (0 means 1).
	Count int
	// Source is the CloudEvents source naming the sender.
	Source string
}

// withDefaults validates r and fills in its defaults. Errors name the
// field as its users know it: the flag or variable is theirs to add.
func (r Request) withDefaults() (Request, error) {
	if r.Application == "" {
		r.Application = DefaultApplication
	}
	if r.EventType == "" {
		r.EventType = DefaultEventType
	}
	if r.Level == "" {
		r.Level = DefaultLevel
	}
	if r.Message == "" {
		r.Message = DefaultMessage
	}
	if r.Source == "" {
		r.Source = DefaultSource
	}
	if r.Count == 0 {
		r.Count = 1
	}
	var errs []error
	if _, err := uuid.Parse(r.AccountID); err != nil {
		errs = append(errs, fmt.Errorf("account must be an account UUID, got %q", r.AccountID))
	}
	if !slices.Contains(app.Levels, r.Level) {
		errs = append(errs, fmt.Errorf("level %q: must be one of %s", r.Level, strings.Join(app.Levels, ", ")))
	}
	if r.Count < 0 {
		errs = append(errs, fmt.Errorf("count %d: must be positive", r.Count))
	}
	if len(errs) > 0 {
		return r, fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return r, nil
}

// Messages validates r and encodes its notifications as outbox records,
// each with its own idempotency key.
func Messages(ctx context.Context, r Request) ([]kafka.Message, error) {
	r, err := r.withDefaults()
	if err != nil {
		return nil, err
	}
	data := map[string]any{}
	if strings.TrimSpace(r.Payload) != "" {
		if err := json.Unmarshal([]byte(r.Payload), &data); err != nil {
			return nil, fmt.Errorf("%w: payload must be a JSON object: %w", ErrInvalid, err)
		}
	}
	payload, err := structpb.NewStruct(data)
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %w", ErrInvalid, err)
	}
	msgs := make([]kafka.Message, 0, r.Count)
	for i := range r.Count {
		n := &eventsv1.OutboxNotification{Application: r.Application, EventType: r.EventType, Level: r.Level,
			Message: r.Message, Timestamp: timestamppb.Now(), AccountId: r.AccountID, Id: "inject-" + uuid.NewString(),
			Payload: payload}
		if r.Count > 1 {
			n.Message = fmt.Sprintf("%s #%d", r.Message, i+1)
		}
		m, err := kafka.EncodeEvent(ctx, Topic, kafka.Event{Source: r.Source, Type: eventType, Key: r.AccountID, Data: n})
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// Publish sends r's notifications to the Kafka cluster at brokers, in one
// idempotent batch, and returns how many it published.
func Publish(ctx context.Context, brokers []string, clientID string, r Request) (int, error) {
	msgs, err := Messages(ctx, r)
	if err != nil {
		return 0, err
	}
	p, err := kafka.NewProducer(kafka.Config{Brokers: brokers, ClientID: clientID, DialTimeout: 5 * time.Second}, nil, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = p.Close() }()
	if err := p.PublishBatch(ctx, msgs); err != nil {
		return 0, fmt.Errorf("publish to %s: %w", Topic, err)
	}
	return len(msgs), nil
}
