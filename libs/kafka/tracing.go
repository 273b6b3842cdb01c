package kafka

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// instrumentation names this package's tracer.
const instrumentation = "github.com/comfortech/platform/libs/kafka"

// tracer returns the package's tracer from c's provider (no-op when unset).
func (c Config) tracer() trace.Tracer {
	if c.TracerProvider == nil {
		return noop.NewTracerProvider().Tracer(instrumentation)
	}
	return c.TracerProvider.Tracer(instrumentation)
}

// Attributes of the OpenTelemetry messaging semantic conventions.
var systemKafka = attribute.String("messaging.system", "kafka")

// startSend starts the producer span of m, child of the trace m already
// carries (an event keeps the trace it was created in, e.g. through the
// outbox) or else of ctx's, and writes the span's context to m's
// traceparent header, so the consumer's span becomes its child.
func startSend(ctx context.Context, tr trace.Tracer, m *Message) trace.Span {
	ctx, span := tr.Start(ExtractTraceContext(ctx, m), "send "+m.Topic,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(systemKafka, attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.destination.name", m.Topic)))
	traceContext.Inject(ctx, headerCarrier{m})
	return span
}

// startProcess starts the consumer span of one message, child of the
// producer span in its headers.
func startProcess(ctx context.Context, tr trace.Tracer, group string, m *Message) (context.Context, trace.Span) {
	return tr.Start(ExtractTraceContext(ctx, m), "process "+m.Topic,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(processAttributes(group, m, attribute.Int64("messaging.kafka.offset", m.Offset))...))
}

// startBatch starts the consumer span of a batch: child of the first
// message's producer span, linked to every message's.
func startBatch(ctx context.Context, tr trace.Tracer, group string, ms []*Message) (context.Context, trace.Span) {
	ctx, span := tr.Start(ExtractTraceContext(ctx, ms[0]), "process "+ms[0].Topic,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(processAttributes(group, ms[0], attribute.Int("messaging.batch.message_count", len(ms)))...))
	if span.IsRecording() { // reading every header costs nothing untraced
		for _, m := range ms {
			if sc := trace.SpanContextFromContext(ExtractTraceContext(context.Background(), m)); sc.IsValid() {
				span.AddLink(trace.Link{SpanContext: sc})
			}
		}
	}
	return ctx, span
}

// processAttributes are the attributes of a consumer span of m's
// partition, whether it processes one message or a batch, then extra: the
// message's offset or the batch's size.
func processAttributes(group string, m *Message, extra attribute.KeyValue) []attribute.KeyValue {
	return []attribute.KeyValue{systemKafka, attribute.String("messaging.operation.type", "process"),
		attribute.String("messaging.destination.name", m.Topic),
		attribute.String("messaging.consumer.group.name", group),
		attribute.Int("messaging.destination.partition.id", int(m.Partition)), extra}
}

// fail marks span as failed with err.
func fail(span trace.Span, err error) {
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}
