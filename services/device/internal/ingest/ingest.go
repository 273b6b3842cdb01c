// Package ingest takes the devices' telemetry from the MQTT link to Kafka:
// it validates each message, publishes the accepted samples in batches to
// `device.telemetry` (one TelemetryReported CloudEvent per device and
// batch) and the refused messages to `device.telemetry.dlq` with the
// reason, and only then acknowledges the MQTT messages to the broker.
//
// Kafka is the durable hand-over: the data service stores the history by
// consuming `device.telemetry`, so ingest neither waits for it nor stops
// when it is away. A message is acknowledged (PUBACK) only once Kafka has
// it, so a QoS 1 message the broker accepted is never lost here: whatever
// the service has not acknowledged when it stops, crashes or gives up on
// a message, the broker delivers again from the persistent session.
//
// The buffer between the link and Kafka is bounded. While Kafka is down
// the flusher retries with backoff and the buffer fills; then Handle
// blocks (pushing back on the broker) for at most Config.EnqueueWait and
// leaves the message unacknowledged for the broker to deliver again —
// counted by comfort_device_telemetry_deferred_total and logged.
package ingest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/comfortech/platform/libs/kafka"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
)

// Kafka topics and the event's CloudEvents attributes.
const (
	// Topic receives the TelemetryReported events.
	Topic = "device.telemetry"
	// DLQTopic receives the refused messages, as they came.
	DLQTopic = "device.telemetry.dlq"
	// EventType is ce_type of TelemetryReported.
	EventType = "comfortech.device.telemetry.v1"
	// Source is ce_source of the service's events.
	Source = "/services/device"
)

// DLQ headers besides kafka.HeaderDLQReason.
const (
	// HeaderDLQDetail says more about the reason.
	HeaderDLQDetail = "dlq_detail"
	// HeaderDLQTopic is the MQTT topic the message came on.
	HeaderDLQTopic = "dlq_mqtt_topic"
	// HeaderDeviceID is the device that sent it.
	HeaderDeviceID = "device_id"
)

// MaxEventSamples bounds the samples of one TelemetryReported event, so
// an event stays far below Kafka's default 1 MB record limit.
const MaxEventSamples = 1000

// Publisher is what the ingester needs of a Kafka producer;
// *kafka.Producer has it.
type Publisher interface {
	// Send hands messages over without waiting for the brokers.
	Send(ctx context.Context, msgs []kafka.Message) (*kafka.Pending, error)
	// PublishBatch sends messages and waits for every acknowledgement; a
	// *kafka.BatchError tells which failed.
	PublishBatch(ctx context.Context, msgs []kafka.Message) error
}

var _ Publisher = (*kafka.Producer)(nil)

// maxInFlight bounds the batches handed to Kafka and not yet acknowledged:
// the next batch goes out while the previous ones wait for the brokers.
const maxInFlight = 4

// Config tunes an Ingester.
type Config struct {
	// MaxPayload is the largest accepted message; default 64 KiB.
	MaxPayload int
	// BatchSize is the most MQTT messages per flush; default 500.
	BatchSize int
	// BatchWait is how long a flush that is not full waits for more
	// messages; 0 (the default) sends what is there at once. Messages
	// arriving while a flush is in flight gather into the next one.
	BatchWait time.Duration
	// Buffer is how many messages wait at most; default 4,096. Every one
	// is unacknowledged at the broker, which must allow that many per
	// client (mochi: 8,192).
	Buffer int
	// EnqueueWait is how long Handle blocks on a full buffer before it
	// leaves the message to the broker; default 5 s. It must stay well
	// below the link's keepalive.
	EnqueueWait time.Duration
	// ModelOf returns a device's model for the events; nil leaves it empty.
	ModelOf func(ctx context.Context, deviceID string) string
	// Log receives refusals and retries.
	Log *zap.Logger
	// Metrics registers the counters; nil registers nowhere.
	Metrics prometheus.Registerer
}

// item is one MQTT message on its way to Kafka: the samples of a valid
// message, or the dead letter of a refused one.
type item struct {
	deviceID string
	topic    string
	payload  []byte
	samples  []Sample
	dead     *kafka.Message
	received time.Time
	ack      func()
}

// Ingester is the telemetry pipeline. Handle is called by the MQTT link,
// Run sends to Kafka and acknowledges.
type Ingester struct {
	cfg  Config
	pub  Publisher
	buf  chan item
	full atomic.Int64 // Handle calls that found the buffer full, for log sampling
	// deferUntil (Unix ns) ends the window in which Handle does not wait
	// for room.
	deferUntil atomic.Int64

	rejected *prometheus.CounterVec
	deferred prometheus.Counter
	accepted prometheus.Counter
	flushed  prometheus.Counter
	retries  prometheus.Counter
	batches  prometheus.Histogram
	handover prometheus.Histogram
}

