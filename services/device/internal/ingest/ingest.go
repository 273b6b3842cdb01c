// Package ingest takes the devices' telemetry from the MQTT link to the
// platform: it validates each message, sends what it cannot accept to the
// `device.telemetry.dlq` topic with the reason, and appends the rest in
// batches to the data service (AppendTelemetry) and to `device.telemetry`
// as one TelemetryReported CloudEvent per device and batch.
//
// The buffer between the two is bounded. When the data service or Kafka
// is down the flusher retries with backoff and the buffer fills; then the
// MQTT handler blocks (so the broker's QoS 1 messages stay unacknowledged)
// for at most Config.EnqueueWait, after which the message is refused —
// counted by comfort_device_telemetry_rejected_total{reason="buffer_full"}
// and logged, never silently.
package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/comfortech/platform/libs/kafka"
	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
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

// ReasonBufferFull: the buffer stayed full for Config.EnqueueWait.
const ReasonBufferFull = "buffer_full"

// Publisher is what the ingester needs of a Kafka producer.
type Publisher interface {
	// Publish sends one message and waits for its acknowledgement.
	Publish(ctx context.Context, m kafka.Message) error
	// PublishBatch sends messages and waits for every acknowledgement.
	PublishBatch(ctx context.Context, msgs []kafka.Message) error
}

// Appender is the data service's telemetry API.
type Appender interface {
	// AppendTelemetry stores a batch; idempotent on (device_id, seq).
	AppendTelemetry(ctx context.Context, deviceRecords []*datav1.TelemetryRecord) error
}

// Config tunes an Ingester.
type Config struct {
	// MaxPayload is the largest accepted message; default 64 KiB.
	MaxPayload int
	// BatchSize is the most samples per flush; default 500.
	BatchSize int
	// BatchWait is how long the first sample of a batch waits for more;
	// default 20 ms.
	BatchWait time.Duration
	// Buffer is how many samples wait at most; default 20,000.
	Buffer int
	// EnqueueWait is how long the MQTT handler blocks on a full buffer
	// before refusing the message; default 5 s.
	EnqueueWait time.Duration
	// ModelOf returns a device's model for the events; nil leaves it empty.
	ModelOf func(ctx context.Context, deviceID string) string
	// Log receives refusals and retries.
	Log *zap.Logger
	// Metrics registers the counters; nil registers nowhere.
	Metrics prometheus.Registerer
}

// item is one buffered sample with its device.
type item struct {
	deviceID string
	sample   Sample
	received time.Time
}

// Ingester is the telemetry pipeline. Handle is called by the MQTT link,
// Run flushes.
type Ingester struct {
	cfg      Config
	data     Appender
	kafka    Publisher
	buf      chan item
	rejected *prometheus.CounterVec
	accepted prometheus.Counter
	flushed  *prometheus.CounterVec
	retries  *prometheus.CounterVec
}

// New returns an Ingester that appends to data and publishes with pub.
func New(data Appender, pub Publisher, cfg Config) (*Ingester, error) {
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = 64 << 10
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.BatchWait <= 0 {
		cfg.BatchWait = 20 * time.Millisecond
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = 20_000
	}
	if cfg.EnqueueWait <= 0 {
		cfg.EnqueueWait = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	in := &Ingester{cfg: cfg, data: data, kafka: pub, buf: make(chan item, cfg.Buffer),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "comfort_device_telemetry_rejected_total",
			Help: "Telemetry messages refused, by reason (sent to device.telemetry.dlq unless buffer_full or dlq_failed)."},
			[]string{"reason"}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{Name: "comfort_device_telemetry_samples_total",
			Help: "Telemetry samples accepted into the buffer."}),
		flushed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "comfort_device_telemetry_flushed_samples_total",
			Help: "Telemetry samples delivered, by destination (data, kafka)."}, []string{"destination"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "comfort_device_telemetry_flush_retries_total",
			Help: "Failed flush attempts retried, by destination (data, kafka)."}, []string{"destination"}),
	}
	if cfg.Metrics != nil {
		for _, c := range []prometheus.Collector{in.rejected, in.accepted, in.flushed, in.retries} {
			if err := cfg.Metrics.Register(c); err != nil {
				return nil, fmt.Errorf("ingest: metrics: %w", err)
			}
		}
	}
	return in, nil
}

