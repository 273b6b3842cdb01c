package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/IBM/sarama"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// ErrProducerClosed is returned by Publish and PublishBatch after Close.
var ErrProducerClosed = errors.New("kafka: producer closed")

// Producer publishes messages through one idempotent sarama AsyncProducer.
// Publish and PublishBatch wait for the brokers' acknowledgement, yet
// concurrent callers share produce requests: messages enqueued within the
// linger window go out together. It is safe for concurrent use.
//
// The connection is made on first use and retried on every later call
// while it fails, so a process can start (and an outbox can fill) while
// Kafka is unreachable.
type Producer struct {
	cfg     Config
	log     *zap.Logger
	metrics *Metrics
	tracer  trace.Tracer

	// mu guards ap and closed. Publishers hold it shared while they hand
	// messages to ap.Input(), so Close (exclusive) never closes the input
	// channel under a sender.
	mu     sync.RWMutex
	ap     sarama.AsyncProducer
	closed bool
	done   sync.WaitGroup // result loops
}

// NewProducer returns a producer for cfg. It does not connect yet; log and
// metrics may be nil.
func NewProducer(cfg Config, log *zap.Logger, metrics *Metrics) (*Producer, error) {
	if _, err := NewSaramaConfig(cfg); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Producer{cfg: cfg, log: log.Named("kafka.producer"), metrics: metrics.orNoop(), tracer: cfg.tracer()}, nil
}

// BatchError reports a PublishBatch in which some messages were not
// delivered. Errs has one entry per message, nil for those acknowledged.
type BatchError struct {
	Errs []error
}

// Error summarises the failures.
func (e *BatchError) Error() string {
	failed := 0
	var first error
	for _, err := range e.Errs {
		if err != nil {
			if first == nil {
				first = err
			}
			failed++
		}
	}
	return fmt.Sprintf("kafka: %d of %d messages not delivered: %v", failed, len(e.Errs), first)
}

// Unwrap returns the individual errors, for errors.Is and errors.As.
func (e *BatchError) Unwrap() []error {
	var errs []error
	for _, err := range e.Errs {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// Publish sends m and waits until the brokers acknowledged it. When ctx
// ends first it returns ctx's error, and the message may still be delivered.
// A producer span is recorded, child of the trace m carries or else of
// ctx's, and its context replaces m's traceparent.
func (p *Producer) Publish(ctx context.Context, m Message) error {
	err := p.PublishBatch(ctx, []Message{m})
	if be, ok := errors.AsType[*BatchError](err); ok {
		return be.Errs[0]
	}
	return err
}

// PublishBatch sends msgs and waits until every one was acknowledged or
// failed. Messages with the same key keep their relative order. When some
// fail it returns a *BatchError telling which; when the connection cannot
// be made or ctx ends, it returns that error and delivery is unknown for
// messages already handed to sarama.
func (p *Producer) PublishBatch(ctx context.Context, msgs []Message) error {
	pd, err := p.Send(ctx, msgs)
	if err != nil {
		return err
	}
	return pd.Wait(ctx)
}

// Pending is a batch handed to the producer by Send.
type Pending struct {
	b *batch
}

// Send hands msgs to the producer and returns without waiting for the
// brokers, so a caller can send the next batch while this one is in
// flight; Wait on the result tells how it went. Messages with the same
// key keep their relative order, across calls too. It fails when the
// connection cannot be made or ctx ends while handing the messages over
// (delivery is then unknown for those already handed over).
func (p *Producer) Send(ctx context.Context, msgs []Message) (*Pending, error) {
	for i := range msgs {
		if msgs[i].Topic == "" {
			return nil, fmt.Errorf("kafka: publish: message %d has no topic", i)
		}
	}
	b := &batch{errs: make([]error, len(msgs)), done: make(chan struct{})}
	if len(msgs) == 0 {
		close(b.done)
		return &Pending{b: b}, nil
	}
	ap, err := p.producer()
	if err != nil {
		return nil, err
	}
	b.pending.Store(int64(len(msgs)))
	if err := p.enqueue(ctx, ap, b, msgs); err != nil {
		return nil, err
	}
	return &Pending{b: b}, nil
}

// Wait waits until every message of the batch was acknowledged or failed:
// nil, or a *BatchError telling which failed. When ctx ends first it
// returns ctx's error; the messages may still be delivered.
func (pd *Pending) Wait(ctx context.Context) error {
	select {
	case <-pd.b.done:
	case <-ctx.Done():
		return fmt.Errorf("kafka: publish: waiting for acks: %w", ctx.Err())
	}
	for _, err := range pd.b.errs {
		if err != nil {
			return &BatchError{Errs: pd.b.errs}
		}
	}
	return nil
}

// enqueue hands msgs to sarama, holding mu shared so Close waits for it.
func (p *Producer) enqueue(ctx context.Context, ap sarama.AsyncProducer, b *batch, msgs []Message) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrProducerClosed
	}
	for i := range msgs {
		m := msgs[i] // copy: the caller's slice is not modified
		span := startSend(ctx, p.tracer, &m)
		select {
		case ap.Input() <- toSarama(&m, ticket{b: b, i: i, span: span}):
		case <-ctx.Done():
			err := fmt.Errorf("kafka: publish: %w", ctx.Err())
			fail(span, err)
			span.End()
			return err
		}
	}
	return nil
}

