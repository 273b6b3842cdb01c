package app

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// Incoming is an outbox notification and the record it came in (kept with
// its deliveries, to dead-letter them as received).
type Incoming struct {
	Notification *Notification
	Source       []byte
}

// HandleBatch routes notifications as Handle does, recording all their
// deliveries and skips together, then hands the new deliveries straight to
// the workers of Run. When it returns nil every delivery is durably
// recorded (and will be attempted, by the scheduler after a crash), so the
// records may be acknowledged. An error wrapping ErrInvalid means one of
// them can never be handled, and nothing was recorded: handle them one by
// one to tell which.
func (s *Service) HandleBatch(ctx context.Context, in []Incoming) error {
	var ds []*Delivery
	var skips []AttemptRecord
	for _, i := range in {
		d, sk, err := s.route(ctx, i.Notification, i.Source)
		if err != nil {
			return err
		}
		ds, skips = append(ds, d...), append(skips, sk...)
	}
	return s.enqueue(ctx, ds, skips)
}

// enqueue records skips and deliveries, then hands the deliveries that
// are new (or revived) to the workers of Run; the scheduler takes them
// when Run is not running.
func (s *Service) enqueue(ctx context.Context, ds []*Delivery, skips []AttemptRecord) error {
	if len(skips) > 0 {
		// Before the deliveries: a failure leaves nothing for the retry to
		// repeat but these log lines.
		if err := s.store.RecordAttempts(ctx, skips); err != nil {
			return err
		}
	}
	if len(ds) == 0 {
		return nil
	}
	caller := traceParent(trace.SpanContextFromContext(ctx))
	for _, d := range ds {
		if d.TraceParent == "" {
			d.TraceParent = caller
		}
	}
	added, err := s.store.AddDeliveries(ctx, ds)
	if err != nil {
		return err
	}
	rec := s.rec.Load()
	if rec == nil {
		// Run is not running (yet): its scheduler takes them.
		s.release(added)
		return nil
	}
	for i, d := range added {
		select {
		case <-rec.stopped:
			s.release(added[i:])
			return nil
		default:
		}
		// Waiting here when the workers are behind slows the consumer
		// down instead of queuing without bound.
		select {
		case s.direct <- d:
		case <-rec.stopped:
			s.release(added[i:])
			return nil
		case <-ctx.Done():
			s.release(added[i:])
			return nil
		}
	}
	return nil
}

// preferences returns the account's preferences for routing, cached.
func (s *Service) preferences(ctx context.Context, accountID string) (*Preferences, error) {
	return s.prefs.get(ctx, accountID, func(ctx context.Context) (*Preferences, error) {
		return s.GetPreferences(ctx, accountID)
	})
}

// pushTokens returns the account's push tokens for routing, cached.
func (s *Service) pushTokens(ctx context.Context, accountID string) ([]*PushToken, error) {
	return s.tokens.get(ctx, accountID, func(ctx context.Context) ([]*PushToken, error) {
		ts, _, err := s.store.ListPushTokens(ctx, accountID, Page{Size: 100})
		return ts, err
	})
}

// webhooks returns the account's webhook endpoints for routing, cached.
func (s *Service) webhooks(ctx context.Context, accountID string) ([]*WebhookEndpoint, error) {
	return s.hooks.get(ctx, accountID, func(ctx context.Context) ([]*WebhookEndpoint, error) {
		es, _, err := s.store.ListWebhooks(ctx, accountID, Page{Size: 100})
		return es, err
	})
}

// webhook returns an endpoint for an attempt, cached; a deleted one is
// ErrNotFound.
func (s *Service) webhook(ctx context.Context, id string) (*WebhookEndpoint, error) {
	e, err := s.hook.get(ctx, id, func(ctx context.Context) (*WebhookEndpoint, error) {
		e, err := s.store.GetWebhook(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return nil, nil
		}
		return e, err
	})
	if err == nil && e == nil {
		return nil, &Error{Kind: ErrNotFound, Msg: "webhook endpoint not found"}
	}
	return e, err
}

