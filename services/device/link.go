package device

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/cenkalti/backoff/v5"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/process"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
	"github.com/comfortech/platform/services/device/internal/alarm"
	"github.com/comfortech/platform/services/device/internal/app"
	"github.com/comfortech/platform/services/device/internal/dataclient"
	"github.com/comfortech/platform/services/device/internal/ingest"
	"github.com/comfortech/platform/services/device/internal/mqttlink"
	"github.com/comfortech/platform/services/device/internal/presence"
	"github.com/comfortech/platform/services/device/internal/statesync"
)

// startLink adds the MQTT side to p: the Kafka producer, the telemetry
// ingester, the presence tracker (with its history and the queued-command
// hook), command results, alarms, the device.lifecycle consumer (desired
// state, owners) and the MQTT link that feeds them. On shutdown the
// device.lifecycle consumer stops first, then the ingester sends what it
// holds and acknowledges what Kafka took, then the link closes (whatever is
// still unacknowledged stays with the broker), then the producer closes.
func startLink(ctx context.Context, cfg Config, p *process.Process, store app.Store, dataConn grpc.ClientConnInterface,
	owners app.OwnerStore, cmds *app.Commands, history *app.PresenceHistory, port *commandPort, log *zap.Logger) error {
	// The ingester sends its batches whole, so the producer does not
	// linger: what reaches it while a request is in flight (one at a time,
	// idempotent) goes in the next, and a linger would only add its timer
	// to every message's latency.
	kcfg := kafka.Config{Brokers: cfg.KafkaBrokers, ClientID: "device-service", DialTimeout: 5 * time.Second,
		Tune: func(sc *sarama.Config) { sc.Producer.Flush.Frequency = 0 }, TracerProvider: p.Tracer}
	km, err := kafka.NewMetrics(p.Metrics)
	if err != nil {
		return fmt.Errorf("device: %w", err)
	}
	producer, err := kafka.NewProducer(kcfg, log.Named("kafka"), km)
	if err != nil {
		return fmt.Errorf("device: %w", err)
	}
	pinger, err := kafka.NewPinger(kcfg)
	if err != nil {
		return fmt.Errorf("device: %w", err)
	}
	p.Health.Add("kafka", pinger.Check)

	data := dataclient.NewReports(dataConn)
	ing, err := ingest.New(producer, ingest.Config{
		MaxPayload: cfg.Telemetry.MaxPayload, BatchSize: cfg.Telemetry.BatchSize, BatchWait: cfg.Telemetry.BatchWait,
		Buffer: cfg.Telemetry.Buffer, EnqueueWait: cfg.Telemetry.EnqueueWait,
		ModelOf: modelCache(store), Log: log.Named("ingest"), Metrics: p.Metrics,
	})
	if err != nil {
		return fmt.Errorf("device: %w", err)
	}

	alarms, err := alarm.New(producer, owners, alarm.Config{ModelOf: modelCache(store), Log: log.Named("alarm"), Metrics: p.Metrics})
	if err != nil {
		return fmt.Errorf("device: %w", err)
	}

	clientID := cfg.MQTT.ClientID
	if clientID == "" {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("device: MQTT_CLIENT_ID not set and no host name: %w", err)
		}
		clientID = "device-service-" + host
	}
	var link atomic.Pointer[mqttlink.Link]
	p.Health.Add("mqtt", func(ctx context.Context) error {
		if l := link.Load(); l != nil {
			return l.Check(ctx)
		}
		return errors.New("mqtt link not connected yet")
	})

	p.Go("mqtt link", func(ctx context.Context) error {
		// The handlers outlive ctx to finish what the link handed over.
		ingCtx, stopHandlers := context.WithCancel(context.WithoutCancel(ctx))
		// The ingester flushes and acknowledges what it holds before the
		// link closes; stopIngest (idempotent) does that.
		flushCtx, cancelFlush := context.WithCancel(ingCtx)
		ingDone := make(chan struct{})
		go func() { defer close(ingDone); _ = ing.Run(flushCtx) }()
		stopIngest := func() { cancelFlush(); <-ingDone }
		port.producer.Store(producer)
		defer func() {
			port.producer.Store(nil)
			stopIngest()
			stopHandlers()
			if err := producer.Close(); err != nil {
				log.Warn("kafka producer close", zap.Error(err))
			}
			_ = pinger.Close()
		}()

		tracker, err := presence.New(ingCtx, data, producer, presence.Config{Debounce: cfg.PresenceDebounce,
			OnChange: func(ctx context.Context, c presence.Change) {
				reason := app.ReasonConnected
				if !c.Online {
					reason = app.ReasonDisconnected
				}
				if err := history.Record(ctx, c.DeviceID, c.Online, reason, c.At); err != nil {
					log.Warn("presence change not kept in the history", zap.String("device_id", c.DeviceID), zap.Error(err))
				}
				if c.Online {
					cmds.DeviceOnline(ctx, c.DeviceID)
				}
			},
			Log: log.Named("presence"), Metrics: p.Metrics})
		if err != nil {
			return fmt.Errorf("device: %w", err)
		}
		defer tracker.Close()
		port.tracker.Store(tracker)
		defer port.tracker.Store(nil)
		redeliver := func() {
			if l := link.Load(); l != nil {
				l.Redeliver(time.Second)
			}
		}
		reports := startStateReports(ingCtx, data, cfg.Telemetry.EnqueueWait, redeliver, log)
		// At shutdown the reports still queued are left to the broker.
		defer func() { stopHandlers(); reports.close() }()
		handle := func(m mqttlink.Message) {
			switch m.Kind {
			case mqttlink.KindTelemetry:
				// Acknowledged by the ingester once in Kafka; left to the
				// broker when the buffer stays full.
				if !ing.Handle(flushCtx, m.DeviceID, m.Topic, m.Payload, m.Received, m.Ack) {
					redeliver()
				}
				return
			case mqttlink.KindReported:
				reports.handle(m)
				return
			}
			defer m.Ack()
			switch m.Kind {
			case mqttlink.KindStatus:
				tracker.Handle(m.DeviceID, m.Payload, m.Received)
			case mqttlink.KindEvent:
				alarms.Handle(ingCtx, m.DeviceID, m.Payload)
			case mqttlink.KindCommandResult:
				cmds.HandleResult(ingCtx, m.DeviceID, m.CommandID, m.Payload, m.Received)
			default:
				log.Debug("mqtt message of an unknown kind ignored", zap.Stringer("kind", m.Kind), zap.String("device_id", m.DeviceID))
			}
		}
		l, err := mqttlink.Dial(ctx, mqttlink.Config{URL: cfg.MQTT.URL, Username: cfg.MQTT.Username,
			Password: cfg.MQTT.Password.Reveal(), ClientID: clientID, Handler: handle, Log: log.Named("mqtt")})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("device: %w", err)
		}
		link.Store(l)
		port.link.Store(l)
		defer port.link.Store(nil)

		// The device.lifecycle consumer (desired state, owners) publishes
		// through the link, so it stops before the link closes.
		desired, ownership := statesync.Handler(l, log.Named("statesync")), alarm.OwnerHandler(owners)
		runner, err := kafka.NewRunner(kcfg, kafka.RunnerConfig{Group: "device-service", Topics: []string{statesync.Topic},
			DeadLetter: producer}, func(ctx context.Context, m *kafka.Message) error {
			if err := desired(ctx, m); err != nil {
				return err
			}
			return ownership(ctx, m)
		}, log, km)
		if err != nil {
			l.Close()
			return fmt.Errorf("device: %w", err)
		}
		runCtx, stopRunner := context.WithCancel(ctx)
		runDone := make(chan error, 1)
		go func() { runDone <- runner.Run(runCtx) }()
		var runErr error
		select {
		case <-ctx.Done():
			stopRunner()
			runErr = <-runDone
		case runErr = <-runDone:
			stopRunner()
		}
		stopIngest()
		l.Close()
		if runErr != nil {
			return fmt.Errorf("device: desired state consumer: %w", runErr)
		}
		return nil
	})
	return nil
}

