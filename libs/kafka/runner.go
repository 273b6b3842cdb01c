package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/cenkalti/backoff/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// DeadLetterSuffix is appended to a topic's name to form its dead-letter topic.
const DeadLetterSuffix = ".dlq"

// Headers added to a message when it is written to a dead-letter topic.
const (
	HeaderDLQReason    = "dlq_reason"
	HeaderDLQTopic     = "dlq_topic"
	HeaderDLQPartition = "dlq_partition"
	HeaderDLQOffset    = "dlq_offset"
	HeaderDLQAttempts  = "dlq_attempts"
	HeaderDLQTime      = "dlq_time"
)

// maxReasonLen bounds dlq_reason so a huge error text cannot bloat the record.
const maxReasonLen = 1024

// Handler processes one message. Returning nil marks it done; an error is
// retried with backoff unless it is wrapped with Permanent. ctx carries the
// producer's trace context and ends when the partition is revoked or the
// runner stops; the message is then redelivered, so handlers must be
// idempotent.
type Handler func(ctx context.Context, m *Message) error

// BatchHandler processes the messages of one partition that arrived
// together, in offset order. Returning nil marks them all done; on an
// error the runner falls back to the per-message Handler for each of them
// (with its retries and dead-lettering), so a batch handler need not tell
// which message failed. Like a Handler it must be idempotent; ctx carries
// the first message's trace context.
type BatchHandler func(ctx context.Context, ms []*Message) error

