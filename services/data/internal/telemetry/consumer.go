package telemetry

import (
	"context"
	"errors"

	"go.uber.org/zap"

	"github.com/comfortech/platform/libs/kafka"
	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
	"github.com/comfortech/platform/services/data/internal/app"
)

// The device service's telemetry events, which the service stores.
const (
	// Topic is where the device service publishes TelemetryReported.
	Topic = "device.telemetry"
	// EventType is ce_type of TelemetryReported.
	EventType = "comfortech.device.telemetry.v1"
	// Group is the consumer group that stores them: a group of its own,
	// so a telemetry backlog never delays account events.
	Group = "data-service-telemetry"
)

// appendChunk bounds the records of one AppendTelemetry transaction when
// a batch of events is stored together.
const appendChunk = 5000

// NewConsumer returns the runner that stores the samples of
// `device.telemetry` (at-least-once: a sample already stored is a
// duplicate and skipped). Events a partition has ready are stored
// together; a malformed event goes to `device.telemetry.dlq` with the
// reason. dlq writes the dead letters; log and metrics may be nil.
func (s *Service) NewConsumer(cfg kafka.Config, dlq kafka.Publisher, log *zap.Logger, metrics *kafka.Metrics) (*kafka.Runner, error) {
	return kafka.NewRunner(cfg, kafka.RunnerConfig{Group: Group, Topics: []string{Topic}, DeadLetter: dlq,
		Batch: s.storeEvents}, s.storeEvent, log, metrics)
}

// storeEvents stores the samples of several events, in transactions of
// at most appendChunk records. Any error makes the runner store the
// events one by one (storeEvent), which tells a malformed event apart.
func (s *Service) storeEvents(ctx context.Context, ms []*kafka.Message) error {
	var recs []*datav1.TelemetryRecord
	for _, m := range ms {
		r, err := records(m)
		if err != nil {
			return err
		}
		recs = append(recs, r...)
	}
	for len(recs) > 0 {
		n := min(len(recs), appendChunk)
		if _, err := s.AppendTelemetry(ctx, &datav1.AppendTelemetryRequest{Records: recs[:n]}); err != nil {
			return err
		}
		recs = recs[n:]
	}
	return nil
}

// storeEvent stores the samples of one event; a malformed event, or one
// the store refuses as invalid, is permanent (dead-lettered).
func (s *Service) storeEvent(ctx context.Context, m *kafka.Message) error {
	recs, err := records(m)
	if err != nil {
		return kafka.Permanent(err)
	}
	if len(recs) == 0 {
		return nil
	}
	_, err = s.AppendTelemetry(ctx, &datav1.AppendTelemetryRequest{Records: recs})
	if errors.Is(err, app.ErrInvalid) {
		return kafka.Permanent(err)
	}
	return err
}

// records decodes a TelemetryReported into the records AppendTelemetry
// takes; events of other types have none.
func records(m *kafka.Message) ([]*datav1.TelemetryRecord, error) {
	if m.Header(kafka.HeaderType) != EventType {
		return nil, nil
	}
	var e eventsv1.TelemetryReported
	if _, err := kafka.DecodeEvent(m, &e); err != nil {
		return nil, err
	}
	recs := make([]*datav1.TelemetryRecord, len(e.GetSamples()))
	for i, smp := range e.GetSamples() {
		recs[i] = &datav1.TelemetryRecord{DeviceId: e.GetDeviceId(), Seq: smp.GetSeq(), Time: smp.GetTime(), Metrics: smp.GetMetrics()}
	}
	return recs, nil
}