// Handle validates one MQTT message from deviceID and buffers its
// samples, blocking up to Config.EnqueueWait while the buffer is full.
// A refused message goes to the DLQ; Handle never fails.
func (in *Ingester) Handle(ctx context.Context, deviceID, topic string, payload []byte, received time.Time) {
	samples, err := Parse(payload, in.cfg.MaxPayload, received)
	if err != nil {
		var re *RejectError
		if !errors.As(err, &re) {
			re = &RejectError{Reason: ReasonInvalidJSON, Detail: err.Error()}
		}
		in.deadLetter(ctx, deviceID, topic, payload, re)
		return
	}
	var timer *time.Timer
	for i, s := range samples {
		it := item{deviceID: deviceID, sample: s, received: received}
		select {
		case in.buf <- it:
			in.accepted.Inc()
			continue
		default:
		}
		if timer == nil {
			timer = time.NewTimer(in.cfg.EnqueueWait)
			defer timer.Stop()
		}
		select {
		case in.buf <- it:
			in.accepted.Inc()
		case <-timer.C:
			in.rejected.WithLabelValues(ReasonBufferFull).Add(float64(len(samples) - i))
			in.cfg.Log.Warn("telemetry refused: buffer full (data service or Kafka unavailable?)",
				zap.String("device_id", deviceID), zap.Int("samples", len(samples)-i))
			return
		case <-ctx.Done():
			in.rejected.WithLabelValues(ReasonBufferFull).Add(float64(len(samples) - i))
			return
		}
	}
}

// deadLetter sends a refused message to DLQTopic with the reason.
func (in *Ingester) deadLetter(ctx context.Context, deviceID, topic string, payload []byte, re *RejectError) {
	in.rejected.WithLabelValues(re.Reason).Inc()
	in.cfg.Log.Info("telemetry refused", zap.String("device_id", deviceID), zap.String("reason", re.Reason),
		zap.String("detail", re.Detail))
	m := kafka.Message{Topic: DLQTopic, Key: []byte(deviceID), Value: payload}
	m.SetHeader(kafka.HeaderDLQReason, re.Reason)
	m.SetHeader(HeaderDLQDetail, re.Detail)
	m.SetHeader(HeaderDLQTopic, topic)
	m.SetHeader(HeaderDeviceID, deviceID)
	m.SetHeader(kafka.HeaderDLQTime, time.Now().UTC().Format(time.RFC3339Nano))
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := in.kafka.Publish(ctx, m); err != nil {
		in.rejected.WithLabelValues("dlq_failed").Inc()
		in.cfg.Log.Warn("telemetry dead letter lost: Kafka unavailable", zap.String("device_id", deviceID),
			zap.String("reason", re.Reason), zap.Error(err))
	}
}

// Run flushes the buffer in batches until ctx ends, then flushes what is
// left (for a few seconds at most).
func (in *Ingester) Run(ctx context.Context) error {
	batch := make([]item, 0, in.cfg.BatchSize)
	for {
		select {
		case it := <-in.buf:
			batch = append(batch[:0], it)
		case <-ctx.Done():
			in.drain()
			return nil
		}
		timer := time.NewTimer(in.cfg.BatchWait)
	fill:
		for len(batch) < in.cfg.BatchSize {
			select {
			case it := <-in.buf:
				batch = append(batch, it)
			case <-timer.C:
				break fill
			case <-ctx.Done():
				break fill
			}
		}
		timer.Stop()
		in.flush(ctx, batch)
	}
}

// drain flushes what is buffered when the service stops.
func (in *Ingester) drain() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var batch []item
	for {
		select {
		case it := <-in.buf:
			batch = append(batch, it)
			if len(batch) < in.cfg.BatchSize {
				continue
			}
		default:
		}
		if len(batch) == 0 {
			return
		}
		in.flush(ctx, batch)
		if ctx.Err() != nil {
			return
		}
		batch = batch[:0]
	}
}