// New returns an Ingester that publishes with pub.
func New(pub Publisher, cfg Config) (*Ingester, error) {
	if cfg.BatchWait < 0 || cfg.MaxPayload < 0 || cfg.BatchSize < 0 || cfg.Buffer < 0 || cfg.EnqueueWait < 0 {
		return nil, errors.New("ingest: negative size or duration")
	}
	cfg.MaxPayload = cmp.Or(cfg.MaxPayload, 64<<10)
	cfg.BatchSize = cmp.Or(cfg.BatchSize, 500)
	cfg.Buffer = cmp.Or(cfg.Buffer, 4096)
	cfg.EnqueueWait = cmp.Or(cfg.EnqueueWait, 5*time.Second)
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	in := &Ingester{cfg: cfg, pub: pub, buf: make(chan item, cfg.Buffer),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "comfort_device_telemetry_rejected_total",
			Help: "Telemetry messages refused as invalid, by reason (sent to device.telemetry.dlq)."},
			[]string{"reason"}),
		deferred: prometheus.NewCounter(prometheus.CounterOpts{Name: "comfort_device_telemetry_deferred_total",
			Help: "Telemetry messages left unacknowledged for the broker to deliver again: the buffer stayed full (Kafka unavailable?)."}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{Name: "comfort_device_telemetry_samples_total",
			Help: "Telemetry samples accepted into the buffer."}),
		flushed: prometheus.NewCounter(prometheus.CounterOpts{Name: "comfort_device_telemetry_published_samples_total",
			Help: "Telemetry samples published to device.telemetry and acknowledged to the broker."}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Name: "comfort_device_telemetry_publish_retries_total",
			Help: "Failed publishes to Kafka retried."}),
		batches: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "comfort_device_telemetry_batch_messages",
			Help: "MQTT messages per flush to Kafka.", Buckets: prometheus.ExponentialBuckets(1, 4, 7)}),
		handover: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "comfort_device_telemetry_handover_seconds",
			Help:    "Time from receiving a telemetry message to its acknowledgement, once in Kafka.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
	}
	// Zero series for every reason, so the first rejection is an increase.
	for _, r := range []string{ReasonTooLarge, ReasonInvalidJSON, ReasonEmpty, ReasonTooMany, ReasonInvalidTS, ReasonInvalidSeq,
		ReasonNoMetrics, ReasonTooManyMetric, ReasonMetricName, ReasonMetricValue, ReasonUnencodable} {
		in.rejected.WithLabelValues(r)
	}
	if cfg.Metrics != nil {
		for _, c := range []prometheus.Collector{in.rejected, in.deferred, in.accepted, in.flushed, in.retries, in.batches, in.handover} {
			if err := cfg.Metrics.Register(c); err != nil {
				return nil, fmt.Errorf("ingest: metrics: %w", err)
			}
		}
	}
	return in, nil
}

// Handle validates one MQTT message from deviceID and buffers it (its
// samples, or its dead letter when it is invalid); ack acknowledges it to
// the broker and is called once Kafka has it. When the buffer stays full
// for Config.EnqueueWait, or ctx ends, Handle returns false without
// calling ack: the broker keeps the message and delivers it again when
// the link's session resumes.
func (in *Ingester) Handle(ctx context.Context, deviceID, topic string, payload []byte, received time.Time, ack func()) bool {
	it := item{deviceID: deviceID, topic: topic, payload: payload, received: received, ack: ack}
	samples, err := Parse(payload, in.cfg.MaxPayload, received)
	if err != nil {
		var re *RejectError
		if !errors.As(err, &re) {
			re = &RejectError{Reason: ReasonInvalidJSON, Detail: err.Error()}
		}
		in.rejected.WithLabelValues(re.Reason).Inc()
		in.cfg.Log.Info("telemetry refused", zap.String("device_id", deviceID), zap.String("reason", re.Reason),
			zap.String("detail", re.Detail))
		it.dead = deadLetter(deviceID, topic, payload, re)
	}
	it.samples = samples
	select {
	case in.buf <- it:
		in.accepted.Add(float64(len(samples)))
		return true
	default:
	}
	// While the buffer has just stayed full for EnqueueWait, the messages
	// behind go back to the broker at once instead of each waiting again.
	if time.Now().UnixNano() >= in.deferUntil.Load() {
		timer := time.NewTimer(in.cfg.EnqueueWait)
		defer timer.Stop()
		select {
		case in.buf <- it:
			in.accepted.Add(float64(len(samples)))
			return true
		case <-timer.C:
			in.deferUntil.Store(time.Now().Add(in.cfg.EnqueueWait).UnixNano())
		case <-ctx.Done():
		}
	}
	in.deferred.Inc()
	if n := in.full.Add(1); n == 1 || n%1000 == 0 {
		in.cfg.Log.Warn("telemetry buffer full (Kafka unavailable?): messages left to the broker to deliver again",
			zap.String("device_id", deviceID), zap.Int64("deferred_so_far", n))
	}
	return false
}

