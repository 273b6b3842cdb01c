package kafka

import (
	"context"
	"time"

	"github.com/IBM/sarama"
	"go.opentelemetry.io/otel/propagation"
)

// Header is one Kafka record header. Kafka allows repeated keys; the
// helpers on Message treat the last occurrence as the value.
type Header struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

// Message is a Kafka record as this package produces and consumes it.
type Message struct {
	// Topic is where the message is (or was) written.
	Topic string
	// Key selects the partition and so the ordering scope; nil means none.
	Key []byte
	// Value is the payload; nil is a tombstone.
	Value []byte
	// Headers are the record headers, in order.
	Headers []Header

	// Partition, Offset and Timestamp are set on consumed messages.
	Partition int32
	// Offset is the message's position in its partition (consumed messages).
	Offset int64
	// Timestamp is the record time; when producing, zero means "now".
	Timestamp time.Time
}

// Header returns the value of the last header named key, or "" when absent.
func (m *Message) Header(key string) string {
	for i := len(m.Headers) - 1; i >= 0; i-- {
		if m.Headers[i].Key == key {
			return string(m.Headers[i].Value)
		}
	}
	return ""
}

// SetHeader replaces every header named key with one holding value.
func (m *Message) SetHeader(key, value string) {
	kept := m.Headers[:0:0]
	for _, h := range m.Headers {
		if h.Key != key {
			kept = append(kept, h)
		}
	}
	m.Headers = append(kept, Header{Key: key, Value: []byte(value)})
}

// traceContext is the W3C Trace Context propagator (traceparent and
// tracestate). It is stateless, so a package value is no hidden global state.
var traceContext = propagation.TraceContext{}

// InjectTraceContext writes the span context of ctx as W3C traceparent and
// tracestate headers, unless the message already carries a traceparent
// (so an event keeps the trace it was created in, e.g. through the outbox).
// It does nothing when ctx carries no valid span.
func InjectTraceContext(ctx context.Context, m *Message) {
	if m.Header("traceparent") != "" {
		return
	}
	traceContext.Inject(ctx, headerCarrier{m})
}

// ExtractTraceContext returns ctx extended with the remote span context
// found in the message's traceparent and tracestate headers, if any.
func ExtractTraceContext(ctx context.Context, m *Message) context.Context {
	return traceContext.Extract(ctx, headerCarrier{m})
}

// headerCarrier adapts a message's headers to the OpenTelemetry
// propagation.TextMapCarrier interface.
type headerCarrier struct{ m *Message }

var _ propagation.TextMapCarrier = headerCarrier{}

func (c headerCarrier) Get(key string) string { return c.m.Header(key) }
func (c headerCarrier) Set(key, value string) { c.m.SetHeader(key, value) }
func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c.m.Headers))
	for _, h := range c.m.Headers {
		keys = append(keys, h.Key)
	}
	return keys
}

// toSarama converts m for the producer; meta is handed back with the result.
func toSarama(m *Message, meta any) *sarama.ProducerMessage {
	pm := &sarama.ProducerMessage{
		Topic:     m.Topic,
		Metadata:  meta,
		Timestamp: m.Timestamp,
	}
	if m.Key != nil {
		pm.Key = sarama.ByteEncoder(m.Key)
	}
	if m.Value != nil {
		pm.Value = sarama.ByteEncoder(m.Value)
	}
	if len(m.Headers) > 0 {
		pm.Headers = make([]sarama.RecordHeader, len(m.Headers))
		for i, h := range m.Headers {
			pm.Headers[i] = sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value}
		}
	}
	return pm
}

// fromSarama converts a consumed record.
func fromSarama(cm *sarama.ConsumerMessage) *Message {
	m := &Message{
		Topic:     cm.Topic,
		Key:       cm.Key,
		Value:     cm.Value,
		Partition: cm.Partition,
		Offset:    cm.Offset,
		Timestamp: cm.Timestamp,
	}
	if len(cm.Headers) > 0 {
		m.Headers = make([]Header, 0, len(cm.Headers))
		for _, h := range cm.Headers {
			if h == nil {
				continue
			}
			m.Headers = append(m.Headers, Header{Key: string(h.Key), Value: h.Value})
		}
	}
	return m
}
