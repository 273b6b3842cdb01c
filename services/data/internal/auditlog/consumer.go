package auditlog

import (
	"context"

	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/comfortech/platform/libs/audit"
	"github.com/comfortech/platform/libs/kafka"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
)

// Group is the consumer group that stores the audit log: a group of its
// own, so that neither account events nor telemetry wait for it.
const Group = "data-service-audit"

// NewConsumer returns the runner that stores the events of `audit`
// (at-least-once; a stored event delivered again is skipped). Events a
// partition has ready are stored in one transaction; a malformed one goes
// to `audit.dlq` with the reason. log and metrics may be nil.
func (l *Log) NewConsumer(cfg kafka.Config, dlq kafka.Publisher, log *zap.Logger, metrics *kafka.Metrics) (*kafka.Runner, error) {
	return kafka.NewRunner(cfg, kafka.RunnerConfig{Group: Group, Topics: []string{audit.Topic}, DeadLetter: dlq,
		Batch: l.storeEvents}, l.storeEvent, log, metrics)
}

// storeEvents stores several events together; any error makes the runner
// store them one by one (storeEvent), which tells a malformed one apart.
func (l *Log) storeEvents(ctx context.Context, ms []*kafka.Message) error {
	events := make([]*eventsv1.AuditEvent, 0, len(ms))
	for _, m := range ms {
		e, err := decode(m)
		if err != nil {
			return err
		}
		events = append(events, e)
	}
	return l.Add(ctx, events...)
}

// storeEvent stores one event; a malformed event is permanent.
func (l *Log) storeEvent(ctx context.Context, m *kafka.Message) error {
	e, err := decode(m)
	if err != nil {
		return kafka.Permanent(err)
	}
	return l.Add(ctx, e)
}

// decode reads an AuditEvent, its id and time from the CloudEvents
// attributes when the body lacks them.
func decode(m *kafka.Message) (*eventsv1.AuditEvent, error) {
	e := &eventsv1.AuditEvent{}
	ce, err := kafka.DecodeEvent(m, e)
	if err != nil {
		return nil, err
	}
	if e.GetId() == "" {
		e.Id = ce.ID
	}
	if e.GetTime() == nil {
		e.Time = timestamppb.New(ce.Time)
	}
	return e, nil
}