// record stores an attempt's outcome and then runs then (when not nil).
// While Run runs, the recorder does it in its next transaction: record
// returns at once unless wait is set. Otherwise, or with wait, it returns
// after the transaction. A failure is logged.
func (s *Service) record(ctx context.Context, r AttemptRecord, wait bool, then func()) {
	if rec := s.rec.Load(); rec != nil {
		var done chan struct{}
		if wait {
			done = make(chan struct{})
		}
		if rec.record(recordReq{rec: r, then: then, done: done}) {
			if done != nil {
				<-done
			}
			return
		}
	}
	if err := s.store.RecordAttempts(ctx, []AttemptRecord{r}); err != nil {
		s.log.Error("recording a delivery attempt failed", zap.String("notification_id", r.Attempt.NotificationID), zap.Error(err))
		return
	}
	if then != nil {
		then()
	}
}

// maxRecordBatch bounds the attempts recorded in one transaction.
const maxRecordBatch = 512

// recorder commits the attempts of concurrent workers in groups, so one
// transaction records many. Its queue is bounded: when the database falls
// behind, the workers wait.
type recorder struct {
	store   Store
	log     *zap.Logger
	reqs    chan recordReq
	stopped chan struct{}
	done    chan struct{}
}

// recordReq is an attempt to record, what follows it, and a channel
// closed once it is recorded (or not).
type recordReq struct {
	rec  AttemptRecord
	then func()
	done chan struct{}
}

func newRecorder(store Store, log *zap.Logger) *recorder {
	return &recorder{store: store, log: log, reqs: make(chan recordReq, maxRecordBatch),
		stopped: make(chan struct{}), done: make(chan struct{})}
}

// record queues r; it reports false when the recorder has stopped.
func (rc *recorder) record(r recordReq) bool {
	select {
	case <-rc.stopped:
		return false
	default:
	}
	select {
	case rc.reqs <- r:
		return true
	case <-rc.stopped:
		return false
	}
}

// recorderConns is how many transactions the recorder runs at once: on
// PostgreSQL one commits while the next is written (SQLite takes them in
// turn).
const recorderConns = 2

// start runs the committers.
func (rc *recorder) start() {
	var wg sync.WaitGroup
	for range recorderConns {
		wg.Go(rc.run)
	}
	go func() {
		wg.Wait()
		close(rc.done)
	}()
}

// run commits queued attempts until stop, then those still queued.
func (rc *recorder) run() {
	batch := make([]recordReq, 0, maxRecordBatch)
	for {
		batch = batch[:0]
		select {
		case r := <-rc.reqs:
			batch = append(batch, r)
		case <-rc.stopped:
			// Drain what was queued before stop.
			for {
				select {
				case r := <-rc.reqs:
					batch = append(batch, r)
					if len(batch) == maxRecordBatch {
						rc.commit(batch)
						batch = batch[:0]
					}
				default:
					if len(batch) > 0 {
						rc.commit(batch)
					}
					return
				}
			}
		}
	fill:
		for len(batch) < maxRecordBatch {
			select {
			case r := <-rc.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		rc.commit(batch)
	}
}

// commit records batch in one transaction, then runs what follows each.
func (rc *recorder) commit(batch []recordReq) {
	recs := make([]AttemptRecord, len(batch))
	for i, r := range batch {
		recs[i] = r.rec
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err := rc.store.RecordAttempts(ctx, recs)
	cancel()
	if err != nil {
		// Their leases end and the deliveries are attempted again.
		rc.log.Error("recording delivery attempts failed", zap.Int("attempts", len(recs)), zap.Error(err))
	}
	for _, r := range batch {
		if err == nil && r.then != nil {
			go r.then() // rare (failures), and may write: off the commit path
		}
		if r.done != nil {
			close(r.done)
		}
	}
}

// stop ends run once what was queued is committed; later record calls
// report false.
func (rc *recorder) stop() {
	close(rc.stopped)
	<-rc.done
}