// deadLetter is the DLQTopic message of a refused payload.
func deadLetter(deviceID, topic string, payload []byte, re *RejectError) *kafka.Message {
	m := &kafka.Message{Topic: DLQTopic, Key: []byte(deviceID), Value: payload}
	m.SetHeader(kafka.HeaderDLQReason, re.Reason)
	m.SetHeader(HeaderDLQDetail, re.Detail)
	m.SetHeader(HeaderDLQTopic, topic)
	m.SetHeader(HeaderDeviceID, deviceID)
	m.SetHeader(kafka.HeaderDLQTime, time.Now().UTC().Format(time.RFC3339Nano))
	return m
}

// Run sends the buffer to Kafka in batches until ctx ends, then sends
// what is left and waits a few seconds at most for the acknowledgements;
// what is not acknowledged by then stays with the broker, which delivers
// it again.
func (in *Ingester) Run(ctx context.Context) error {
	// Acknowledging outlives ctx by the drain's few seconds.
	ackCtx, cancelAck := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelAck()
	inflight := make(chan sent, maxInFlight-1)
	// Batches come back once acknowledged and are filled again: a new
	// BatchSize slice per flush (64 KiB at the default) would be most of
	// what ingest allocates, and the garbage collections it causes the
	// tail of its latency.
	free := make(chan []item, maxInFlight+1)
	acked := make(chan struct{})
	go func() { defer close(acked); in.acknowledge(ackCtx, inflight, free) }()
	for {
		var first item
		select {
		case first = <-in.buf:
		case <-ctx.Done():
			// Send what is buffered, then give the brokers a few seconds.
			stop := time.AfterFunc(5*time.Second, cancelAck)
			defer stop.Stop()
			for batch := in.fill(ackCtx, nil); len(batch) > 0 && ackCtx.Err() == nil; batch = in.fill(ackCtx, nil) {
				select {
				case inflight <- in.send(ackCtx, batch):
				case <-ackCtx.Done():
				}
			}
			close(inflight)
			<-acked
			return nil
		}
		var batch []item
		select {
		case batch = <-free:
		default:
			batch = make([]item, 0, in.cfg.BatchSize)
		}
		batch = append(batch, first)
		select {
		case inflight <- in.send(ctx, in.fill(ctx, batch)):
		case <-ctx.Done():
			// Left unacknowledged, for the broker to deliver again.
		}
	}
}

// sent is a batch handed to Kafka.
type sent struct {
	batch   []item
	msgs    []kafka.Message
	samples int
	pending *kafka.Pending
	err     error // the hand-over itself failed
}

// send hands a batch to Kafka.
func (in *Ingester) send(ctx context.Context, batch []item) sent {
	msgs, samples := in.messages(ctx, batch)
	in.batches.Observe(float64(len(batch)))
	pd, err := in.pub.Send(ctx, msgs)
	return sent{batch: batch, msgs: msgs, samples: samples, pending: pd, err: err}
}

// fill adds to batch what is buffered, up to BatchSize, waiting at most
// BatchWait for more.
func (in *Ingester) fill(ctx context.Context, batch []item) []item {
	for len(batch) < in.cfg.BatchSize {
		select {
		case it := <-in.buf:
			batch = append(batch, it)
			continue
		default:
		}
		break
	}
	if len(batch) == in.cfg.BatchSize || in.cfg.BatchWait == 0 {
		return batch
	}
	timer := time.NewTimer(in.cfg.BatchWait)
	defer timer.Stop()
	for len(batch) < in.cfg.BatchSize {
		select {
		case it := <-in.buf:
			batch = append(batch, it)
		case <-timer.C:
			return batch
		case <-ctx.Done():
			return batch
		}
	}
	return batch
}