// State reports go to the data service off the link's delivery goroutine,
// on stateReportWorkers workers: a slow or absent data service delays them
// without stalling telemetry, and a fleet reconnecting at once (each
// device reporting its state) is stored stateReportWorkers at a time. A
// device's reports always go to the same worker, so they are stored in
// the order they came.
const (
	stateReportWorkers = 8
	// stateReportQueue bounds each worker's waiting reports.
	stateReportQueue = 1024
)

// stateReports is the pool of state-report workers.
type stateReports struct {
	queues    []chan mqttlink.Message
	seed      maphash.Seed // picks a device's worker
	wait      time.Duration
	redeliver func()
	log       *zap.Logger
	done      sync.WaitGroup
}

// startStateReports starts the workers, which store reports with ctx until
// close; a report waits at most wait for room in its worker's queue.
func startStateReports(ctx context.Context, data *dataclient.Reports, wait time.Duration, redeliver func(), log *zap.Logger) *stateReports {
	r := &stateReports{queues: make([]chan mqttlink.Message, stateReportWorkers), seed: maphash.MakeSeed(),
		wait: wait, redeliver: redeliver, log: log}
	for i := range r.queues {
		q := make(chan mqttlink.Message, stateReportQueue)
		r.queues[i] = q
		r.done.Go(func() {
			for m := range q {
				switch {
				case reportState(ctx, data, m, log):
					m.Ack()
				case ctx.Err() == nil:
					redeliver()
				}
			}
		})
	}
	return r
}