// producer returns the sarama producer, connecting on first use.
func (p *Producer) producer() (sarama.AsyncProducer, error) {
	p.mu.RLock()
	ap, closed := p.ap, p.closed
	p.mu.RUnlock()
	if closed {
		return nil, ErrProducerClosed
	}
	if ap != nil {
		return ap, nil
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrProducerClosed
	}
	if p.ap != nil {
		return p.ap, nil
	}
	sc, err := NewSaramaConfig(p.cfg)
	if err != nil {
		return nil, err
	}
	ap, err = sarama.NewAsyncProducer(p.cfg.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("kafka: connect producer to %v: %w", p.cfg.Brokers, err)
	}
	p.ap = ap
	p.done.Add(2)
	go p.successes(ap)
	go p.errors(ap)
	p.log.Info("producer connected", zap.Strings("brokers", p.cfg.Brokers))
	return ap, nil
}

func (p *Producer) successes(ap sarama.AsyncProducer) {
	defer p.done.Done()
	seen := map[string]bool{} // topics whose error series exists
	for pm := range ap.Successes() {
		p.metrics.produced.WithLabelValues(pm.Topic).Inc()
		if !seen[pm.Topic] {
			// A zero error series beside the first success, so an error
			// rate is defined before the first error.
			p.metrics.produceErrors.WithLabelValues(pm.Topic)
			seen[pm.Topic] = true
		}
		if t, ok := pm.Metadata.(ticket); ok {
			t.span.SetAttributes(attribute.Int("messaging.destination.partition.id", int(pm.Partition)),
				attribute.Int64("messaging.kafka.offset", pm.Offset))
			t.span.End()
			t.b.complete(t.i, nil)
		}
	}
}

func (p *Producer) errors(ap sarama.AsyncProducer) {
	defer p.done.Done()
	for pe := range ap.Errors() {
		p.metrics.produceErrors.WithLabelValues(pe.Msg.Topic).Inc()
		p.log.Debug("message not delivered", zap.String("topic", pe.Msg.Topic), zap.Error(pe.Err))
		if t, ok := pe.Msg.Metadata.(ticket); ok {
			err := fmt.Errorf("kafka: produce to %s: %w", pe.Msg.Topic, pe.Err)
			fail(t.span, err)
			t.span.End()
			t.b.complete(t.i, err)
		}
	}
}

// Close flushes the messages in flight, waits for their results and
// releases the connection. Later publishes return ErrProducerClosed.
func (p *Producer) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	ap := p.ap
	p.mu.Unlock()
	if ap == nil {
		return nil
	}
	// AsyncClose + draining (in the result loops) rather than Close, which
	// would swallow the errors the waiting publishers need.
	ap.AsyncClose()
	p.done.Wait()
	return nil
}

// batch collects the results of one PublishBatch call.
type batch struct {
	errs    []error
	pending atomic.Int64
	done    chan struct{}
}

// complete records the result of message i; the last one closes done.
// Each index is completed by exactly one result, so errs needs no lock, and
// the atomic decrement orders the write before the reader's wake-up.
func (b *batch) complete(i int, err error) {
	b.errs[i] = err
	if b.pending.Add(-1) == 0 {
		close(b.done)
	}
}

// ticket travels with a message through sarama (ProducerMessage.Metadata).
type ticket struct {
	b    *batch
	i    int
	span trace.Span // the message's producer span, ended with its result
}