// acknowledge waits for the batches in the order they were sent and
// acknowledges their MQTT messages, in the order they came, once Kafka has
// them; a batch Kafka refused is published again, with backoff, before
// any later one is acknowledged. Acknowledged batches go back to free,
// emptied, when it has room. When ctx ends, what is left stays
// unacknowledged.
func (in *Ingester) acknowledge(ctx context.Context, inflight <-chan sent, free chan<- []item) {
	for s := range inflight {
		err := s.err
		if err == nil {
			err = s.pending.Wait(ctx)
		}
		if err != nil && !in.republish(ctx, s, err) {
			continue
		}
		now := time.Now()
		for _, it := range s.batch {
			it.ack()
			in.handover.Observe(now.Sub(it.received).Seconds())
		}
		in.flushed.Add(float64(s.samples))
		clear(s.batch) // no payload kept alive by a recycled batch
		select {
		case free <- s.batch[:0]:
		default:
		}
	}
}

// republish publishes again what Kafka did not take of s (all of it when
// the hand-over failed), with backoff, until it succeeds (true) or ctx
// ends (false).
func (in *Ingester) republish(ctx context.Context, s sent, err error) bool {
	msgs := s.msgs
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = 100*time.Millisecond, 5*time.Second
	for attempt := 1; ; attempt++ {
		if be, ok := errors.AsType[*kafka.BatchError](err); ok {
			// Only what failed goes again: the rest is in Kafka.
			failed := msgs[:0:0]
			for i, e := range be.Errs {
				if e != nil {
					failed = append(failed, msgs[i])
				}
			}
			msgs = failed
		}
		in.retries.Inc()
		if attempt == 1 || attempt%10 == 0 {
			in.cfg.Log.Warn("publishing telemetry to Kafka failed; retrying", zap.Int("attempt", attempt),
				zap.Int("messages", len(s.batch)), zap.Error(err))
		}
		select {
		case <-ctx.Done():
			in.cfg.Log.Warn("telemetry batch left unacknowledged at shutdown; the broker will deliver it again",
				zap.Int("messages", len(s.batch)))
			return false
		case <-time.After(b.NextBackOff()):
		}
		if err = in.pub.PublishBatch(ctx, msgs); err == nil {
			return true
		}
	}
}

// messages builds the Kafka messages of a batch: its dead letters, and
// one TelemetryReported per device (split every MaxEventSamples samples)
// with the devices in the order they first appear. It returns them with
// the number of samples they carry. A device whose event cannot be
// encoded (which valid samples never cause) has its messages
// dead-lettered instead, so nothing is acknowledged unrecorded.
func (in *Ingester) messages(ctx context.Context, batch []item) ([]kafka.Message, int) {
	var (
		msgs   []kafka.Message
		open   = map[string]*eventsv1.TelemetryReported{}
		events []*eventsv1.TelemetryReported
	)
	for _, it := range batch {
		if it.dead != nil {
			msgs = append(msgs, *it.dead)
			continue
		}
		for _, s := range it.samples {
			e := open[it.deviceID]
			if e == nil || len(e.Samples) == MaxEventSamples {
				e = &eventsv1.TelemetryReported{DeviceId: it.deviceID, ReceiveTime: timestamppb.New(it.received)}
				if in.cfg.ModelOf != nil {
					e.Model = in.cfg.ModelOf(ctx, it.deviceID)
				}
				open[it.deviceID] = e
				events = append(events, e)
			}
			e.Samples = append(e.Samples, &eventsv1.TelemetrySample{Seq: s.Seq, Time: timestamppb.New(s.Time), Metrics: s.Metrics})
		}
	}
	samples := 0
	failed := map[string]*RejectError{}
	encoded := make([]kafka.Message, len(events))
	for i, e := range events {
		m, err := kafka.EncodeEvent(ctx, Topic, kafka.Event{Source: Source, Type: EventType, Key: e.DeviceId, Data: e})
		if err != nil {
			failed[e.DeviceId] = &RejectError{Reason: ReasonUnencodable, Detail: err.Error()}
		}
		encoded[i] = m
	}
	for i, e := range events {
		if failed[e.DeviceId] == nil {
			msgs = append(msgs, encoded[i])
			samples += len(e.Samples)
		}
	}
	for _, it := range batch {
		if re := failed[it.deviceID]; re != nil && it.dead == nil {
			in.rejected.WithLabelValues(re.Reason).Inc()
			in.cfg.Log.Error("telemetry event not encodable", zap.String("device_id", it.deviceID), zap.String("detail", re.Detail))
			msgs = append(msgs, *deadLetter(it.deviceID, it.topic, it.payload, re))
		}
	}
	return msgs, samples
}