// flush delivers one batch to the data service, then to Kafka, retrying
// each step with backoff until it succeeds or ctx ends (then the batch is
// counted and logged as lost).
func (in *Ingester) flush(ctx context.Context, batch []item) {
	recs := make([]*datav1.TelemetryRecord, len(batch))
	for i, it := range batch {
		recs[i] = &datav1.TelemetryRecord{DeviceId: it.deviceID, Seq: it.sample.Seq,
			Time: timestamppb.New(it.sample.Time), Metrics: it.sample.Metrics}
	}
	if err := in.retry(ctx, "data", func() error { return in.append(ctx, batch, recs) }); err != nil {
		in.lost(batch, "data", err)
		return
	}
	in.flushed.WithLabelValues("data").Add(float64(len(batch)))
	msgs, err := in.events(ctx, batch)
	if err != nil {
		in.lost(batch, "kafka", err)
		return
	}
	if err := in.retry(ctx, "kafka", func() error { return in.kafka.PublishBatch(ctx, msgs) }); err != nil {
		in.lost(batch, "kafka", err)
		return
	}
	in.flushed.WithLabelValues("kafka").Add(float64(len(batch)))
}

// append stores recs; when the data service refuses the batch as a whole
// (an unknown device), it stores it device by device and dead-letters the
// devices it refuses.
func (in *Ingester) append(ctx context.Context, batch []item, recs []*datav1.TelemetryRecord) error {
	err := in.data.AppendTelemetry(ctx, recs)
	if !permanent(err) {
		return err
	}
	byDevice := map[string][]int{}
	var order []string
	for i, it := range batch {
		if _, ok := byDevice[it.deviceID]; !ok {
			order = append(order, it.deviceID)
		}
		byDevice[it.deviceID] = append(byDevice[it.deviceID], i)
	}
	for _, id := range order {
		idx := byDevice[id]
		part := make([]*datav1.TelemetryRecord, len(idx))
		for j, i := range idx {
			part[j] = recs[i]
		}
		err := in.data.AppendTelemetry(ctx, part)
		switch {
		case permanent(err):
			body, _ := json.Marshal(part)
			in.deadLetter(ctx, id, "devices/"+id+"/telemetry", body,
				&RejectError{Reason: ReasonRejected, Detail: status.Convert(err).Message()})
			for _, i := range idx {
				batch[i].deviceID = "" // not for Kafka either
			}
		case err != nil:
			return err
		}
	}
	return nil
}

// events builds one TelemetryReported per device of the batch.
func (in *Ingester) events(ctx context.Context, batch []item) ([]kafka.Message, error) {
	byDevice := map[string]*eventsv1.TelemetryReported{}
	var order []string
	for _, it := range batch {
		if it.deviceID == "" {
			continue
		}
		e, ok := byDevice[it.deviceID]
		if !ok {
			e = &eventsv1.TelemetryReported{DeviceId: it.deviceID, ReceiveTime: timestamppb.New(it.received)}
			if in.cfg.ModelOf != nil {
				e.Model = in.cfg.ModelOf(ctx, it.deviceID)
			}
			byDevice[it.deviceID] = e
			order = append(order, it.deviceID)
		}
		e.Samples = append(e.Samples, &eventsv1.TelemetrySample{Seq: it.sample.Seq,
			Time: timestamppb.New(it.sample.Time), Metrics: it.sample.Metrics})
	}
	msgs := make([]kafka.Message, 0, len(order))
	for _, id := range order {
		m, err := kafka.EncodeEvent(ctx, Topic, kafka.Event{Source: Source, Type: EventType, Key: id, Data: byDevice[id]})
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// retry runs op until it succeeds, with exponential backoff (100 ms to
// 5 s), until ctx ends.
func (in *Ingester) retry(ctx context.Context, dest string, op func() error) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = 100*time.Millisecond, 5*time.Second
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil {
			return nil
		}
		in.retries.WithLabelValues(dest).Inc()
		if attempt == 1 || attempt%10 == 0 {
			in.cfg.Log.Warn("telemetry flush failed; retrying", zap.String("destination", dest),
				zap.Int("attempt", attempt), zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(b.NextBackOff()):
		}
	}
}

// lost counts and logs a batch given up (only when the service stops
// while a dependency is down).
func (in *Ingester) lost(batch []item, dest string, err error) {
	in.rejected.WithLabelValues("lost_" + dest).Add(float64(len(batch)))
	in.cfg.Log.Error("telemetry batch given up at shutdown", zap.String("destination", dest),
		zap.Int("samples", len(batch)), zap.Error(err))
}

// permanent says whether the data service refused the request itself
// (retrying would not help).
func permanent(err error) bool {
	switch status.Code(err) {
	case codes.NotFound, codes.InvalidArgument, codes.FailedPrecondition:
		return true
	}
	return false
}