// handle queues m for its device's worker, waiting for room at most
// r.wait; a report that finds no room is left to the broker, which
// delivers it again.
func (r *stateReports) handle(m mqttlink.Message) {
	q := r.queues[maphash.String(r.seed, m.DeviceID)%uint64(len(r.queues))]
	select {
	case q <- m:
		return
	default:
	}
	t := time.NewTimer(r.wait)
	defer t.Stop()
	select {
	case q <- m:
	case <-t.C:
		r.log.Warn("state reports queue full (data service slow or unavailable?): left to the broker to deliver again",
			zap.String("device_id", m.DeviceID))
		r.redeliver()
	}
}

// close stops the workers once they have gone through their queues (with
// a cancelled context, reports still queued are left to the broker).
func (r *stateReports) close() {
	for _, q := range r.queues {
		close(q)
	}
	r.done.Wait()
}

// maxReported bounds a reported-state document, like the data service's
// documents.
const maxReported = 64 << 10

// reportState hands a device's state/reported document to the data
// service, which merges it, versions it and emits DeviceStateReported,
// and reports whether the message is done with: stored, or refused for
// good. A document that is not a JSON object is refused with a warning:
// the device is told nothing over MQTT 3.1.1, so the log is where an
// operator sees it. While the data service is unreachable it retries for
// up to 30 s, then reports false (the message stays unacknowledged).
func reportState(ctx context.Context, data *dataclient.Reports, m mqttlink.Message, log *zap.Logger) bool {
	var doc map[string]any
	if len(m.Payload) > maxReported || json.Unmarshal(m.Payload, &doc) != nil || len(doc) == 0 {
		log.Warn("state/reported refused: not a JSON object of at most 64 KiB", zap.String("device_id", m.DeviceID), zap.Int("bytes", len(m.Payload)))
		return true
	}
	reported, err := structpb.NewStruct(doc)
	if err != nil {
		log.Warn("state/reported refused", zap.String("device_id", m.DeviceID), zap.Error(err))
		return true
	}
	_, err = backoff.Retry(ctx, func() (struct{}, error) {
		callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		err := data.ReportDeviceState(callCtx, m.DeviceID, reported, m.Received)
		switch status.Code(err) {
		case codes.OK:
			return struct{}{}, nil
		case codes.NotFound, codes.InvalidArgument, codes.PermissionDenied:
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithMaxTries(5), backoff.WithMaxElapsedTime(30*time.Second))
	switch {
	case err == nil:
		return true
	case errors.As(err, new(*backoff.PermanentError)) || status.Code(err) == codes.NotFound ||
		status.Code(err) == codes.InvalidArgument || status.Code(err) == codes.PermissionDenied:
		log.Warn("state/reported refused by the data service", zap.String("device_id", m.DeviceID), zap.Error(err))
		return true
	}
	log.Warn("state/reported not stored yet; left to the broker to deliver again", zap.String("device_id", m.DeviceID), zap.Error(err))
	return false
}

// modelCache returns the model of a device from its credentials,
// remembered once read (a device's model never changes).
func modelCache(store app.Store) func(ctx context.Context, deviceID string) string {
	var cache sync.Map
	return func(ctx context.Context, deviceID string) string {
		if m, ok := cache.Load(deviceID); ok {
			return m.(string)
		}
		c, err := store.GetCredential(ctx, deviceID)
		if err != nil {
			return ""
		}
		cache.Store(deviceID, c.Model)
		return c.Model
	}
}

// commandPort is app.CommandLink and app.CommandEvents over the MQTT link,
// the presence tracker and the Kafka producer, which startLink hands over
// once they exist (and takes back before they close). Without them
// commands stay QUEUED and result events are refused.
type commandPort struct {
	link     atomic.Pointer[mqttlink.Link]
	tracker  atomic.Pointer[presence.Tracker]
	producer atomic.Pointer[kafka.Producer]
}

var (
	_ app.CommandLink   = (*commandPort)(nil)
	_ app.CommandEvents = (*commandPort)(nil)
)

// Online implements app.CommandLink.
func (p *commandPort) Online(deviceID string) bool {
	t := p.tracker.Load()
	return t != nil && t.Online(deviceID)
}

// PublishCommand implements app.CommandLink.
func (p *commandPort) PublishCommand(ctx context.Context, deviceID, commandID string, payload []byte) error {
	l := p.link.Load()
	if l == nil {
		return errors.New("mqtt link not connected")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return l.Publish(ctx, "devices/"+deviceID+"/commands/"+commandID, 1, false, payload)
}

// CommandResultType is ce_type of CommandCompleted.
const CommandResultType = "comfortech.device.command.result.v1"

var commandStatusEvent = map[app.CommandStatus]eventsv1.CommandStatus{
	app.CommandSucceeded: eventsv1.CommandStatus_COMMAND_STATUS_SUCCEEDED,
	app.CommandFailed:    eventsv1.CommandStatus_COMMAND_STATUS_FAILED,
	app.CommandExpired:   eventsv1.CommandStatus_COMMAND_STATUS_EXPIRED,
}

// CommandCompleted implements app.CommandEvents: a CommandCompleted event
// on device.lifecycle, keyed by the device.
func (p *commandPort) CommandCompleted(ctx context.Context, c app.Command) error {
	prod := p.producer.Load()
	if prod == nil {
		return errors.New("no kafka producer")
	}
	e := &eventsv1.CommandCompleted{DeviceId: c.DeviceID, CommandId: c.ID, Name: c.Name, Status: commandStatusEvent[c.Status],
		Error: c.Error, RequestedBy: c.RequestedBy, CreateTime: timestamppb.New(c.CreatedAt), CompleteTime: timestamppb.New(c.CompletedAt)}
	if c.Result != nil {
		r, err := structpb.NewStruct(c.Result)
		if err != nil {
			return err
		}
		e.Result = r
	}
	m, err := kafka.EncodeEvent(ctx, presence.Topic, kafka.Event{Source: "/services/device", Type: CommandResultType,
		Key: c.DeviceID, Time: c.CompletedAt, Data: e})
	if err != nil {
		return err
	}
	return prod.Publish(ctx, m)
}
