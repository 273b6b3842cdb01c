package kafka

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// CloudEvents 1.0 binary-mode header names (Kafka protocol binding) and the
// values this package writes.
const (
	HeaderSpecVersion = "ce_specversion"
	HeaderID          = "ce_id"
	HeaderType        = "ce_type"
	HeaderSource      = "ce_source"
	HeaderTime        = "ce_time"
	HeaderContentType = "content-type"

	// SpecVersion is the only CloudEvents version produced and accepted.
	SpecVersion = "1.0"
	// ContentTypeJSON is the content type of every event value.
	ContentTypeJSON = "application/json"
)

// ErrInvalidEvent is wrapped by every DecodeEvent error, so a handler can
// recognise a malformed event and reject it with Permanent.
var ErrInvalidEvent = errors.New("kafka: invalid event")

// Event is a CloudEvent whose data is a protobuf message.
type Event struct {
	// ID is ce_id; EncodeEvent generates a UUIDv7 when empty.
	ID string
	// Source is ce_source, the producing part, e.g. "/services/device". Required.
	Source string
	// Type is ce_type; EncodeEvent uses the data's full protobuf name when
	// empty, e.g. "comfortech.events.v1.DeviceClaimed".
	Type string
	// Time is ce_time; EncodeEvent uses the current time when zero.
	Time time.Time
	// Key is the entity whose events must stay ordered (device id, account id).
	Key string
	// Data is the event body, carried as protojson with proto field names.
	Data proto.Message
}

var (
	marshalJSON = protojson.MarshalOptions{UseProtoNames: true}
	// DiscardUnknown lets old consumers read events from newer producers.
	unmarshalJSON = protojson.UnmarshalOptions{DiscardUnknown: true}
)

// EncodeEvent builds the message for e on topic: CloudEvents binary-mode
// headers, the trace context of ctx, key = e.Key, value = protojson of e.Data.
func EncodeEvent(ctx context.Context, topic string, e Event) (Message, error) {
	switch {
	case topic == "":
		return Message{}, errors.New("kafka: encode event: empty topic")
	case e.Source == "":
		return Message{}, errors.New("kafka: encode event: empty source")
	case e.Data == nil:
		return Message{}, errors.New("kafka: encode event: nil data")
	}
	if e.ID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return Message{}, fmt.Errorf("kafka: encode event: id: %w", err)
		}
		e.ID = id.String()
	}
	if e.Type == "" {
		e.Type = string(e.Data.ProtoReflect().Descriptor().FullName())
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	value, err := marshalJSON.Marshal(e.Data)
	if err != nil {
		return Message{}, fmt.Errorf("kafka: encode event %s: %w", e.Type, err)
	}
	m := Message{
		Topic: topic,
		Value: value,
		Headers: []Header{
			{Key: HeaderSpecVersion, Value: []byte(SpecVersion)},
			{Key: HeaderID, Value: []byte(e.ID)},
			{Key: HeaderType, Value: []byte(e.Type)},
			{Key: HeaderSource, Value: []byte(e.Source)},
			{Key: HeaderTime, Value: []byte(e.Time.UTC().Format(time.RFC3339Nano))},
			{Key: HeaderContentType, Value: []byte(ContentTypeJSON)},
		},
	}
	if e.Key != "" {
		m.Key = []byte(e.Key)
	}
	InjectTraceContext(ctx, &m)
	return m, nil
}

// DecodeEvent checks the CloudEvents headers of m and unmarshals its value
// into data. The returned Event has Data set to data. Every error wraps
// ErrInvalidEvent and names the offending header or field.
func DecodeEvent(m *Message, data proto.Message) (Event, error) {
	if data == nil {
		return Event{}, errors.New("kafka: decode event: nil data")
	}
	e := Event{
		ID:     m.Header(HeaderID),
		Source: m.Header(HeaderSource),
		Type:   m.Header(HeaderType),
		Key:    string(m.Key),
		Data:   data,
	}
	where := fmt.Sprintf("%s[%d]@%d", m.Topic, m.Partition, m.Offset)
	if v := m.Header(HeaderSpecVersion); v != SpecVersion {
		return Event{}, fmt.Errorf("%w %s: %s is %q, want %q", ErrInvalidEvent, where, HeaderSpecVersion, v, SpecVersion)
	}
	for _, h := range []struct{ name, value string }{
		{HeaderID, e.ID}, {HeaderSource, e.Source}, {HeaderType, e.Type},
	} {
		if h.value == "" {
			return Event{}, fmt.Errorf("%w %s: missing %s", ErrInvalidEvent, where, h.name)
		}
	}
	if ct := m.Header(HeaderContentType); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != ContentTypeJSON {
			return Event{}, fmt.Errorf("%w %s: content-type %q is not %s", ErrInvalidEvent, where, ct, ContentTypeJSON)
		}
	}
	if ts := m.Header(HeaderTime); ts != "" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return Event{}, fmt.Errorf("%w %s: %s: %w", ErrInvalidEvent, where, HeaderTime, err)
		}
		e.Time = t
	}
	if err := unmarshalJSON.Unmarshal(m.Value, data); err != nil {
		return Event{}, fmt.Errorf("%w %s: %s value into %s: %w", ErrInvalidEvent, where, e.Type,
			data.ProtoReflect().Descriptor().FullName(), err)
	}
	return e, nil
}