// Permanent wraps err so the runner sends the message to the dead-letter
// topic at once instead of retrying (a malformed event, an unknown entity).
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, came from Permanent.
func IsPermanent(err error) bool {
	var pe *permanentError
	return errors.As(err, &pe)
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Publisher is what the runner needs to write dead letters; *Producer
// implements it.
type Publisher interface {
	Publish(ctx context.Context, m Message) error
}

var _ Publisher = (*Producer)(nil)

// RunnerConfig describes one consumer group.
type RunnerConfig struct {
	// Group is the consumer group id. Required.
	Group string
	// Topics are consumed by the group. Required.
	Topics []string
	// Select, when set, chooses which of Topics the group consumes now,
	// each from a time on: the runner asks it before each session, and
	// every SelectInterval (default 10s) during one, and starts a new
	// session when the topics change. While it chooses none, the runner is
	// not a member of the group. A partition whose committed offset is
	// older than its topic's time (or that has none) is consumed from the
	// first message written at or after that time. An error ends the
	// group's session and is retried as a rebalance failure is.
	Select func(ctx context.Context) (Selection, error)
	// SelectInterval is how often Select is asked during a session.
	SelectInterval time.Duration
	// MaxAttempts is how many times the handler runs for one message
	// before it goes to the dead-letter topic; default 5.
	MaxAttempts int
	// InitialBackoff is the pause after the first failed attempt; it grows
	// exponentially (with jitter) up to MaxBackoff. Defaults 200ms and 5s.
	InitialBackoff time.Duration
	// MaxBackoff caps the pause between attempts, also between attempts to
	// write a dead letter or to (re)join the group; default 5s.
	MaxBackoff time.Duration
	// DeadLetter publishes dead letters; when nil the runner makes its own
	// Producer from the Config and closes it when Run returns.
	DeadLetter Publisher
	// Batch, when set, is called with the messages already fetched for a
	// partition (at most MaxBatch) instead of Handler being called for
	// each; Handler remains the fallback when Batch fails.
	Batch BatchHandler
	// MaxBatch bounds the messages given to Batch at once; default 256.
	MaxBatch int
	// LagInterval is how often the group's lag is measured for
	// comfort_kafka_consumer_lag_messages; default 15s.
	LagInterval time.Duration
}

// Selection is what RunnerConfig.Select chooses: the topics to consume,
// each with the time from which the group wants its messages.
type Selection map[string]time.Time

// Runner consumes a set of topics in a consumer group with at-least-once
// semantics: a message's offset is marked only after its handler succeeded
// or the message was written to the dead-letter topic. Partitions are
// processed concurrently, messages within a partition one at a time, in
// order.
type Runner struct {
	cfg     Config
	rc      RunnerConfig
	handler Handler
	base    *zap.Logger // as passed in, for the runner's own producer
	log     *zap.Logger
	metrics *Metrics
	tracer  trace.Tracer
	// consuming are the topics of the current session (all of Topics
	// without Select), whose lag is measured.
	consuming atomic.Pointer[[]string]
}

// NewRunner validates the configuration and returns a runner; nothing
// connects until Run. log and metrics may be nil.
func NewRunner(cfg Config, rc RunnerConfig, h Handler, log *zap.Logger, metrics *Metrics) (*Runner, error) {
	if _, err := NewSaramaConfig(cfg); err != nil {
		return nil, err
	}
	switch {
	case rc.Group == "":
		return nil, errors.New("kafka: runner: empty group")
	case len(rc.Topics) == 0:
		return nil, errors.New("kafka: runner: no topics")
	case h == nil:
		return nil, errors.New("kafka: runner: nil handler")
	case rc.MaxAttempts < 0 || rc.InitialBackoff < 0 || rc.MaxBackoff < 0 || rc.MaxBatch < 0 || rc.LagInterval < 0 || rc.SelectInterval < 0:
		return nil, errors.New("kafka: runner: negative attempts, backoff, batch size or interval")
	}
	rc.SelectInterval = cmp.Or(rc.SelectInterval, 10*time.Second)
	rc.MaxAttempts = cmp.Or(rc.MaxAttempts, 5)
	rc.MaxBatch = cmp.Or(rc.MaxBatch, 256)
	rc.LagInterval = cmp.Or(rc.LagInterval, 15*time.Second)
	rc.InitialBackoff = cmp.Or(rc.InitialBackoff, 200*time.Millisecond)
	rc.MaxBackoff = max(cmp.Or(rc.MaxBackoff, 5*time.Second), rc.InitialBackoff)
	if log == nil {
		log = zap.NewNop()
	}
	metrics = metrics.orNoop()
	// Zero series for the group's topics, so that the first dead letter
	// is an increase an alert sees, not a series appearing at 1.
	for _, topic := range rc.Topics {
		metrics.consumed.WithLabelValues(topic)
		metrics.retries.WithLabelValues(topic)
		metrics.handlerDuration.WithLabelValues(topic)
		for _, outcome := range []string{outcomeOK, outcomeDeadLetter} {
			metrics.handled.WithLabelValues(topic, outcome)
		}
		for _, reason := range []string{reasonPermanent, reasonExhausted} {
			metrics.deadLettered.WithLabelValues(topic, reason)
		}
	}
	r := &Runner{
		cfg:     cfg,
		rc:      rc,
		handler: h,
		base:    log,
		log:     log.Named("kafka.runner").With(zap.String("group", rc.Group)),
		metrics: metrics,
		tracer:  cfg.tracer(),
	}
	r.consuming.Store(&r.rc.Topics)
	return r, nil
}

// Run joins the group and processes messages until ctx ends, then commits
// the marked offsets, leaves the group and returns nil. Connection and
// rebalance failures are logged and retried with backoff, so Run returns
// an error only for a configuration the brokers reject.
func (r *Runner) Run(ctx context.Context) error {
	dlq := r.rc.DeadLetter
	if dlq == nil {
		p, err := NewProducer(r.cfg, r.base, r.metrics)
		if err != nil {
			return err
		}
		defer func() { _ = p.Close() }()
		dlq = p
	}
	sc, err := NewSaramaConfig(r.cfg)
	if err != nil {
		return err
	}

	lagCtx, stopLag := context.WithCancel(ctx)
	lagDone := make(chan struct{})
	go func() {
		defer close(lagDone)
		r.watchLag(lagCtx, sc)
	}()
	defer func() {
		stopLag()
		<-lagDone
	}()

	bo := r.backoff()
	for {
		// The group's own client: Select's times are looked up with it.
		client, err := sarama.NewClient(r.cfg.Brokers, sc)
		if err == nil {
			var group sarama.ConsumerGroup
			if group, err = sarama.NewConsumerGroupFromClient(r.rc.Group, client); err == nil {
				err = r.consume(ctx, group, &groupHandler{r: r, client: client, dlq: dlq})
				if cerr := group.Close(); cerr != nil {
					r.log.Warn("closing consumer group", zap.Error(cerr))
				}
			}
			_ = client.Close()
			if ctx.Err() != nil {
				return nil
			}
			if errors.As(err, new(sarama.ConfigurationError)) {
				return fmt.Errorf("kafka: runner %s: %w", r.rc.Group, err)
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		wait := bo.NextBackOff()
		r.log.Warn("consumer group failed, retrying", zap.Error(err), zap.Duration("in", wait))
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// consume runs sessions on group until ctx ends or a session fails.
func (r *Runner) consume(ctx context.Context, group sarama.ConsumerGroup, h *groupHandler) error {
	go func() {
		// The channel is closed by group.Close.
		for err := range group.Errors() {
			r.log.Warn("consumer group error", zap.Error(err))
		}
	}()
	for {
		topics, since, err := r.choose(ctx)
		if err != nil {
			return err
		}
		r.consuming.Store(&topics)
		h.since = since
		if len(topics) == 0 {
			if !sleep(ctx, r.rc.SelectInterval) {
				return nil
			}
			continue
		}
		if err := r.session(ctx, group, topics, h); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// choose returns the topics to consume now, sorted, with the time each
// is wanted from: Topics from their committed offsets, or those of them
// Select chooses.
func (r *Runner) choose(ctx context.Context) ([]string, Selection, error) {
	if r.rc.Select == nil {
		return r.rc.Topics, nil, nil
	}
	chosen, err := r.rc.Select(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("kafka: runner %s: choosing topics: %w", r.rc.Group, err)
	}
	var topics []string
	for topic := range chosen {
		if slices.Contains(r.rc.Topics, topic) {
			topics = append(topics, topic)
		}
	}
	slices.Sort(topics)
	return topics, chosen, nil
}

// session runs one session of the group on topics. Consume returns at the
// end of each session (every eager rebalance), marked offsets committed;
// with Select, the session also ends once Select chooses other topics.
func (r *Runner) session(ctx context.Context, group sarama.ConsumerGroup, topics []string, h *groupHandler) error {
	if r.rc.Select == nil {
		return group.Consume(ctx, topics, h)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		for sleep(sctx, r.rc.SelectInterval) {
			now, _, err := r.choose(sctx)
			if err != nil {
				r.log.Warn("consumed topics not checked", zap.Error(err))
				continue
			}
			if !slices.Equal(now, topics) {
				r.log.Info("consumed topics change", zap.Strings("from", topics), zap.Strings("to", now))
				cancel()
				return
			}
		}
	}()
	err := group.Consume(sctx, topics, h)
	if sctx.Err() != nil && ctx.Err() == nil {
		return nil // the choice changed: the next session takes the new one
	}
	return err
}

func (r *Runner) backoff() *backoff.ExponentialBackOff {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = r.rc.InitialBackoff
	bo.MaxInterval = r.rc.MaxBackoff
	return bo
}

// groupHandler implements sarama.ConsumerGroupHandler.
type groupHandler struct {
	r      *Runner
	client sarama.Client // the group's
	dlq    Publisher
	since  Selection // of the session
}

// Setup moves each claimed partition whose topic is wanted from a time,
// and whose committed offset is older, to the first message written at or
// after that time (the end of the partition when there is none yet).
func (h *groupHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.r.log.Info("partitions assigned", zap.Any("claims", s.Claims()), zap.Int32("generation", s.GenerationID()))
	for topic, partitions := range s.Claims() {
		since := h.since[topic]
		if since.IsZero() {
			continue
		}
		for _, p := range partitions {
			from, err := h.client.GetOffset(topic, p, since.UnixMilli())
			if err == nil && from < 0 {
				from, err = h.client.GetOffset(topic, p, sarama.OffsetNewest)
			}
			if err != nil {
				return fmt.Errorf("kafka: runner %s: offset of %s/%d at %s: %w", h.r.rc.Group, topic, p, since, err)
			}
			s.MarkOffset(topic, p, from, "") // only ever forward
		}
	}
	return nil
}

// Cleanup commits synchronously, so the offsets of this session are
// stored before its partitions move to another member.
func (h *groupHandler) Cleanup(s sarama.ConsumerGroupSession) error {
	s.Commit()
	return nil
}

func (h *groupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	if h.r.rc.Batch != nil {
		return h.consumeBatches(s, claim)
	}
	ctx := s.Context()
	for {
		select {
		case cm, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			if !h.process(ctx, cm, true) {
				// The session ended mid-message: leave it unmarked so
				// the partition's next owner receives it again.
				return nil
			}
			s.MarkMessage(cm, "")
		case <-ctx.Done():
			return nil
		}
	}
}

// consumeBatches hands the messages already fetched for the claim to the
// batch handler together: it waits for one message, takes those that are
// ready behind it without waiting (up to MaxBatch), and marks the last
// offset once the batch handler, or the per-message fallback, is done.
func (h *groupHandler) consumeBatches(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	ctx := s.Context()
	batch := make([]*sarama.ConsumerMessage, 0, h.r.rc.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case cm, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			batch = append(batch, cm)
		case <-ctx.Done():
			return nil
		}
	fill:
		for len(batch) < h.r.rc.MaxBatch {
			select {
			case cm, ok := <-claim.Messages():
				if !ok {
					break fill
				}
				batch = append(batch, cm)
			default:
				break fill
			}
		}
		if !h.processBatch(ctx, batch) {
			return nil
		}
		s.MarkMessage(batch[len(batch)-1], "")
	}
}

// processBatch runs the batch handler once, then, if it failed, each
// message through process. It returns true when the batch may be marked.
func (h *groupHandler) processBatch(ctx context.Context, batch []*sarama.ConsumerMessage) bool {
	r := h.r
	ms := make([]*Message, len(batch))
	for i, cm := range batch {
		ms[i] = fromSarama(cm)
		r.metrics.consumed.WithLabelValues(ms[i].Topic).Inc()
	}
	bctx, span := startBatch(ctx, r.tracer, r.rc.Group, ms)
	err := h.callBatch(bctx, ms)
	if err == nil {
		span.End()
		r.metrics.handled.WithLabelValues(ms[0].Topic, outcomeOK).Add(float64(len(ms)))
		return true
	}
	fail(span, err)
	span.End()
	if ctx.Err() != nil {
		return false
	}
	r.log.Warn("batch handler failed, handling its messages one by one", zap.String("topic", ms[0].Topic),
		zap.Int32("partition", ms[0].Partition), zap.Int64("offset", ms[0].Offset), zap.Int("messages", len(ms)), zap.Error(err))
	for _, cm := range batch {
		if !h.process(ctx, cm, false) {
			return false
		}
	}
	return true
}

// callBatch runs the batch handler once, timing it and turning a panic
// into an error.
func (h *groupHandler) callBatch(ctx context.Context, ms []*Message) (err error) {
	start := time.Now()
	defer func() {
		h.r.metrics.handlerDuration.WithLabelValues(ms[0].Topic).Observe(time.Since(start).Seconds())
		if p := recover(); p != nil {
			h.r.log.Error("batch handler panicked", zap.String("topic", ms[0].Topic), zap.Int32("partition", ms[0].Partition),
				zap.Int64("offset", ms[0].Offset), zap.Any("panic", p), zap.Stack("stack"))
			err = fmt.Errorf("kafka: batch handler panicked: %v", p)
		}
	}()
	return h.r.rc.Batch(ctx, ms)
}

// process runs the handler with retries, then dead-letters the message if
// it still fails. It returns true when the message may be marked. count
// is false when the message was already counted as consumed (a batch).
func (h *groupHandler) process(ctx context.Context, cm *sarama.ConsumerMessage, count bool) bool {
	r := h.r
	m := fromSarama(cm)
	if count {
		r.metrics.consumed.WithLabelValues(m.Topic).Inc()
	}
	hctx, span := startProcess(ctx, r.tracer, r.rc.Group, m)
	defer span.End()

	attempts := 0
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		attempts++
		err := h.call(hctx, m)
		if err != nil && IsPermanent(err) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	},
		backoff.WithBackOff(r.backoff()),
		backoff.WithMaxTries(uint(r.rc.MaxAttempts)),
		backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, wait time.Duration) {
			r.metrics.retries.WithLabelValues(m.Topic).Inc()
			span.AddEvent("retry", trace.WithAttributes(attribute.String("error", err.Error()), attribute.String("wait", wait.String())))
		}),
	)
	if err == nil {
		r.metrics.handled.WithLabelValues(m.Topic, outcomeOK).Inc()
		return true
	}
	if ctx.Err() != nil {
		return false
	}

	reason := reasonExhausted
	if IsPermanent(err) {
		reason = reasonPermanent
	}
	fail(span, err)
	span.SetAttributes(attribute.String("comfort.dead_letter.reason", reason))
	log := r.log.With(zap.String("topic", m.Topic), zap.Int32("partition", m.Partition),
		zap.Int64("offset", m.Offset), zap.Int("attempts", attempts))
	log.Warn("handler failed, dead-lettering message", zap.String("reason", reason), zap.Error(err))

	dl := deadLetter(m, err, attempts)
	bo := r.backoff()
	for {
		perr := h.dlq.Publish(ctx, dl)
		if perr == nil {
			break
		}
		if ctx.Err() != nil {
			return false
		}
		// Not marking and moving on would let a later offset commit past
		// this message, so the partition waits until the dead letter is
		// written or the session ends.
		wait := bo.NextBackOff()
		log.Error("writing dead letter failed, retrying", zap.String("dlq", dl.Topic), zap.Error(perr), zap.Duration("in", wait))
		if !sleep(ctx, wait) {
			return false
		}
	}
	r.metrics.deadLettered.WithLabelValues(m.Topic, reason).Inc()
	r.metrics.handled.WithLabelValues(m.Topic, outcomeDeadLetter).Inc()
	return true
}

// call runs the handler once, timing it and turning a panic into an error.
func (h *groupHandler) call(ctx context.Context, m *Message) (err error) {
	start := time.Now()
	defer func() {
		h.r.metrics.handlerDuration.WithLabelValues(m.Topic).Observe(time.Since(start).Seconds())
		if p := recover(); p != nil {
			h.r.log.Error("handler panicked", zap.String("topic", m.Topic), zap.Int32("partition", m.Partition),
				zap.Int64("offset", m.Offset), zap.Any("panic", p), zap.Stack("stack"))
			err = fmt.Errorf("kafka: handler panicked: %v", p)
		}
	}()
	return h.r.handler(ctx, m)
}

// deadLetter returns m addressed to its dead-letter topic: key, value and
// headers unchanged, plus the dlq_* headers describing the failure.
func deadLetter(m *Message, cause error, attempts int) Message {
	reason := cause.Error()
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen]
	}
	dl := Message{
		Topic:   m.Topic + DeadLetterSuffix,
		Key:     m.Key,
		Value:   m.Value,
		Headers: append([]Header(nil), m.Headers...),
	}
	dl.SetHeader(HeaderDLQReason, reason)
	dl.SetHeader(HeaderDLQTopic, m.Topic)
	dl.SetHeader(HeaderDLQPartition, strconv.FormatInt(int64(m.Partition), 10))
	dl.SetHeader(HeaderDLQOffset, strconv.FormatInt(m.Offset, 10))
	dl.SetHeader(HeaderDLQAttempts, strconv.Itoa(attempts))
	dl.SetHeader(HeaderDLQTime, time.Now().UTC().Format(time.RFC3339Nano))
	return dl
}

// sleep waits for d or until ctx ends; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
