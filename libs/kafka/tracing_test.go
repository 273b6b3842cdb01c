package kafka_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/kafka/kafkatest"
)

// TestTracing: publishing records a producer span under the caller's span
// and carries it in traceparent; the consumer's span is its child and the
// handler's context is inside it. A message that already carries a trace
// (an outbox event) stays in that trace. A dead-lettered message's span
// is marked failed.
func TestTracing(t *testing.T) {
	t.Parallel()
	const topic = "device.lifecycle"
	c := kafkatest.NewCluster(t, kfake.SeedTopics(1, topic))
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	cfg := kafkatest.Config(c.ListenAddrs())
	cfg.TracerProvider = tp

	caller, callerSpan := tp.Tracer("test").Start(context.Background(), "request")
	stored := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" // an outbox row's traceparent
	p := newProducer(t, cfg, nil)
	ctx, cancel := context.WithTimeout(caller, testTimeout)
	defer cancel()
	if err := p.PublishBatch(ctx, []kafka.Message{
		{Topic: topic, Key: []byte("a"), Value: []byte("from the request")},
		{Topic: topic, Key: []byte("a"), Value: []byte("from the outbox"), Headers: []kafka.Header{{Key: "traceparent", Value: []byte(stored)}}},
		{Topic: topic, Key: []byte("a"), Value: []byte("poison")},
	}); err != nil {
		t.Fatal(err)
	}
	callerSpan.End()

	handled := make(chan trace.SpanContext, 3)
	startRunner(t, cfg, kafka.RunnerConfig{Group: "g", Topics: []string{topic}, MaxAttempts: 1,
		DeadLetter: p}, func(ctx context.Context, m *kafka.Message) error {
		handled <- trace.SpanContextFromContext(ctx)
		if string(m.Value) == "poison" {
			return kafka.Permanent(errors.New("malformed"))
		}
		return nil
	}, nil)
	var inHandler []trace.SpanContext
	for range 3 {
		select {
		case sc := <-handled:
			inHandler = append(inHandler, sc)
		case <-time.After(testTimeout):
			t.Fatal("messages not handled")
		}
	}

	byID := map[trace.SpanID]tracetest.SpanStub{}
	var sends, processes []tracetest.SpanStub
	deadline := time.Now().Add(testTimeout)
	for len(processes) < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // consumer spans end after the handler returns
		sends, processes = nil, nil
		for _, s := range exp.GetSpans() {
			byID[s.SpanContext.SpanID()] = s
			switch {
			case s.SpanKind == trace.SpanKindProducer && s.Name == "send "+topic:
				sends = append(sends, s)
			case s.SpanKind == trace.SpanKindConsumer && s.Name == "process "+topic:
				processes = append(processes, s)
			}
		}
	}
	if len(sends) != 3 || len(processes) != 3 {
		t.Fatalf("%d send and %d process spans, want 3 and 3", len(sends), len(processes))
	}
	wantTrace := []string{callerSpan.SpanContext().TraceID().String(), stored[3:35], callerSpan.SpanContext().TraceID().String()}
	for i, proc := range processes {
		send, ok := byID[proc.Parent.SpanID()]
		if !ok || send.SpanKind != trace.SpanKindProducer || !proc.Parent.IsRemote() {
			t.Errorf("message %d: the process span's parent is not a send span", i)
			continue
		}
		if got := send.SpanContext.TraceID().String(); got != wantTrace[i] || proc.SpanContext.TraceID().String() != got {
			t.Errorf("message %d: send in trace %s, process in %s, want %s", i, got, proc.SpanContext.TraceID(), wantTrace[i])
		}
		if inHandler[i].SpanID() != proc.SpanContext.SpanID() {
			t.Errorf("message %d: the handler ran in span %s, not in its process span %s", i, inHandler[i].SpanID(), proc.SpanContext.SpanID())
		}
	}
	if send := byID[processes[0].Parent.SpanID()]; send.Parent.SpanID() != callerSpan.SpanContext().SpanID() {
		t.Errorf("the send span's parent %s is not the caller's span", send.Parent.SpanID())
	}
	if processes[2].Status.Description != "malformed" {
		t.Errorf("dead-lettered message's span status %+v, want the error", processes[2].Status)
	}
}
